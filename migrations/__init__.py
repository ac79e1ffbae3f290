"""Alembic migrations, installed as `ragcorp_service.migrations`."""
