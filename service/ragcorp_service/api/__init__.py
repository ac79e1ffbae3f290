"""The HTTP API: app factory, dependencies, schemas, one router per resource."""
