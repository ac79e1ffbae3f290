"""The service as a running program: the app factory and its lifespan, the server, middleware
(request context, body limits, draining), tracing, and the providers chosen from settings.

Above `api` (the HTTP surface it mounts) and `services` (the use cases it wires up)."""
