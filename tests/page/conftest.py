"""The page in a real headless Chromium (Debian's, driven by Playwright) against the real
server and database, seeded with known events."""

import os
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from testkit.factories import (
    identity,
    llm_call,
    message_sent,
    post_events,
    thread_created,
    volume_deleted,
    volume_provisioned,
    workload_allocated,
    workload_released,
)

# Debian's, as scripts/prerequisites.sh installs it (CHROMIUM: another build's path).
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# As the machine notes say: without these, Chromium keeps trying the closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# How long a browser test waits for what it expects: a section drawn, a request sent, Swagger
# UI's answer. Playwright's defaults (5 s for expect, 30 s for the rest) failed on a CI
# machine whose 2 cores were busy with other work; every wait ends as soon as its condition
# holds, so a generous deadline costs a passing run nothing.
WAIT_MS = 60_000
expect.set_options(timeout=WAIT_MS)
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".data" / "screenshots"
AXE = (ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js").read_text()


# Per module: Playwright's sync API runs an event loop on the main thread while it is open,
# and other tests call asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=WAIT_MS
        )
        yield launched
        launched.close()


def known_events(now: datetime) -> list[dict]:
    """acme's usage in the last hours: figures the tests can state exactly."""
    hour = timedelta(hours=1)
    agent = identity("agt-1", "agent", "Support Triage")
    user = identity("usr-1", "user", "Ann Lee")
    return [
        llm_call(time=now - 50 * timedelta(minutes=1), who=agent, model="model-a",
                 input_tokens=1000, cached_tokens=400, output_tokens=100),
        llm_call(time=now - 40 * timedelta(minutes=1), who=user, model="model-b",
                 input_tokens=2000, cached_tokens=0, output_tokens=300),
        llm_call(time=now - 30 * timedelta(minutes=1), who=agent, model="model-a",
                 input_tokens=500, cached_tokens=500, output_tokens=50, succeeded=False),
        workload_allocated("w1", agent="agt-1", cpu_cores=2, memory_bytes=2**31,
                           time=now - 3 * hour),
        workload_released("w1", time=now - 2 * hour),
        volume_provisioned("v1", agent="agt-1", size_bytes=10 * 2**30, time=now - 4 * hour),
        volume_deleted("v1", time=now - 2 * hour),
        thread_created("t1", who=user, time=now - 45 * timedelta(minutes=1)),
        thread_created("t2", who=agent, time=now - 35 * timedelta(minutes=1)),
        *(message_sent("t1", who=user, time=now - n * timedelta(minutes=1)) for n in range(40, 45)),
    ]  # fmt: skip


@pytest.fixture
def seeded(db, client, ingest_key) -> datetime:
    now = datetime.now(UTC)
    assert post_events(client, ingest_key, known_events(now)).status_code == 200
    assert post_events(client, ingest_key, [llm_call(org="globex", time=now)]).status_code == 200
    return now


class UsagePage:
    """A browser tab on the page, counting the usage requests it makes and keeping the errors
    its console shows (the fixture fails a test that leaves any it did not expect)."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.usage_requests: list[str] = []
        self.console_errors: list[str] = []
        self.expected_errors: list[re.Pattern] = []
        page.on(
            "request",
            lambda request: "/usage/" in request.url and self.usage_requests.append(request.url),
        )
        page.on(
            "console",
            lambda message: message.type == "error" and self.console_errors.append(message.text),
        )
        page.on("pageerror", lambda error: self.console_errors.append(f"uncaught: {error}"))

    def expect_console_error(self, pattern: str) -> None:
        """An error the test provokes (a refused key, a failing section): Chromium logs
        every response of 400 or more as one."""
        self.expected_errors.append(re.compile(pattern))

    def unexpected_console_errors(self) -> list[str]:
        return [
            error
            for error in self.console_errors
            if not any(pattern.search(error) for pattern in self.expected_errors)
        ]

    def assert_accessible(self) -> None:
        """axe-core on the page as it is now: no violation of any impact (the page has
        none, so a minor one is a regression as much as a serious one)."""
        self.page.evaluate(AXE)
        violations = self.page.evaluate("async () => (await axe.run(document)).violations")
        found = [
            f"{violation['id']} ({violation['impact']}): {violation['help']} at "
            + ", ".join(" ".join(node["target"]) for node in violation["nodes"][:5])
            for violation in violations
        ]
        assert not found, "\n".join(found)

    def open(self, org: str, key: str | None, query: str = "") -> Page:
        fragment = f"#token={key}" if key else ""
        self.page.goto(f"{self.base_url}/organizations/{org}/activity/usage{query}{fragment}")
        return self.page

    def wait_for_sections(self) -> None:
        """Every section has answered: drawn, empty or failed."""
        self.page.wait_for_function(
            "() => document.querySelectorAll('.section-body[aria-busy]').length === 0"
            " && document.querySelectorAll('.usage-section').length === 4"
        )

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


@pytest.fixture
def usage_page(browser, server_url) -> Iterator[Callable[..., UsagePage]]:
    """New tabs, each in its own browser context; afterwards, no console error unexpected."""
    tabs: list[UsagePage] = []

    def new(**context_options) -> UsagePage:
        context = browser.new_context(**context_options)
        context.set_default_timeout(WAIT_MS)  # actions, navigations, waits for events
        tab = UsagePage(context.new_page(), server_url)
        tabs.append(tab)
        return tab

    yield new
    for tab in tabs:
        tab.page.context.close()
    unexpected = [error for tab in tabs for error in tab.unexpected_console_errors()]
    assert not unexpected, f"the browser console showed errors: {unexpected}"
