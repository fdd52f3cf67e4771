"""Logs: JSON lines with the request id; keys never appear in them."""

import json
import time
from collections.abc import Callable

import httpx
import pytest

from api.web.logs import MAX_LOGGED_PATH
from testkit.factories import llm_call
from testkit.server import UNLIMITED, running_server


@pytest.fixture(scope="module")
def logged(database_url, tmp_path_factory):
    """A live server writing its log to a file: (base URL, a function reading the lines)."""
    log = tmp_path_factory.mktemp("logs") / "server.log"

    def lines() -> list[dict]:
        return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]

    with running_server(database_url, log=log, **UNLIMITED) as server:
        yield server.url, lines, log


def _access_lines(lines: Callable[[], list[dict]], request_id: str) -> list[dict]:
    """The log's lines of one request: the server writes them as the response leaves, so a
    busy machine may show them a moment after the client has its answer."""
    deadline = time.monotonic() + 5
    while True:
        found = [line for line in lines() if line.get("request_id") == request_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_every_line_is_json_and_requests_carry_their_id(logged, read_key):
    url, lines, _ = logged
    response = httpx.get(
        f"{url}/orgs/acme/usage/llm",
        headers={"Authorization": f"Bearer {read_key}", "X-Request-ID": "trace-42"},
    )
    assert response.headers["x-request-id"] == "trace-42"
    (access,) = _access_lines(lines, "trace-42")
    assert access["logger"] == "api.access"
    assert access["method"] == "GET"
    assert access["path"] == "/orgs/acme/usage/llm"
    assert access["status"] == response.status_code
    assert access["duration_ms"] > 0
    assert access["key_id"] is not None


@pytest.mark.parametrize("given", ["", "with space", "x" * 129, "new\\nline"])
def test_an_unusable_request_id_is_replaced(logged, given):
    url, lines, _ = logged
    response = httpx.get(f"{url}/healthz", headers={"X-Request-ID": given})
    issued = response.headers["x-request-id"]
    assert issued != given and len(issued) == 32
    assert _access_lines(lines, issued)[0]["path"] == "/healthz"


def test_errors_and_unknown_paths_are_logged_with_their_status(logged):
    url, lines, _ = logged
    for path, status in (("/nowhere", 404), ("/orgs/acme/usage/llm", 401)):
        response = httpx.get(f"{url}{path}")
        assert response.status_code == status
        (access,) = _access_lines(lines, response.headers["x-request-id"])
        assert access["status"] == status


def test_keys_never_reach_the_log(logged, read_key, ingest_key, revoked_key):
    """Good, revoked and unknown keys, in the header and in a query string: none is written."""
    url, _, log = logged
    keys = [read_key, ingest_key, revoked_key, "usage_" + "q" * 43]
    for key in keys:
        headers = {"Authorization": f"Bearer {key}"}
        httpx.get(f"{url}/orgs/acme/usage/llm?key={key}", headers=headers)
        httpx.post(f"{url}/events", json=[llm_call()], headers=headers)
        httpx.get(f"{url}/metrics", headers=headers)
    text = log.read_text()
    assert text.count('"api.access"') >= 3 * len(keys)
    for key in keys:
        assert key.removeprefix("usage_") not in text


def test_a_long_path_is_logged_cut_at_1_kb(logged):
    url, lines, _ = logged
    response = httpx.get(f"{url}/{'p' * 5_000}")
    assert response.status_code == 404
    (access,) = _access_lines(lines, response.headers["x-request-id"])
    assert access["path"] == "/" + "p" * (MAX_LOGGED_PATH - 1)
