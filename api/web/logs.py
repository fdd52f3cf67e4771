"""Logs: one JSON object per line, each with the id of the request being served.

Every request gets an id: the caller's ``X-Request-ID`` when it is a plain token, a new one
otherwise. It is echoed in the response, carried by every log line written while serving
the request, and closes with one access line (method, path, status, duration, key id).
Neither keys nor query strings are logged: the ``Authorization`` header is never read
here, and the key shows only as its public id.
"""

import contextvars
import logging
import math
import re
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_CALLER_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_ACCESS = logging.getLogger("api.access")
MAX_LOGGED_PATH = 1024  # characters: a client's long path must not make long log lines


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        entry |= getattr(record, "fields", {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return msgspec.json.encode(entry).decode()


def log_config(level: str) -> dict[str, Any]:
    """For uvicorn's ``log_config``: its loggers and ours, JSON to stderr. Uvicorn's access
    log is off: the access lines are ours, with the request id."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"handlers": ["stderr"], "level": "WARNING"},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "api": {"handlers": ["stderr"], "level": level, "propagate": False},
        },
    }


class Occasional:
    """A warning a client can cause at will (a connection refused, say), logged at most once
    per ``interval`` seconds with how many times it happened since the last line: an attack
    must not fill the log (once per failed accept, 75,568 tracebacks in 20 s did)."""

    def __init__(self, logger: logging.Logger, message: str, interval: float = 10.0) -> None:
        self._logger, self._message, self._interval = logger, message, interval
        self._count = 0
        self._logged_at = -math.inf

    def happened(self, *args: object) -> None:
        """Counts one more time; logs ``message % args`` unless a line was written less
        than ``interval`` seconds ago."""
        self._count += 1
        now = time.monotonic()
        if now - self._logged_at < self._interval:
            return
        self._logger.warning(
            self._message + " (%d since the last such line)",
            *args,
            self._count,
            extra={"fields": {"occurrences": self._count}},
        )
        self._count, self._logged_at = 0, now


def request_id_of(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The caller's ``X-Request-ID`` (``headers`` named in lower case) when it is a plain
    token, else a new id."""
    for name, value in headers:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _CALLER_ID.fullmatch(text):
                return text
    return uuid.uuid4().hex


def log_access(
    request_id: str, method: str, path: str, status: int, started: float, key_id: str | None
) -> None:
    """The line that closes a request (``started``: its ``time.perf_counter()``), whoever
    answered it: the application or the HTTP server (api.web.http_server)."""
    path = path[:MAX_LOGGED_PATH]
    token = REQUEST_ID.set(request_id)
    try:
        _ACCESS.info(
            "%s %s %s",
            method,
            path,
            status,
            extra={
                "fields": {
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "key_id": key_id,
                }
            },
        )
    finally:
        REQUEST_ID.reset(token)


# Kept in a request's ASGI scope for the HTTP server (api.web.http_server), which may answer
# a request the application serves (its body late, or not valid HTTP): the request's id
# (``scope_request_id``), which its answer carries, and the status of that answer, which
# the access line and /metrics record in place of the application's (dropped, or 499 for a
# client it was told is gone), so that the request is recorded once as the client saw it.
_REQUEST_ID_KEY = "usage.request_id"
ANSWERED_BY_SERVER_KEY = "usage.answered_by_server"


def scope_request_id(scope: Scope) -> str:
    """The request's id, chosen by the first to ask: the application, or the HTTP server
    answering before the application began (with the body in the headers' packet)."""
    if _REQUEST_ID_KEY not in scope:
        scope[_REQUEST_ID_KEY] = request_id_of(scope["headers"])  # type: ignore[typeddict-unknown-key]
    return scope[_REQUEST_ID_KEY]  # type: ignore[typeddict-item]


def request_log(app: ASGIApp) -> ASGIApp:
    """Middleware: the request id, its response header and the access line."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request_id = scope_request_id(scope)
        method, path = scope["method"], scope["path"]
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            key_id = getattr(scope.get("user"), "key_id", None)
            status = scope.get(ANSWERED_BY_SERVER_KEY, status)
            log_access(request_id, method, path, status, started, key_id)
            REQUEST_ID.reset(token)

    return middleware
