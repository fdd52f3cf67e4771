"""Webhook delivery (§10) to real receivers on 127.0.0.1: a signed POST the Standard Webhooks
library verifies; every other answer a receiver may give (errors, silence, a trickle, endless
headers, redirects) an outcome within the timeout, told to API clients in the same words
whatever kept a status from coming, the reason in the log. Refused targets are refused before
any connection, which these tests watch for: nothing here connects but to the loopback
receivers of the test itself, and the names they resolve come from a test resolver or
/etc/hosts."""

import asyncio
import ipaddress
import itertools
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api.alerts.sender import NO_ANSWER, Sent, send_webhook
from api.core.signatures import new_secret, signed_headers
from api.core.webhook_targets import IPAddress

_NONE: frozenset[str] = frozenset()
# Every port of 127.0.0.1: the test's receivers, at whatever port each was given.
_LOCAL = frozenset({"127.0.0.1:*"})
_NOT_ANSWERED = Sent(None, NO_ANSWER)
_BODY = b'{"type":"usage.threshold.crossed","threshold":"thr_1","value":12.5}'
_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

# Self-signed for hooks.test only, valid 2000-2100 (P-256; `openssl ca -selfsign` with
# basicConstraints=critical,CA:TRUE and subjectAltName=DNS:hooks.test). Trusted only where a
# test points SSL_CERT_FILE at it.
_CERTIFICATE = """-----BEGIN CERTIFICATE-----
MIIBhTCCASugAwIBAgIBATAKBggqhkjOPQQDAjAVMRMwEQYDVQQDDApob29rcy50
ZXN0MCAXDTAwMDEwMTAwMDAwMFoYDzIxMDAwMTAxMDAwMDAwWjAVMRMwEQYDVQQD
DApob29rcy50ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEh2bVIegSkSyz
qy8eLRoVOv1Ljxh+EgUmBD+xJ86iyTJ348hMTqBOsdXEPiRsQdhv/0qymgI9csbp
8GyzuG8Bd6NqMGgwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQU4UDyaXnBIAP1
LD1TuDyuVZcXRjswHwYDVR0jBBgwFoAU4UDyaXnBIAP1LD1TuDyuVZcXRjswFQYD
VR0RBA4wDIIKaG9va3MudGVzdDAKBggqhkjOPQQDAgNIADBFAiEAjufrp4oavTcx
R/oW02mEnkGGXDmjFXwK7+OONJI0THMCIHH4s2JnGs7fB6kfE50U+u2jojF+jvS5
eZfhsH674Z0H
-----END CERTIFICATE-----
"""
_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg5/U6c0G7z/Pv42Sk
dVotixSZcPkRvSqywjRmTufgAV2hRANCAASHZtUh6BKRLLOrLx4tGhU6/UuPGH4S
BSYEP7EnzqLJMnfjyExOoE6x1cQ+JGxB2G//SrKaAj1yxunwbLO4bwF3
-----END PRIVATE KEY-----
"""

Answer = Callable[[asyncio.StreamWriter], Awaitable[None]]


def answering(raw: bytes) -> Answer:
    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(raw)
        await writer.drain()

    return answer


answering_ok = answering(_OK)


async def never_answering(writer: asyncio.StreamWriter) -> None:
    await asyncio.Event().wait()


async def trickling(writer: asyncio.StreamWriter) -> None:
    """A header that never ends, a byte at a time: each read returns, none completes."""
    writer.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    while True:
        writer.write(b"a")
        await writer.drain()
        await asyncio.sleep(0.02)


async def endless_headers(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\n")
    for number in itertools.count():
        writer.write(f"X-Header-{number}: {'a' * 1000}\r\n".encode())
        await writer.drain()


async def endless_interim(writer: asyncio.StreamWriter) -> None:
    while True:
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
        await writer.drain()


async def endless_body(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n")
    while True:
        writer.write(b"a" * 65536)
        await writer.drain()


@dataclass
class Request:
    line: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP receiver on 127.0.0.1: counts connections, records each request, and gives
    ``answer``; with a ``secret``, it answers 401 to a signature the Standard Webhooks
    library does not verify, as a receiver would."""

    answer: Answer = answering_ok
    secret: str | None = None
    tls: ssl.SSLContext | None = None
    port: int = 0
    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task] = field(default_factory=set)

    async def __aenter__(self) -> "Receiver":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._tasks.add(asyncio.current_task())
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("ascii")
            line, *fields = head.split("\r\n")[:-2]
            headers = {name.lower(): value for name, value in (f.split(": ", 1) for f in fields)}
            body = await reader.readexactly(int(headers["content-length"]))
            self.requests.append(Request(line, headers, body))
            if self.secret is not None:
                try:
                    Webhook(self.secret).verify(body, headers, json_parse=False)
                except WebhookVerificationError:
                    await answering(b"HTTP/1.1 401 Unauthorized\r\n\r\n")(writer)
                    return
            await self.answer(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the sender went away, as it may
        finally:
            writer.close()


class Resolver:
    """Made-up names resolved to ``addresses``, without DNS; keeps what it was asked."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = [ipaddress.ip_address(address) for address in addresses]
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append((host, port))
        return self.addresses


@pytest.fixture
def connections(monkeypatch) -> list[tuple[str, int]]:
    """Where send_webhook connects: the real asyncio.open_connection, watched."""
    opened: list[tuple[str, int]] = []
    open_connection = asyncio.open_connection

    async def watched(host, port, **options):
        opened.append((host, port))
        return await open_connection(host, port, **options)

    monkeypatch.setattr(asyncio, "open_connection", watched)
    return opened


@pytest.fixture
def logged(caplog) -> Callable[[], list[str]]:
    """What the sender has logged of the attempts so far: the reasons no status came."""
    caplog.set_level(logging.INFO, logger="api.webhooks")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "api.webhooks"]


def _signed(body: bytes = _BODY) -> tuple[str, dict[str, str]]:
    secret = new_secret()
    return secret, signed_headers([secret], "msg_1", int(time.time()), body)


def _deliver(receiver: Receiver, url: str, **options) -> tuple[Sent, float]:
    """send_webhook to ``url`` ({port}: the receiver's) while the receiver runs, and the
    seconds it took."""

    async def scenario() -> tuple[Sent, float]:
        async with receiver:
            start = time.monotonic()
            _, headers = _signed()
            options.setdefault("allowed_hosts", _LOCAL)
            sent = await send_webhook(url.format(port=receiver.port), headers, _BODY, **options)
            return sent, time.monotonic() - start

    return asyncio.run(scenario())


@pytest.mark.parametrize("status", [200, 204])
def test_a_signed_webhook_is_delivered_to_a_listed_host(status, connections):
    secret, headers = _signed()
    receiver = Receiver(answering(f"HTTP/1.1 {status} Fine\r\n\r\n".encode()), secret=secret)

    async def scenario() -> Sent:
        async with receiver:
            url = f"http://127.0.0.1:{receiver.port}/hooks/usage?team=a%20b#top"
            return await send_webhook(url, headers, _BODY, allowed_hosts=_LOCAL)

    sent = asyncio.run(scenario())
    assert sent == Sent(status, None) and sent.delivered
    [request] = receiver.requests
    assert request.line == "POST /hooks/usage?team=a%20b HTTP/1.1"
    assert request.body == _BODY
    assert request.headers | headers == request.headers  # the signature, as the receiver checked
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["content-length"] == str(len(_BODY))
    assert request.headers["user-agent"] == "Usage-Webhooks/1"
    assert request.headers["connection"] == "close"
    assert connections == [("127.0.0.1", receiver.port)]


@pytest.mark.parametrize(
    ("scheme", "listed"),
    [
        ("http", "127.0.0.1:{other}"),  # another port of the host
        ("http", "127.0.0.1"),  # no port: http's default, 80, only
        ("https", "127.0.0.1"),  # https's default, 443, only: 127.0.0.1 is loopback elsewhere
        ("http", "[::1]:{port}"),  # the port, on another host
    ],
)
def test_a_listed_host_is_open_on_its_listed_ports_only(scheme, listed, connections):
    """USAGE_WEBHOOK_ALLOW_HOSTS=127.0.0.1 once let a manage key reach every port of the
    service's machine: an entry names its port (or means the scheme's default)."""
    receiver = Receiver()

    async def scenario() -> tuple[Sent, Sent]:
        async with receiver:
            url = f"{scheme}://127.0.0.1:{receiver.port}/hook"
            port, other = receiver.port, receiver.port % 65535 + 1
            allowed = frozenset({listed.format(port=port, other=other)})
            refused = await send_webhook(url, {}, _BODY, allowed_hosts=allowed)
            exact = frozenset({f"127.0.0.1:{port}"})
            return refused, await send_webhook(url, {}, _BODY, allowed_hosts=exact)

    refused, sent = asyncio.run(scenario())
    assert refused.status is None and refused.error is not None
    assert refused.error.startswith("refused: ")
    if scheme == "http":  # the TLS handshake with the plain receiver fails; it was listed
        assert sent == Sent(200, None) and receiver.connections == 1
    assert connections == [("127.0.0.1", receiver.port)]


def test_a_name_connects_to_the_addresses_it_resolved_to_in_turn(connections):
    """The checked addresses themselves, never the name again: [::1] refuses (nothing
    listens there), 127.0.0.1 answers; the Host and the path are the URL's."""
    resolver = Resolver("::1", "127.0.0.1")
    receiver = Receiver()
    sent, _ = _deliver(
        receiver,
        "http://hooks.test:{port}/hooks/%7Eteam/ü x?q=é",
        allowed_hosts=frozenset({"hooks.test:*"}),
        resolve=resolver,
    )
    assert sent.delivered
    assert resolver.asked == [("hooks.test", receiver.port)]
    assert connections == [("::1", receiver.port), ("127.0.0.1", receiver.port)]
    [request] = receiver.requests
    assert request.line == "POST /hooks/%7Eteam/%C3%BC%20x?q=%C3%A9 HTTP/1.1"
    assert request.headers["host"] == f"hooks.test:{receiver.port}"


@pytest.mark.parametrize("status", [400, 404, 500, 503])
def test_an_error_status_is_recorded_and_not_delivered(status):
    receiver = Receiver(answering(f"HTTP/1.1 {status} No\r\nContent-Length: 2\r\n\r\nno".encode()))
    sent, _ = _deliver(receiver, "http://127.0.0.1:{port}/hook")
    assert sent == Sent(status, f"the receiver answered {status}")
    assert not sent.delivered and len(receiver.requests) == 1


def test_interim_answers_come_before_the_status():
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    sent, _ = _deliver(Receiver(answering(interim + _OK)), "http://127.0.0.1:{port}/hook")
    assert sent == Sent(200, None)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"", "the connection closed before the response's headers ended"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Le",
            "the connection closed before the response's headers ended",
        ),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "the answer is not an HTTP/1.x response"),
        (b"HTTP/2 200\r\n\r\n", "the answer is not an HTTP/1.x response"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "the answer is not an HTTP/1.x response"),
    ],
)
def test_a_malformed_or_cut_answer_is_not_delivered(answer, error, logged):
    receiver = Receiver(answering(answer))
    sent, _ = _deliver(receiver, "http://127.0.0.1:{port}/hook")
    assert sent == _NOT_ANSWERED
    [line] = logged()
    assert line == f"webhook msg_1 to http://127.0.0.1:{receiver.port} got no answer: {error}"


