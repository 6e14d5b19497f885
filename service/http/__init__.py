"""The HTTP service: the FastAPI app, its routes, errors, middleware, keys and chat integrations."""
