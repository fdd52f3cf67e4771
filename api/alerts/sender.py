"""One webhook delivery: a signed POST over HTTP/1.1, safe against server-side request forgery.

The URL's form and every address its host resolves to pass api.core.webhook_targets before
any connection, and the connection goes to a checked address, never the name again (DNS
rebinding gains nothing). Redirects are never followed: a 3xx could point anywhere, the
cloud metadata service among them. Only the status line and headers are read, capped, never
the body, and one timeout bounds the whole attempt, so a slow or endless answer holds no
delivery. Nothing raises for the network's reasons: the outcome says what happened, in words
API clients may read, and the log says why when no HTTP status came.
The standard library's streams suffice for one request and its status, no HTTP client.
"""

import asyncio
import ipaddress
import logging
import os
import re
import socket
import ssl
import string
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from urllib.parse import quote, urlsplit

from api.core.signatures import signed_headers
from api.core.webhook_targets import (
    IPAddress,
    RefusedTarget,
    checked_addresses,
    literal_address,
    parse_target,
)

_log = logging.getLogger("api.webhooks")
# Lookups of webhook hosts: a bounded pool of their own, so that names whose DNS hangs
# (each lookup outlives its attempt's timeout) take no thread the folder or psycopg use.
_RESOLVER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-dns")
USER_AGENT = "Usage-Webhooks/1"
MAX_HEAD = 16 * 1024  # bytes of status lines and headers read before giving up
_TOO_LONG = f"the response's headers exceed {MAX_HEAD // 1024} KiB"
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-9][0-9][0-9])(?: [^\r\n]*)?\r\n")
# The error of every attempt that got no HTTP status, whatever kept it from one: a name that
# does not resolve, a refused or reset connection, TLS, silence, an answer that is not HTTP.
# Told apart, they would map which ports of a host are open, closed or filtered to anyone who
# reads the deliveries; the log has the reason.
NO_ANSWER = "no HTTP answer: the receiver could not be reached or did not answer in time"

Resolve = Callable[[str, int], Awaitable[list[IPAddress]]]


@dataclass(frozen=True, slots=True)
class Sent:
    status: int | None  # the receiver's HTTP status, if it answered
    error: str | None  # why it was not delivered, as API clients read it (None when 2xx)

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _BadAnswer(Exception):
    """The receiver's answer is not an HTTP/1.x response head within MAX_HEAD."""


class _NoAnswer(Exception):
    """No HTTP status came; why, for the log only."""

    def __init__(self, origin: str, detail: str) -> None:
        super().__init__(detail)
        self.origin = origin  # scheme, host and port: the path and query may be credentials


async def send_signed(
    url: str, secrets: list[str], webhook_id: str, body: bytes, allowed_hosts: frozenset[str]
) -> Sent:
    """``body`` signed with each of ``secrets`` and sent to ``url`` (send_webhook): a
    crossing's attempt and a test alike."""
    # Signed at the wall clock's time, which receivers hold it against (a replay is one
    # whose timestamp is minutes off theirs).
    headers = signed_headers(secrets, webhook_id, int(time.time()), body)
    return await send_webhook(url, headers, body, allowed_hosts=allowed_hosts)


async def send_webhook(
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    allowed_hosts: frozenset[str],
    # Inside, not around (ASYNC109): it bounds every stage and becomes an outcome, not an
    # exception, naming the stage it cut short.
    timeout: float = 10.0,  # noqa: ASYNC109
    resolve: Resolve | None = None,
) -> Sent:
    """POST the JSON ``body`` with ``headers`` (the webhook-id, -timestamp and -signature
    headers) to ``url``. ``timeout`` bounds the whole attempt: resolving, connecting,
    sending and reading the status. ``resolve`` defaults to getaddrinfo in threads of
    their own (a name whose DNS hangs holds one of them, not the server's shared ones).
    An attempt without an HTTP status is logged with its webhook-id and why."""
    webhook_id = headers.get("webhook-id")
    try:
        return await _attempt(url, headers, body, allowed_hosts, timeout, resolve)
    except _NoAnswer as failure:
        _log.info("webhook %s to %s got no answer: %s", webhook_id, failure.origin, failure)
        return Sent(None, NO_ANSWER)
    except Exception as error:
        # Nothing a URL or a receiver does may stop the deliveries of others: an outcome.
        _log.exception("webhook %s failed unexpectedly", webhook_id)
        return Sent(None, f"the attempt failed: {type(error).__name__}")