@pytest.mark.parametrize("answer", [never_answering, trickling])
def test_a_silent_or_trickling_receiver_is_given_up_on_at_the_timeout(answer, logged):
    receiver = Receiver(answer)
    sent, took = _deliver(receiver, "http://127.0.0.1:{port}/hook", timeout=0.5)
    assert sent == _NOT_ANSWERED
    assert logged()[0].endswith("got no answer: timed out after 0.5 s waiting for the answer")
    assert 0.45 < took < 0.9
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("answer", [endless_headers, endless_interim])
def test_endless_headers_are_cut_at_the_cap(answer, logged):
    sent, took = _deliver(Receiver(answer), "http://127.0.0.1:{port}/hook", timeout=5)
    assert sent == _NOT_ANSWERED
    assert logged()[0].endswith("got no answer: the response's headers exceed 16 KiB")
    assert took < 1


def test_the_body_is_never_read():
    sent, took = _deliver(Receiver(endless_body), "http://127.0.0.1:{port}/hook", timeout=5)
    assert sent == Sent(200, None)
    assert took < 1


def _refusing() -> socket.socket:
    """A socket bound, not listening, on 127.0.0.1: connections to its port are refused."""
    bound = socket.socket()
    bound.bind(("127.0.0.1", 0))
    return bound


