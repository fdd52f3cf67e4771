"""The HTTP server: uvicorn on httptools, with bounds on what one connection may make the
process hold, and its refusals as problems (RFC 9457).

uvicorn on httptools bounds none of it: one request of 1 GiB of headers took the process
from 157 MB to 1.6 GB, a body trickled a byte a second held its connection for as long as
it trickled (after the answer too), and 1,100 of those ran the process out of open files.
Now, per connection:

- headers must be complete within ``USAGE_HEADER_TIMEOUT`` (10 s) of the connection's
  opening or, between requests, of the next request's first byte (else closed), and within
  ``USAGE_MAX_HEADER_BYTES`` (16 KiB, request line included) and ``USAGE_MAX_HEADERS`` (100)
  (else 431);
- a body must be complete within ``USAGE_BODY_TIMEOUT`` (60 s) of its headers (else 408);
  an answer given before the body was read ends the connection instead of reading the rest
  for the next request;
- past ``USAGE_MAX_CONNECTIONS`` (1,000) per process, a new connection is answered 503 and
  closed before anything of it is read.

Each refusal closes the connection, and is answered as the application's answers are: with
an ``X-Request-ID`` (the caller's, if its headers were read that far), one ``api.access``
line and a count in /metrics. A refusal of a request the application already serves (its
body late, or not valid HTTP) is logged and counted by the application, under its route and
id, with the server's status. ``X-Forwarded-For`` is read by api.web.auth alone, and
believed only from ``USAGE_TRUSTED_PROXIES``: uvicorn's proxy headers are off (they trusted
127.0.0.1 whatever the settings said).
"""

import asyncio
import contextlib
import gc
import logging
import resource
import socket
import sys
import time
import urllib.parse
from typing import Any

import httptools
import msgspec
import uvicorn
from litestar import Litestar
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from api.settings import Settings
from api.web.logs import (
    ANSWERED_BY_SERVER_KEY,
    Occasional,
    log_access,
    log_config,
    request_id_of,
    scope_request_id,
)
from api.web.metrics import UNMATCHED, count_answer
from api.web.problems import PROBLEM_JSON, problem

KEEP_ALIVE_TIMEOUT = 5  # seconds an idle connection is kept between requests
GRACEFUL_SHUTDOWN_TIMEOUT = 30  # seconds for the requests in flight at SIGTERM
# Seconds a connection answered before its body was read goes on reading and dropping it
# after its sending half is closed: a client still sending gets to read the answer, where
# closing at once would reset the connection over the unread bytes (RFC 9112 §9.6).
LINGER_SECONDS = 2.0
# Open files kept for other things than connections (the database pool, webhooks, the
# page's files, the logs): the connections' cap is lowered to leave them.
RESERVED_FILES = 256

_LOG = logging.getLogger("api.http")
# What a connection is reading: a request's headers (or waiting for the next request), its
# body, or what is left of a body the answer did not wait for.
_HEADERS, _BODY, _LINGERING = "headers", "body", "lingering"
# The method or path of a refused request the server did not read as far as them.
UNREAD = "(unread)"


class _HeadersTooLarge(Exception):
    """Raised from a parser callback to stop parsing: httptools reports it as a parser
    error, which uvicorn answers through ``send_400_response``."""


