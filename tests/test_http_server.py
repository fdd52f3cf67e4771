"""The HTTP server's own defences (api.web.http_server), over a real socket: headers late
(slowloris) or too large, bodies late or left unread, too many connections, and the log
when the process runs out of open files. Its refusals are answered as the application's
answers are: with an X-Request-ID, an access line and a count in /metrics."""

import json
import os
import resource
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from testkit.server import UNLIMITED, running_server

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 2.0
MAX_CONNECTIONS = 32
MAX_HEADER_BYTES = 16 * 1024  # the defaults
MAX_HEADERS = 100
# Seconds any wait of these tests is given: the suite shares a busy machine, and each
# bound is met well within it.
PATIENCE = 30


@dataclass(frozen=True)
class Live:
    url: str
    address: tuple[str, int]
    pid: int
    log: Path


@pytest.fixture(scope="module")
def server(database_url, tmp_path_factory) -> Iterator[Live]:
    log = tmp_path_factory.mktemp("http_server") / "server.log"
    with running_server(
        database_url,
        log=log,
        USAGE_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
        USAGE_BODY_TIMEOUT=str(BODY_TIMEOUT),
        USAGE_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
        **UNLIMITED,
    ) as running:
        yield _live(running, log)


@pytest.fixture
def address(server) -> tuple[str, int]:
    return server.address


def _live(running, log: Path) -> Live:
    parts = urlsplit(running.url)
    return Live(running.url, (parts.hostname, parts.port), running.process.pid, log)


def _closed_after(conn: socket.socket) -> float:
    """Seconds until the server closes ``conn`` (reading and dropping what it sends)."""
    started = time.monotonic()
    conn.settimeout(HEADER_TIMEOUT * 10)
    while conn.recv(65536):
        pass
    return time.monotonic() - started


def _read_to_end(conn: socket.socket) -> bytes:
    """All the server sends until it closes ``conn``."""
    conn.settimeout(PATIENCE)
    answer = b""
    while chunk := conn.recv(65536):
        answer += chunk
    return answer


def _status_of_next(conn: socket.socket) -> int:
    """The status of the next response on a kept-alive ``conn``, read whole."""
    conn.settimeout(PATIENCE)
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += conn.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    (length,) = [line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length")]
    while len(body) < int(length.split(b":")[1]):
        body += conn.recv(65536)
    return int(head.split(b" ")[1])


def _problem(answer: bytes, status: int) -> dict:
    """The one response in ``answer``: a problem of ``status`` closing the connection."""
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d" % status), answer[:200]
    assert b"content-type: application/problem+json" in head.lower()
    assert b"connection: close" in head.lower()
    details = msgspec.json.decode(body)  # all of the rest: no other response follows
    assert details["status"] == status
    return details


def _peak_rss_bytes(pid: int) -> int:
    """The most memory process ``pid`` has held (VmHWM): freed memory does not hide it."""
    status = Path(f"/proc/{pid}/status").read_text()
    (line,) = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(line.split()[1]) * 1024


def test_partial_headers_are_closed_after_the_timeout(address):
    with socket.create_connection(address) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: usage\r\n")
        assert _closed_after(conn) < HEADER_TIMEOUT * 5


def test_a_silent_connection_is_closed_after_the_timeout(address):
    with socket.create_connection(address) as conn:
        assert _closed_after(conn) < HEADER_TIMEOUT * 5


def test_a_kept_alive_connection_is_held_to_it_for_its_next_request(address):
    with socket.create_connection(address) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: usage\r\n\r\n")
        assert conn.recv(65536).startswith(b"HTTP/1.1 200")
        conn.sendall(b"GET /healthz HTTP/1.1\r\n")
        assert _closed_after(conn) < HEADER_TIMEOUT * 5


def test_headers_sent_slowly_but_in_time_are_served(address):
    with socket.create_connection(address) as conn:
        for piece in (b"GET /healthz HTTP/1.1\r\n", b"Host: usage\r\n", b"\r\n"):
            conn.sendall(piece)
            time.sleep(HEADER_TIMEOUT / 4)
        conn.settimeout(5)
        assert conn.recv(65536).startswith(b"HTTP/1.1 200")


def _request_id(answer: bytes) -> str:
    """The X-Request-ID of the one response in ``answer``."""
    head = answer.partition(b"\r\n\r\n")[0].decode("latin-1").lower().split("\r\n")
    (request_id,) = [line.split(": ", 1)[1] for line in head if line.startswith("x-request-id:")]
    return request_id


def _is_new_id(request_id: str) -> bool:
    return len(request_id) == 32 and all(c in "0123456789abcdef" for c in request_id)


def _access_line(log: Path, request_id: str) -> dict:
    """The one access line of ``request_id``, once the server has written it."""
    deadline = time.monotonic() + PATIENCE
    while True:
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        found = [
            line
            for line in lines
            if line.get("logger") == "api.access" and line.get("request_id") == request_id
        ]
        if found:
            (line,) = found
            return line
        assert time.monotonic() < deadline, f"{request_id} was never logged"
        time.sleep(0.1)


def _answers_counted(url: str, method: str, path: str, status: int) -> float:
    """usage_requests_total of the labels, as /metrics says now."""
    text = httpx.get(f"{url}/metrics", timeout=PATIENCE).text
    labels = {"method": method, "path": path, "status_code": str(status)}
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "usage_requests_total" and sample.labels == labels
    )


