"""The service as users run it: the installed `usage-api` console script, and a live server."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

USAGE_API = shutil.which("usage-api", path=os.path.dirname(sys.executable))
# The tests' events lie on fixed dates (testkit.factories.BASE_TIME, daylight-saving days of
# 2026), which age with the clock: the tests' servers accept any age (tests/ingest/
# test_acceptance.py checks the window).
ANY_AGE = {"accept_days": 36_500, "raw_retention_days": 36_500}
# Tests send far faster than any caller should, and bad keys on purpose: no rate limits
# (tests/test_rate_limit.py checks them), and events of any age.
UNLIMITED = {
    "USAGE_RATE_LIMIT": "0",
    "USAGE_AUTH_FAILURE_RATE": "0",
    "USAGE_ACCEPT_DAYS": str(ANY_AGE["accept_days"]),
    "USAGE_RAW_RETENTION_DAYS": str(ANY_AGE["raw_retention_days"]),
}

# Seconds a test server's request waits for a pooled connection while all are busy, as long
# as a browser test waits for what it expects (tests/page/conftest.py's WAIT_MS). The
# service's 2 s (USAGE_DB_CHECKOUT_TIMEOUT) is wall time: on a CI machine whose 2 cores were
# busy, a fresh server's first page load (five GETs at once, each a key lookup and a read
# on a pool still growing) held its connections for seconds, and one GET waited past 2 s
# and was answered 503, which the page test's console check failed. Not in UNLIMITED: the
# fault tests' servers keep the service's timeout, their outages timed against it.
CHECKOUT_TIMEOUT = 60.0
PATIENT_POOL = {"USAGE_DB_CHECKOUT_TIMEOUT": str(CHECKOUT_TIMEOUT)}


def usage_api(
    database_url: str, *args: str, stdin: str | None = None, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess:
    """`usage-api ARGS` as a user runs it, over ``database_url`` (``stdin`` its input)."""
    return subprocess.run(
        [USAGE_API, *args],
        input=stdin,
        timeout=timeout,
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": database_url, **env},
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True, slots=True)
class Server:
    url: str
    process: subprocess.Popen


@contextmanager
def running_server(database_url: str, log: Path | None = None, **env: str) -> Iterator[Server]:
    """`usage-api serve` on a free loopback port, once it answers; its log lines go to
    ``log`` if given. Stopped (SIGTERM) on exit unless already stopped. It watches no
    thresholds unless ``USAGE_WATCH_IN_SERVER`` says so: a fuzzer's thresholds name hosts
    anywhere, and tests send webhooks only to their own receivers on 127.0.0.1."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    with ExitStack() as stack:
        stderr = stack.enter_context(log.open("ab")) if log is not None else subprocess.DEVNULL
        process = subprocess.Popen(
            [USAGE_API, "serve", "--port", str(port)],
            env={**os.environ, "DATABASE_URL": database_url, "USAGE_WATCH_IN_SERVER": "0", **env},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            # Generous: a loaded machine (CI's 2 cores shared with other work) starts it slowly,
            # and the wait ends as soon as it answers.
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{base_url}/readyz", timeout=1):
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("usage-api serve did not become ready") from None
                    time.sleep(0.1)
            yield Server(url=base_url, process=process)
        finally:
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=40)


@contextmanager
def live_server(database_url: str, **env: str) -> Iterator[str]:
    """The base URL of ``running_server``."""
    with running_server(database_url, **env) as server:
        yield server.url
