"""Everything that talks to PostgreSQL: the pool, migrations, and the stored embedder."""