def _assert_counted(url: str, labels: tuple[str, str, int], expected: float) -> None:
    """usage_requests_total of ``labels`` (method, path, status) reaches ``expected``, and
    no more: an answer is counted once whoever gave it is done, maybe after the client has
    read it."""
    deadline = time.monotonic() + PATIENCE
    while (counted := _answers_counted(url, *labels)) < expected:
        assert time.monotonic() < deadline, f"{labels} counted {counted}, not {expected}"
        time.sleep(0.1)
    assert counted == expected


@pytest.mark.parametrize("caller_id", [None, "nul-in-a-header-1"])
def test_a_request_the_server_cannot_read_is_refused_with_a_problem(server, caller_id):
    """Answered as every answer is: the caller's X-Request-ID (read before the NUL) or a
    new one, an access line with the path as far as it was read (never the query), and a
    count, under no route."""
    labels = ("GET", "(unmatched)", 400)
    before = _answers_counted(server.url, *labels)
    given = b"" if caller_id is None else b"X-Request-ID: %s\r\n" % caller_id.encode()
    with socket.create_connection(server.address) as conn:
        conn.sendall(b"GET /orgs/acme/usage/llm?range=7d HTTP/1.1\r\nHost: usage\r\n")
        conn.sendall(given + b"X-Trace: a\x00b\r\n\r\n")
        answer = _read_to_end(conn)
    _problem(answer, 400)
    request_id = _request_id(answer)
    assert request_id == caller_id if caller_id else _is_new_id(request_id)
    line = _access_line(server.log, request_id)
    assert line["message"] == "GET /orgs/acme/usage/llm 400"
    read = (line["method"], line["path"], line["status"], line["key_id"])
    assert read == ("GET", "/orgs/acme/usage/llm", 400, None)
    assert 0 <= line["duration_ms"] < PATIENCE * 1000
    _assert_counted(server.url, labels, before + 1)


def _padding(count: int, size: int) -> bytes:
    return b"".join(b"X-Pad-%03d: %s\r\n" % (n, b"a" * size) for n in range(count))


@pytest.mark.parametrize(
    "headers",
    [_padding(17, 1000), _padding(MAX_HEADERS + 1, 1)],
    ids=["17 KB of headers", f"{MAX_HEADERS + 1} headers"],
)
def test_headers_past_their_bounds_are_refused_with_431(server, headers):
    """With the caller's X-Request-ID, read before the bound, an access line and a count."""
    labels = ("GET", "(unmatched)", 431)
    before = _answers_counted(server.url, *labels)
    request_id = f"past-the-bounds-{len(headers)}"
    with socket.create_connection(server.address) as conn:
        conn.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: usage\r\nX-Request-ID: %s\r\n%s\r\n"
            % (request_id.encode(), headers)
        )
        answer = _read_to_end(conn)
    assert "16,384 bytes" in _problem(answer, 431)["detail"]
    assert _request_id(answer) == request_id
    line = _access_line(server.log, request_id)
    assert (line["method"], line["path"], line["status"]) == ("GET", "/healthz", 431)
    _assert_counted(server.url, labels, before + 1)