class BoundedHttp(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol on httptools (llhttp), with the bounds above. httptools
    rather than h11: h11 parses in Python, which was half of a small request's time in the
    server (healthz 3.4 -> 1.7 ms, platform 24h 14 -> 9.5 ms)."""

    # Set by ``serve``, from the settings.
    header_timeout: float
    body_timeout: float
    max_header_bytes: int
    max_headers: int
    max_connections: int
    refused: Occasional

    _reading = _HEADERS
    _deadline: asyncio.TimerHandle | None = None
    # Bytes received while the headers were not complete: what httptools holds of a header
    # it has not finished (it keeps one whole, however long); counted before parsing, so a
    # chunk (256 KiB at most) may pass the bound before it is refused.
    _received = 0
    # The request's URL and headers as parsed ("name: value\r\n" each).
    _parsed = 0
    _headers_too_large = False
    # uvicorn's URL of the request being read, emptied at each request's first byte: declared
    # here for a refusal before any request began. And when the connection, then each of
    # its requests, began: a refusal's duration in the access line and /metrics.
    url = b""
    _began = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._began = time.perf_counter()
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self.refused.happened(self.max_connections)
            self._refuse(503, "the server has too many connections; retry later", "retry-after: 1")
            return
        self._arm(self.header_timeout)

    def data_received(self, data: bytes) -> None:
        if self._reading is _LINGERING:
            return
        if self._reading is _HEADERS:
            self._received += len(data)
            self._arm(self.header_timeout)
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._reading is _HEADERS and self._received > self.max_header_bytes:
            self._refuse(431, self._too_large())
        elif self._reading is _BODY:
            self._arm(self.body_timeout)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._parsed = 0
        self._began = time.perf_counter()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count_header(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._count_header(len(name) + len(value) + 4)

    def on_headers_complete(self) -> None:
        self._reading = _BODY
        self._cancel_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        # The keep-alive timeout governs the wait for the next request's first byte.
        self._reading, self._received = _HEADERS, 0
        self._cancel_deadline()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if (
            self._reading is _BODY
            and self.cycle.response_complete
            and not self.transport.is_closing()
        ):
            self._linger()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """A request the parser cannot read (a NUL in a header, say), or whose headers are
        too large: a problem, as every error is, not uvicorn's plain text."""
        if self._headers_too_large:
            self._refuse(431, self._too_large())
        else:
            self._refuse(400, f"the request is not valid HTTP/1.1: {msg}")

    def _count_header(self, size: int) -> None:
        self._parsed += size
        if self._parsed > self.max_header_bytes or len(self.headers) > self.max_headers:
            self._headers_too_large = True
            raise _HeadersTooLarge

    def _too_large(self) -> str:
        return (
            f"the request line and headers must be at most {self.max_header_bytes:,} bytes "
            f"and {self.max_headers} headers"
        )

    def _refuse(self, status: int, detail: str, *headers: str) -> None:
        """Answers ``status`` in the application's stead and closes the connection at once:
        what is left of the request is not read."""
        if self._in_application():
            # A body the parser cannot read, of a request the application serves: answered
            # unless the application's answer has begun (nothing can follow its first bytes).
            if not self.cycle.response_started:
                self._answer_for_application(status, detail, *headers)
        else:
            # No application has seen the request: the server logs and counts it, under the
            # method and path as far as they were read, and the caller's id if it came
            # before the fault (the headers are those read so far; none before a request).
            request_id = request_id_of(self.headers or ())
            self._answer(status, detail, request_id, *headers)
            method, path = self._request_line()
            log_access(request_id, method, path, status, self._began, None)
            count_answer(method, UNMATCHED, status, self._began)
        self.transport.close()

    def _in_application(self) -> bool:
        """Whether the request being read is in the application's hands: its headers were
        read and it was not queued behind another request's answer."""
        return self._reading is _BODY and not self.pipeline

    def _answer_for_application(self, status: int, detail: str, *headers: str) -> None:
        """Answers the request the application serves, before its own answer began. The
        application is told the client is gone (its answer, if it gives one, is dropped),
        and its access line and count give ``status`` (``ANSWERED_BY_SERVER_KEY``), so the
        request is recorded once, under its id, route and the status the client got."""
        scope = self.cycle.scope
        scope[ANSWERED_BY_SERVER_KEY] = status  # type: ignore[typeddict-unknown-key]
        self.cycle.disconnected = True
        self.cycle.message_event.set()
        self._answer(status, detail, scope_request_id(scope), *headers)

    def _request_line(self) -> tuple[str, str]:
        """The method and path of the request being read, or UNREAD for either not read (the
        parser's method is read with the URL, which follows it)."""
        if not self.url:
            return UNREAD, UNREAD
        method = self.parser.get_method().decode("ascii")
        try:
            path = httptools.parse_url(self.url).path  # None in http://host, say
        except httptools.HttpParserInvalidURLError:
            path = None
        return method, UNREAD if path is None else urllib.parse.unquote(path.decode("latin-1"))

    def _answer(self, status: int, detail: str, request_id: str, *headers: str) -> None:
        body = msgspec.json.encode(problem(status, detail))
        head = "".join(
            f"{header}\r\n"
            for header in (
                f"content-type: {PROBLEM_JSON}",
                f"content-length: {len(body)}",
                f"x-request-id: {request_id}",
                *headers,
                "connection: close",
            )
        )
        self.transport.write(STATUS_LINE[status] + head.encode() + b"\r\n" + body)

    def _linger(self) -> None:
        """The answer came before the body was read: close the sending half now, and the
        connection ``LINGER_SECONDS`` later or when the client closes its own (uvicorn's
        ``eof_received`` closes it), dropping what it still sends."""
        self._unset_keepalive_if_required()
        self._reading = _LINGERING
        self.transport.write_eof()
        self._cancel_deadline()
        self._arm(LINGER_SECONDS)

    def _arm(self, seconds: float) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(seconds, self._late)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _late(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._in_application() and not self.cycle.response_started:
            # The application waits for the body: the client is told why, and closed as
            # after any answer given before the body.
            detail = f"the request's body did not arrive within {self.body_timeout:g} s"
            self._answer_for_application(408, detail)
            self._linger()
        else:
            self.transport.close()


class _Server(uvicorn.Server):
    """uvicorn's server, whose event loop logs failed accepts once per interval: asyncio
    logs each with its traceback, and out of open files it tries again for every pending
    connection at once (CPython gh-151615), thousands a second."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        accept_failures = Occasional(_LOG, "could not accept a connection: %s")

        def on_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if context.get("message") == "socket.accept() out of system resource":
                accept_failures.happened(context.get("exception"))
            else:
                loop.default_exception_handler(context)

        asyncio.get_running_loop().set_exception_handler(on_error)
        await super().startup(sockets)


def _connections_allowed(wanted: int) -> int:
    """Raises this process's open-files limit to its hard limit (the soft one is often
    1,024, and past it accept() fails), and returns ``wanted`` or fewer: what the limit
    holds with ``RESERVED_FILES`` left over."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):  # an unlimited hard limit, say
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return max(1, min(wanted, soft - min(RESERVED_FILES, soft // 4)))


def serve(app: Litestar, host: str, port: int, settings: Settings) -> None:
    """Until SIGTERM or Ctrl-C: then stop accepting, finish the requests in flight (up to
    ``GRACEFUL_SHUTDOWN_TIMEOUT``) and close the pool."""
    connections = _connections_allowed(settings.max_connections)
    bounds = {
        "header_timeout": settings.header_timeout,
        "body_timeout": settings.body_timeout,
        "max_header_bytes": settings.max_header_bytes,
        "max_headers": settings.max_headers,
        "max_connections": connections,
        "refused": Occasional(_LOG, "refused connections past the cap of %d"),
    }
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=type("BoundedHttp", (BoundedHttp,), bounds),
        log_config=log_config(settings.log_level),
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_TIMEOUT,
        proxy_headers=False,
    )
    if connections < settings.max_connections:
        _LOG.warning(
            "USAGE_MAX_CONNECTIONS lowered from %d to %d: the process may open %d files",
            settings.max_connections,
            connections,
            resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        )
    server = _Server(config)
    # The objects made so far (the app, its routes and compiled statements, the modules) live
    # as long as the process: frozen, the collector no longer walks them in each of its full
    # passes, which every request's few thousand short-lived objects set off. 13% of a small
    # read's CPU here.
    gc.collect()
    gc.freeze()
    # As uvicorn.run: Ctrl-C is a normal stop, and a failed start fails the command.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
