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


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _CALLER_ID.fullmatch(text):
                return text
    return uuid.uuid4().hex


def request_log(app: ASGIApp) -> ASGIApp:
    """Middleware: the request id, its response header and the access line."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request_id = _request_id(scope)
        method, path = scope["method"], scope["path"][:MAX_LOGGED_PATH]
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
            key = scope.get("user")
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
                        "key_id": getattr(key, "key_id", None),
                    }
                },
            )
            REQUEST_ID.reset(token)

    return middleware