async def _attempt(
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    allowed_hosts: frozenset[str],
    timeout: float,  # noqa: ASYNC109
    resolve: Resolve | None,
) -> Sent:
    try:
        target = parse_target(url, allowed_hosts)
        literal = literal_address(target)
        host = target.host
    except RefusedTarget as error:
        return Sent(None, f"refused: {error}")
    scheme = urlsplit(url).scheme
    origin = f"{scheme}://{_bracketed(host)}:{target.port}"
    request = _request(url, scheme, host, target.port, headers, body)
    tls = ssl.create_default_context() if scheme == "https" else None
    stage = f"resolving {host}"
    writer = None
    try:
        async with asyncio.timeout(timeout):
            if literal is not None:
                found = [literal]
            else:
                found = await (resolve or _getaddrinfo)(host, target.port)
            failures = []
            for address in checked_addresses(target, found):
                stage = f"connecting to {address}"
                try:
                    reader, writer = await asyncio.open_connection(
                        str(address),
                        target.port,
                        ssl=tls,
                        # The certificate is checked against the URL's host, not the address.
                        server_hostname=host if tls is not None else None,
                        flags=socket.AI_NUMERICHOST,
                        limit=MAX_HEAD,
                    )
                    break
                except OSError as error:
                    failures.append(f"{stage}: {_reason(error)}")
            else:
                raise _NoAnswer(origin, "; ".join(failures))
            stage = "sending the request"
            writer.write(request)
            await writer.drain()
            stage = "waiting for the answer"
            status = await _read_status(reader)
    except RefusedTarget as error:
        # Which address, and why, stays in the log: a name of the service's own network
        # would otherwise tell where it points.
        _log.info("webhook %s to %s refused: %s", headers.get("webhook-id"), origin, error)
        return Sent(None, f"refused: {host} does not resolve to addresses webhooks may reach")
    except TimeoutError:
        raise _NoAnswer(origin, f"timed out after {timeout:g} s {stage}") from None
    except _BadAnswer as error:
        raise _NoAnswer(origin, str(error)) from None
    except OSError as error:
        raise _NoAnswer(origin, f"{stage}: {_reason(error)}") from None
    finally:
        # Outside the timeout, which could otherwise cut this short with the status read.
        # abort, not close: close would flush what the receiver may never read and, over
        # TLS, wait on its close_notify; nothing more is to be said or heard. wait_closed
        # sees the socket gone (raising the error the connection failed with, if any).
        if writer is not None:
            writer.transport.abort()
            with suppress(OSError):
                await writer.wait_closed()
    if 200 <= status < 300:
        return Sent(status, None)
    if 300 <= status < 400:
        return Sent(status, "redirects are not followed")
    return Sent(status, f"the receiver answered {status}")


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _getaddrinfo(host: str, port: int) -> list[IPAddress]:
    found = await asyncio.get_running_loop().run_in_executor(
        _RESOLVER, partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    )
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in found))


def _request(
    url: str, scheme: str, host: str, port: int, headers: Mapping[str, str], body: bytes
) -> bytes:
    parts = urlsplit(url)
    # Percent-encodes what a request line cannot carry (spaces, controls, non-ASCII) and
    # keeps the URL's own escapes; the fragment is the sender's, never sent.
    path = quote(parts.path or "/", safe=string.punctuation)
    if parts.query:
        path += "?" + quote(parts.query, safe=string.punctuation)
    authority = _bracketed(host)
    if port != (443 if scheme == "https" else 80):
        authority += f":{port}"
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {authority}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        f"User-Agent: {USER_AGENT}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


async def _read_status(reader: asyncio.StreamReader) -> int:
    """The final status: interim 1xx answers (100 Continue, 103 Early Hints), which an
    HTTP/1.1 client must accept unasked, are skipped; all heads together within MAX_HEAD."""
    budget = MAX_HEAD
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise _BadAnswer(_TOO_LONG) from None
        except asyncio.IncompleteReadError:
            raise _BadAnswer("the connection closed before the response's headers ended") from None
        budget -= len(head)
        if budget < 0:
            raise _BadAnswer(_TOO_LONG)
        status_line = _STATUS_LINE.match(head)
        if status_line is None:
            raise _BadAnswer("the answer is not an HTTP/1.x response")
        status = int(status_line[1])
        if status >= 200 or status == 101:
            return status


def _reason(error: OSError) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"the certificate is not valid: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed: {error.reason or error}"
    if error.errno is not None and error.errno > 0:
        # The system's words: asyncio's ("Connect call failed (address)") repeat the stage's.
        return os.strerror(error.errno)
    return error.strerror or str(error) or type(error).__name__  # getaddrinfo's words among them