def test_a_flood_of_headers_is_cut_off_before_it_takes_memory(server):
    """64 headers of 1 MiB (the attack sent 250 of 4 MiB): the server stops reading soon
    after the bound, and never holds them (it took 1 GB for the attack's)."""
    before = _peak_rss_bytes(server.pid)
    header = b"a" * 2**20
    with socket.create_connection(server.address) as conn:
        conn.settimeout(PATIENCE)
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: usage\r\n")
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for n in range(64):
                conn.sendall(b"X-Flood-%d: %s\r\n" % (n, header))
    assert _peak_rss_bytes(server.pid) - before < 8 * 2**20


def test_headers_within_the_bounds_are_served_however_they_arrive(address):
    """Near the bound, in pieces (counted as they come) or with a body in the same packet
    (the body is not counted); the connection is kept for the next request."""
    request_line = b"GET /healthz HTTP/1.1\r\nHost: usage\r\n"
    headers = request_line + _padding(MAX_HEADERS - 2, MAX_HEADER_BYTES // MAX_HEADERS - 10)
    assert MAX_HEADER_BYTES - 256 < len(headers) + 2 < MAX_HEADER_BYTES
    body = b"b" * 2_000
    with socket.create_connection(address) as conn:
        conn.settimeout(PATIENCE)
        for start in range(0, len(headers), 1024):
            conn.sendall(headers[start : start + 1024])
            time.sleep(0.01)
        conn.sendall(b"\r\n")
        assert _status_of_next(conn) == 200
        conn.sendall(headers + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        assert _status_of_next(conn) == 200
        conn.sendall(request_line + b"\r\n")
        assert _status_of_next(conn) == 200


def _trickle_until_closed(conn: socket.socket, head: bytes) -> tuple[bytes, bool]:
    """Sends ``head`` then a byte of body at a time, reading what comes back, until the
    server closes the connection or ``PATIENCE`` runs out: (what it sent, whether it closed)."""
    conn.sendall(head)
    conn.settimeout(0.2)
    received = b""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        try:
            conn.sendall(b"a")
            chunk = conn.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return received, True
        if not chunk:
            return received, True
        received += chunk
    return received, False


def test_an_answer_given_before_the_body_ends_the_connection(address):
    """POST /healthz (405) with a body trickled a byte at a time: answered, then closed,
    where the rest of the body was read for as long as it came."""
    with socket.create_connection(address) as conn:
        head = b"POST /healthz HTTP/1.1\r\nHost: usage\r\nContent-Length: 100000\r\n\r\n"
        received, closed = _trickle_until_closed(conn, head)
    assert received.startswith(b"HTTP/1.1 405")
    assert closed


def _events_head(key: str, request_id: str, framing: bytes) -> bytes:
    return (
        b"POST /events HTTP/1.1\r\nHost: usage\r\nAuthorization: Bearer %s\r\n"
        b"X-Request-ID: %s\r\nContent-Type: application/cloudevents-batch+json\r\n%s\r\n"
    ) % (key.encode(), request_id.encode(), framing)


def test_a_body_that_does_not_arrive_in_time_is_refused_with_408(server, address, ingest_key):
    """A key that may post events, and a body trickled too slowly for the body timeout.
    The application serves the request: it is recorded once, by the application, under its
    route and the caller's id, with the status the client got (not as a server error, nor
    as a client that left)."""
    labels = ("POST", "/events", 408)
    before = _answers_counted(server.url, *labels)
    head = _events_head(ingest_key, "body-too-late", b"Content-Length: 100000\r\n")
    started = time.monotonic()
    with socket.create_connection(address) as conn:
        received, closed = _trickle_until_closed(conn, head)
    assert closed
    assert time.monotonic() - started >= BODY_TIMEOUT
    assert "did not arrive within 2 s" in _problem(received, 408)["detail"]
    assert _request_id(received) == "body-too-late"
    line = _access_line(server.log, "body-too-late")
    assert (line["method"], line["path"], line["status"]) == ("POST", "/events", 408)
    assert line["key_id"] is not None
    _assert_counted(server.url, labels, before + 1)


def test_a_body_that_is_not_valid_http_is_refused_with_a_problem(server, ingest_key):
    """A chunk whose size is not hexadecimal, in the packet of its headers (the application
    has not begun) or after them (it waits for the body): recorded once, as the 408 is."""
    labels = ("POST", "/events", 400)
    for n, pause in enumerate([0, 0.5]):
        before = _answers_counted(server.url, *labels)
        request_id = f"bad-chunk-{n}"
        head = _events_head(ingest_key, request_id, b"Transfer-Encoding: chunked\r\n")
        with socket.create_connection(server.address) as conn:
            if pause:
                conn.sendall(head)
                time.sleep(pause)
                head = b""
            conn.sendall(head + b"zz\r\n[]\r\n")
            answer = _read_to_end(conn)
        assert "not valid HTTP/1.1" in _problem(answer, 400)["detail"]
        assert _request_id(answer) == request_id
        line = _access_line(server.log, request_id)
        assert (line["method"], line["path"], line["status"]) == ("POST", "/events", 400)
        _assert_counted(server.url, labels, before + 1)


def test_a_client_gone_before_its_body_ends_is_logged_as_499(server, ingest_key):
    """Not as a server error: nothing went wrong in the service."""
    labels = ("POST", "/events", 499)
    before = _answers_counted(server.url, *labels)
    with socket.create_connection(server.address) as conn:
        conn.sendall(_events_head(ingest_key, "gone-early", b"Content-Length: 1000\r\n") + b"[")
        time.sleep(0.5)
    line = _access_line(server.log, "gone-early")
    assert (line["method"], line["path"], line["status"]) == ("POST", "/events", 499)
    _assert_counted(server.url, labels, before + 1)


def test_connections_past_the_cap_are_refused_at_once(server):
    """Connections that send nothing: past the cap, each is answered 503 as it opens and
    closed; the others are held (until the header timeout closes them). Nothing of a
    refused one was read: a new id, and neither method nor path in its line and count."""
    labels = ("(unread)", "(unmatched)", 503)
    before = _answers_counted(server.url, *labels)
    refused = held = 0
    conns = [socket.create_connection(server.address) for _ in range(MAX_CONNECTIONS + 8)]
    try:
        for conn in conns:
            answer = _read_to_end(conn)
            if answer:
                assert _problem(answer, 503)["detail"].startswith("the server has too many")
                assert b"retry-after: 1" in answer.lower()
                request_id = _request_id(answer)
                assert _is_new_id(request_id)
                line = _access_line(server.log, request_id)
                read = (line["method"], line["path"], line["status"])
                assert read == ("(unread)", "(unread)", 503)
                refused += 1
            else:
                held += 1
    finally:
        for conn in conns:
            conn.close()
    assert refused >= 8
    assert held <= MAX_CONNECTIONS
    assert httpx.get(f"{server.url}/healthz", timeout=PATIENCE).status_code == 200
    _assert_counted(server.url, labels, before + refused)


def _accept_failure_lines(log: Path) -> list[dict]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [line for line in lines if "accept" in line["message"]]


def test_accept_failures_are_logged_once_per_interval(database_url, tmp_path):
    """The process out of open files (its limit lowered under it, past what it can raise
    again): asyncio logged each failed accept, thousands a second, with its traceback."""
    log = tmp_path / "server.log"
    with running_server(database_url, log=log, **UNLIMITED) as running:
        live = _live(running, log)
        in_use = len(os.listdir(f"/proc/{live.pid}/fd"))
        resource.prlimit(live.pid, resource.RLIMIT_NOFILE, (in_use + 16, in_use + 16))
        conns = [socket.create_connection(live.address) for _ in range(100)]
        try:
            deadline = time.monotonic() + PATIENCE
            while not _accept_failure_lines(log):
                assert time.monotonic() < deadline, "no accept failure logged"
                time.sleep(0.1)
            first = time.monotonic()
            time.sleep(3)  # the failures go on: accept is tried again every second
            lines = _accept_failure_lines(log)
            assert len(lines) <= 2 + (time.monotonic() - first) / 10
            assert "Too many open files" in lines[0]["message"]
            assert "exception" not in lines[0]
        finally:
            for conn in conns:
                conn.close()
        assert httpx.get(f"{live.url}/healthz", timeout=PATIENCE).status_code == 200
        # asyncio tried accept() again once per pending connection (CPython gh-151615):
        # those retries, a second later, must not find the server stopped (each would log
        # a traceback).
        time.sleep(1.5)
