"""A webhook receiver on 127.0.0.1, in a thread of its own, as a threshold's owner would run
one: it verifies every delivery's signature with the Standard Webhooks library (not ours),
records it, and answers what the test tells it to, or never answers (a hanging receiver)."""

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

# Where the tests' servers may send webhooks over http (USAGE_WEBHOOK_ALLOW_HOSTS): their
# receivers, on 127.0.0.1 at whatever port each was given when it started, nothing else.
RECEIVER_HOSTS = frozenset({"127.0.0.1:*"})


@dataclass(frozen=True)
class Received:
    webhook_id: str
    timestamp: int
    body: dict
    verified: bool  # the signature verified with the threshold's secret
    answered: int | None  # the status the receiver answered; None if it never did
    at: float  # when it came (time.time())
    raw: bytes  # the body as it came, and the headers (names lowercased): to verify again
    headers: dict[str, str]


@dataclass
class Receiver:
    url: str
    # The secret of each threshold whose deliveries it verifies, by threshold id.
    secrets: dict[str, str] = field(default_factory=dict)
    # The status to answer a delivery (its body) the n-th time (from 0) its webhook-id comes;
    # None to hold the connection, never answering, until the sender closes it.
    answer: Callable[[dict, int], int | None] = lambda _body, _nth: 200
    received: list[Received] = field(default_factory=list)
    hanging: int = 0  # connections held unanswered now
    most_hanging: int = 0  # the most held at once
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.answered is not None and 200 <= r.answered < 300]


class _Handler(BaseHTTPRequestHandler):
    receiver: Receiver

    def do_POST(self) -> None:
        receiver = self.receiver
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {name.lower(): value for name, value in self.headers.items()}
        payload = json.loads(body)
        secret = receiver.secrets.get(payload.get("threshold_id"))
        try:
            verified = secret is not None and Webhook(secret).verify(body, headers) == payload
        except WebhookVerificationError:
            verified = False
        webhook_id = headers["webhook-id"]
        with receiver.lock:
            nth = sum(r.webhook_id == webhook_id for r in receiver.received)
            status = receiver.answer(payload, nth) if verified else 401
            receiver.received.append(
                Received(
                    webhook_id=webhook_id,
                    timestamp=int(headers["webhook-timestamp"]),
                    body=payload,
                    verified=verified,
                    answered=status,
                    at=time.time(),
                    raw=body,
                    headers=headers,
                )
            )
        if status is None:
            self._hang()
            return
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _hang(self) -> None:
        """Hold the connection, unanswered, until the sender gives up and closes it."""
        receiver = self.receiver
        with receiver.lock:
            receiver.hanging += 1
            receiver.most_hanging = max(receiver.most_hanging, receiver.hanging)
        try:
            while self.connection.recv(1024):
                pass
        except OSError:
            pass  # reset: the sender aborts the connections it gives up on
        finally:
            with receiver.lock:
                receiver.hanging -= 1
        self.close_connection = True

    def log_message(self, *_: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    # The listen backlog: socketserver's 5 drops the connections of 16 attempts at once,
    # which then wait a second for their SYN to be sent again.
    request_queue_size = 128
    daemon_threads = True


@contextmanager
def receiver(**options) -> Iterator[Receiver]:
    """A receiver listening until the block ends; its ``url`` is http://127.0.0.1:port/hook."""
    handler = type("Handler", (_Handler,), {})
    server = _Server(("127.0.0.1", 0), handler)
    handler.receiver = Receiver(url=f"http://127.0.0.1:{server.server_port}/hook", **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler.receiver
    finally:
        server.shutdown()
        server.server_close()
