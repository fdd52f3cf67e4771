"""The HTTP server: uvicorn, with a deadline for each request's headers, and its refusals of
unreadable requests as problems.

uvicorn closes idle keep-alive connections but waits forever for headers that never end: a
client sending one header byte a minute (slowloris) holds its connection, and enough of
them hold every connection the process can take. Headers must now be complete within
the header timeout (``USAGE_HEADER_TIMEOUT``, 10 s) of the connection's opening or, between
requests, of the next request's first byte.
"""

import asyncio

import h11
import msgspec
import uvicorn
from litestar import Litestar
from uvicorn.protocols.http.h11_impl import H11Protocol

from api.settings import Settings
from api.web.logs import log_config
from api.web.problems import PROBLEM_JSON, problem

KEEP_ALIVE_TIMEOUT = 5  # seconds an idle connection is kept between requests
GRACEFUL_SHUTDOWN_TIMEOUT = 30  # seconds for the requests in flight at SIGTERM


class HeadersInTime(H11Protocol):
    """uvicorn's HTTP/1.1 protocol (h11), closing connections whose headers are late."""

    header_timeout: float  # set by ``serve``
    _headers_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect_headers()

    def data_received(self, data: bytes) -> None:
        self._expect_headers()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_deadline()  # the headers are in

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        # Between requests the keep-alive timeout applies, until the next request's bytes.
        self._cancel_deadline()
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        """A request h11 cannot read (a NUL in a header, say): a problem, as every error is,
        not uvicorn's plain text; the connection closes after it."""
        body = msgspec.json.encode(problem(400, f"the request is not valid HTTP/1.1: {msg}"))
        headers = [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event))  # type: ignore[arg-type]
        self.transport.close()

    def _expect_headers(self) -> None:
        if self._headers_deadline is None and self.conn.their_state is h11.IDLE:
            self._headers_deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _cancel_deadline(self) -> None:
        if self._headers_deadline is not None:
            self._headers_deadline.cancel()
            self._headers_deadline = None

    def _headers_late(self) -> None:
        self._headers_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
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