def test_a_refused_connection_is_not_delivered(logged):
    with _refusing() as bound:
        port = bound.getsockname()[1]
        sent = asyncio.run(
            send_webhook(f"http://127.0.0.1:{port}/hook", {}, _BODY, allowed_hosts=_LOCAL)
        )
    assert sent == _NOT_ANSWERED
    assert logged() == [
        f"webhook None to http://127.0.0.1:{port} got no answer: "
        "connecting to 127.0.0.1: Connection refused"
    ]


def test_a_refused_a_cut_and_a_silent_connection_read_alike():
    """What API clients read of an attempt cannot tell a closed port from an open one (a
    receiver that closes at once, or says nothing): the deliveries listing scans no ports."""

    async def scenario() -> list[Sent]:
        with _refusing() as bound:
            port = bound.getsockname()[1]
            refused = await send_webhook(
                f"http://127.0.0.1:{port}/hook", {}, _BODY, allowed_hosts=_LOCAL
            )
        sent = [refused]
        for answer in (answering(b""), never_answering):
            async with Receiver(answer) as receiver:
                url = f"http://127.0.0.1:{receiver.port}/hook"
                sent.append(await send_webhook(url, {}, _BODY, allowed_hosts=_LOCAL, timeout=0.5))
        return sent

    assert asyncio.run(scenario()) == [_NOT_ANSWERED] * 3


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("elsewhere", ["http://169.254.169.254/latest/meta-data/", "receiver"])
def test_redirects_are_not_followed(status, elsewhere, connections):
    other = Receiver()

    async def scenario() -> tuple[Sent, Receiver]:
        async with other:
            location = f"http://127.0.0.1:{other.port}/" if elsewhere == "receiver" else elsewhere
            redirect = f"HTTP/1.1 {status} Moved\r\nLocation: {location}\r\n\r\n".encode()
            async with Receiver(answering(redirect)) as receiver:
                url = f"http://127.0.0.1:{receiver.port}/hook"
                _, headers = _signed()
                return await send_webhook(url, headers, _BODY, allowed_hosts=_LOCAL), receiver

    sent, receiver = asyncio.run(scenario())
    assert sent == Sent(status, "redirects are not followed") and not sent.delivered
    assert connections == [("127.0.0.1", receiver.port)]
    assert other.connections == 0


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("https://127.0.0.1:{port}/hook", None),
        ("http://127.0.0.1:{port}/hook", None),
        ("https://[::1]:{port}/hook", None),
        ("https://[::ffff:127.0.0.1]:{port}/hook", None),
        ("https://169.254.169.254/latest/meta-data/", None),
        ("http://169.254.169.254/latest/meta-data/", None),
        ("https://10.0.0.1/hook", None),
        ("https://localhost:{port}/hook", None),  # /etc/hosts
        ("https://2130706433:{port}/hook", None),  # 127.0.0.1 as getaddrinfo reads one number
        ("https://hooks.example/hook", ["10.0.0.1"]),
        ("https://hooks.example/latest/meta-data/", ["169.254.169.254"]),
        ("https://hooks.example:{port}/hook", ["93.184.215.14", "127.0.0.1"]),  # all are checked
        ("https://192.0.0.8:{port}/hook", None),  # IETF protocol assignments
        ("https://192.88.99.1:{port}/hook", None),  # the 6to4 relay anycast
        ("https://[3fff::1]:{port}/hook", None),  # IPv6 documentation (2024)
        ("https://hooks.example:{port}/hook", ["64:ff9b::7f00:1"]),  # NAT64 to 127.0.0.1
    ],
)
def test_an_address_that_is_not_public_is_refused_before_connecting(
    url, addresses, connections, logged
):
    receiver = Receiver()
    resolve = Resolver(*addresses) if addresses is not None else None
    sent, _ = _deliver(receiver, url, allowed_hosts=frozenset({"hooks.test:*"}), resolve=resolve)
    assert sent.status is None and sent.error is not None and sent.error.startswith("refused: ")
    if url.startswith("https"):  # (plain http is refused for its form, not listed)
        # Which address, and why, only in the log: the name may be one of the service's own
        # network, whose addresses the deliveries' readers need not learn.
        host = url.split("/")[2].split(":{port}")[0].strip("[]")
        assert sent.error == f"refused: {host} does not resolve to addresses webhooks may reach"
        [line] = logged()
        assert " refused: " in line and "webhooks go to public addresses only" in line
    assert connections == [] and receiver.connections == 0


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://example.com/hook", "http is only allowed to the operator's listed hosts"),
        ("ftp://example.com/hook", "the URL must be https://host/..."),
        ("https://user:secret@example.com/hook", "the URL may not carry credentials"),
        ("https://exa mple.com/hook", "'exa mple.com' is not a host name: ASCII"),
        ("https://example..com/hook", "'example..com' is not a host name"),
        ("https://exa\x00mple.com/hook", "the URL may not contain control characters"),
    ],
)
def test_a_url_of_the_wrong_form_is_refused_before_resolving(url, why, connections):
    resolver = Resolver("127.0.0.1")
    sent = asyncio.run(send_webhook(url, {}, _BODY, allowed_hosts=_NONE, resolve=resolver))
    assert sent.status is None and sent.error is not None
    assert sent.error.startswith(f"refused: {why}")
    assert resolver.asked == [] and connections == []


