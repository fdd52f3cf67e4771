"""The HTTP server: uvicorn on httptools, with a deadline for each request's headers, and its
refusals of unreadable requests as problems.

uvicorn closes idle keep-alive connections but waits forever for headers that never end: a
client sending one header byte a minute (slowloris) holds its connection, and enough of
them hold every connection the process can take. Headers must now be complete within
the header timeout (``USAGE_HEADER_TIMEOUT``, 10 s) of the connection's opening or, between
requests, of the next request's first byte.
"""

import asyncio

import msgspec
import uvicorn
from litestar import Litestar
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from api.settings import Settings
from api.web.logs import log_config
from api.web.problems import PROBLEM_JSON, problem

KEEP_ALIVE_TIMEOUT = 5  # seconds an idle connection is kept between requests
GRACEFUL_SHUTDOWN_TIMEOUT = 30  # seconds for the requests in flight at SIGTERM


class HeadersInTime(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol on httptools (llhttp), closing connections whose headers
    are late. httptools rather than h11: h11 parses in Python, which was half of a small
    request's time in the server (healthz 3.4 -> 1.7 ms, platform 24h 14 -> 9.5 ms)."""

    header_timeout: float  # set by ``serve``
    _headers_deadline: asyncio.TimerHandle | None = None
    # From the connection's opening and from the end of each request's body: the next
    # bytes are a request's headers, which must be complete in time.
    _reading_headers = True

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect_headers()

    def data_received(self, data: bytes) -> None:
        self._expect_headers()
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._cancel_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        # The keep-alive timeout governs the wait for the next request's first byte.
        self._reading_headers = True
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """A request the parser cannot read (a NUL in a header, say): a problem, as every
        error is, not uvicorn's plain text; the connection closes after it."""
        body = msgspec.json.encode(problem(400, f"the request is not valid HTTP/1.1: {msg}"))
        head = (
            f"content-type: {PROBLEM_JSON}\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(STATUS_LINE[400] + head.encode() + body)
        self.transport.close()

    def _expect_headers(self) -> None:
        if self._headers_deadline is None and self._reading_headers:
            self._headers_deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _cancel_deadline(self) -> None:
        if self._headers_deadline is not None:
            self._headers_deadline.cancel()
            self._headers_deadline = None

    def _headers_late(self) -> None:
        self._headers_deadline = None
        if self._reading_headers and not self.transport.is_closing():
            self.transport.close()


def serve(app: Litestar, host: str, port: int, settings: Settings) -> None:
    """Until SIGTERM or Ctrl-C: then stop accepting, finish the requests in flight (up to
    ``GRACEFUL_SHUTDOWN_TIMEOUT``) and close the pool."""
    protocol = type("HeadersInTime", (HeadersInTime,), {"header_timeout": settings.header_timeout})
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=protocol,
        log_config=log_config(settings.log_level),
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_TIMEOUT,
    )
