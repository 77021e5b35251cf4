"""`akg serve`: the knowledge service over HTTP (FastAPI on uvicorn), a thin layer over the public
Python API (akg.api). The front layer, beside the CLI and the explorer: nothing below imports it.

- service.app: the application (endpoints, limits, error handlers), built by `create_app`.
- service.state: what the service keeps warm (the graph connection, loaded models).
- service.tokens: bearer tokens for writes, stored hashed under AKG_HOME.
- service.cli: the `akg serve` and `akg tokens` commands.
"""