def test_a_name_that_does_not_resolve_is_not_delivered(connections, logged):
    async def failing(host: str, port: int) -> list[IPAddress]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def hanging(host: str, port: int) -> list[IPAddress]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def send(resolve) -> Sent:
        url = "https://hooks.example/hook"
        return asyncio.run(
            send_webhook(url, {}, _BODY, allowed_hosts=_NONE, timeout=0.2, resolve=resolve)
        )

    refused = Sent(None, "refused: hooks.example does not resolve to addresses webhooks may reach")
    assert send(Resolver()) == refused
    assert send(failing) == _NOT_ANSWERED
    assert send(hanging) == _NOT_ANSWERED
    assert [line.split(": ", 1)[1] for line in logged()] == [
        "hooks.example does not resolve",
        "resolving hooks.example: Name or service not known",
        "timed out after 0.2 s resolving hooks.example",
    ]
    assert connections == []


@pytest.fixture
def certificate(tmp_path) -> Path:
    path = tmp_path / "hooks.test.pem"
    path.write_text(_CERTIFICATE + _KEY)
    return path


def _tls_receiver(certificate: Path) -> Receiver:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate)
    return Receiver(tls=context)


@pytest.mark.parametrize(
    ("name", "trusted", "error"),
    [
        ("hooks.test", True, None),
        ("hooks.test", False, "the certificate is not valid: self-signed certificate"),
        ("other.test", True, "the certificate is not valid: Hostname mismatch"),
    ],
)
def test_https_verifies_the_certificate_for_the_urls_host(
    name, trusted, error, certificate, monkeypatch, logged
):
    if trusted:
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    receiver = _tls_receiver(certificate)
    sent, _ = _deliver(
        receiver,
        f"https://{name}:{{port}}/hook",
        allowed_hosts=frozenset({f"{name}:*"}),
        resolve=Resolver("127.0.0.1"),
    )
    if error is None:
        assert sent == Sent(200, None)
        assert receiver.requests[0].headers["host"] == f"{name}:{receiver.port}"
    else:
        assert sent == _NOT_ANSWERED
        assert f"got no answer: connecting to 127.0.0.1: {error}" in logged()[0]
        assert receiver.requests == []
