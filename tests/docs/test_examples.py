"""The docs are checked like code: every curl and Python example of the README and docs/
runs against the real server (`usage-api serve` over the test database, seeded with the
demo's last two days), as a reader runs them going down a page, and answers with a 2xx or
the status its page states; where a page shows an answer, the service's answer now has the
same shape (keys, nesting, types; not the figures).

The machinery is scripts/docs_examples.py's, which also writes the answers the pages show
from the whole demo data: a changed answer fails here until that script is run again. The
Python example that verifies a webhook is given a real delivery of the service's watcher."""

import asyncio
import importlib.util
import re
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from unittest import mock

import pytest

from api.alerts.watcher import watch_once
from api.dev import demo
from testkit.database import reset, with_connection
from testkit.factories import llm_call, post_events
from testkit.receiver import RECEIVER_HOSTS

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "docs_examples", ROOT / "scripts" / "docs_examples.py"
)
docs_examples = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(docs_examples)

PAGES = [page for page in docs_examples.PAGES if docs_examples.examples(page)]


@pytest.fixture(scope="module")
def demo_data(database_url: str) -> Iterator[str]:
    """The demo's organizations over the last two days: every answer's shape, quickly."""
    reset(database_url)
    with mock.patch.object(demo, "DAYS", 2), ThreadPoolExecutor(1) as thread:
        # In a thread of its own, as testkit.database does: no event loop may be running here.
        thread.submit(asyncio.run, demo.load_demo(database_url, now=datetime.now(UTC))).result()
    yield database_url
    reset(database_url)


@pytest.fixture
def webhook_delivery(demo_data, client, admin_key, ingest_key) -> docs_examples.Delivery:
    """A webhook as the watcher sends it: a threshold of acme's crossed by an LLM call, one
    watcher pass, and the POST a receiver on 127.0.0.1 got, raw."""
    got: list[tuple[bytes, dict[str, str]]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append((self.rfile.read(int(self.headers["Content-Length"])), dict(self.headers)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bearer = {"Authorization": f"Bearer {admin_key}"}
    try:
        created = client.post(
            "/orgs/acme/thresholds",
            headers=bearer,
            json={
                "section": "llm",
                "measure": "input_tokens",
                "period": "day",
                "limit": 100,
                "url": f"http://127.0.0.1:{server.server_port}/usage",
            },
        )
        assert created.status_code == 201, created.text
        threshold = created.json()
        call = llm_call(time=datetime.now(UTC), input_tokens=500, cached_tokens=0)
        assert post_events(client, ingest_key, [call]).status_code == 200
        with_connection(
            demo_data,
            lambda conn: watch_once(
                conn, allowed_hosts=RECEIVER_HOSTS, public_url="http://127.0.0.1:8000"
            ),
        )
        client.delete(f"/orgs/acme/thresholds/{threshold['id']}", headers=bearer)
    finally:
        server.shutdown()
        server.server_close()
    assert len(got) == 1, "the watcher delivered no webhook"
    body, headers = got[0]
    return docs_examples.Delivery(threshold["secret"], body, headers)


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_the_examples_run_and_answer_as_shown(page, demo_data, server_url, tmp_path, request):
    for tool in ("bash", "curl", "gzip"):
        assert shutil.which(tool), (
            f"the docs' examples need {tool} (Debian: apt-get install {tool})"
        )
    session = docs_examples.Session(
        server_url,
        demo_data,
        tmp_path,
        webhook=lambda: request.getfixturevalue("webhook_delivery"),
    )
    changed = []
    for example in docs_examples.examples(page):
        result = session.run(example)
        if result.failure():
            pytest.fail(result.report())  # the page's next examples may need this one
        if example.answer:
            shown = example.answer.fence
            changed += [
                f"{example.where}: {difference}"
                for difference in docs_examples.shape_differences(
                    shown.code, shown.lang, result.stdout
                )
            ]
    assert not changed, (
        "answers no longer shaped as the page shows them (scripts/docs_examples.py writes them"
        " again):\n" + "\n".join(changed)
    )


def test_every_curl_and_python_block_is_an_example():
    """None escapes the test above: a block with a curl in it, or of Python, is marked."""
    unmarked = []
    for page in docs_examples.PAGES:
        lines = page.read_text().splitlines(keepends=True)
        marked = {example.fence.start for example in docs_examples.examples(page, lines)}
        for fence in docs_examples.fences(lines):
            runs = fence.lang == "python" or re.search(r"^\s*curl |\| *curl ", fence.code, re.M)
            if runs and fence.start not in marked:
                unmarked.append(f"{page.relative_to(ROOT)}:{fence.start + 1}")
    assert not unmarked, f"curl or Python not marked <!-- example -->: {unmarked}"


def test_the_answers_are_as_the_script_writes_them():
    """Each JSON answer is valid JSON laid out as scripts/docs_examples.py lays it out, so one
    edited by hand stands out."""
    for page in docs_examples.PAGES:
        for example in docs_examples.examples(page):
            answer = example.answer
            if answer is not None and answer.fence.lang == "json":
                shown = answer.fence.code
                rendered = docs_examples.render(shown, answer.items)
                assert rendered == ("json", shown), f"{example.where}: not as the script writes"


def test_the_webhook_shown_is_shaped_as_the_one_sent(webhook_delivery):
    """The webhook's body on the thresholds' page has the keys and types of a real one."""
    page = ROOT / "docs" / "thresholds.md"
    (shown,) = [
        fence.code
        for fence in docs_examples.fences(page.read_text().splitlines(keepends=True))
        if fence.lang == "json" and '"usage.threshold.crossed"' in fence.code
    ]
    differences = docs_examples.shape_differences(shown, "json", webhook_delivery.body.decode())
    assert not differences, differences
