"""The HTTP server's own defences, over a real socket: a connection that does not finish
its headers in time is closed (slowloris), one that does is served."""

import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import msgspec
import pytest

from testkit.server import UNLIMITED, live_server

HEADER_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def address(database_url) -> Iterator[tuple[str, int]]:
    with live_server(database_url, USAGE_HEADER_TIMEOUT=str(HEADER_TIMEOUT), **UNLIMITED) as url:
        parts = urlsplit(url)
        yield parts.hostname, parts.port


def _closed_after(conn: socket.socket) -> float:
    """Seconds until the server closes ``conn`` (reading and dropping what it sends)."""
    started = time.monotonic()
    conn.settimeout(HEADER_TIMEOUT * 10)
    while conn.recv(65536):
        pass
    return time.monotonic() - started


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


def test_a_request_the_server_cannot_read_is_refused_with_a_problem(address):
    with socket.create_connection(address) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: usage\r\nX-Trace: a\x00b\r\n\r\n")
        conn.settimeout(5)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"content-type: application/problem+json" in head.lower()
    assert msgspec.json.decode(body)["status"] == 400
