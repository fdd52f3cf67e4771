"""The HTTP service: the Litestar app and its routes, authentication, problem details,
the OpenAPI document, logs, metrics, HTTP conventions (HEAD, 304, nosniff) and the uvicorn
server. Imports ``core``, ``storage``, ``reads`` and ``settings``."""
