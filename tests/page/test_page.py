"""The Usage page as a person uses it, in headless Chromium against the real API."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from api.storage.keys import Scope
from testkit.factories import llm_call, post_events

from .reading import LAPTOP, PHONE, bars, card

BUCKETS = {"24h": 288, "7d": 168, "30d": 120}


def test_cards_and_charts_show_the_known_figures(seeded, usage_page, read_key):
    tab = usage_page()
    page = tab.open("acme", read_key)
    tab.wait_for_sections()

    expected_cards = [
        ("llm", "Input tokens", "3.5K", "3,500 tokens"),
        ("llm", "Cached tokens", "900 of 3.5K", "900 of 3,500 input tokens"),
        ("llm", "Output tokens", "450", "450 tokens"),
        ("llm", "Successful requests", "2", "2 requests"),
        ("llm", "Failed requests", "1", "1 requests"),
        ("compute", "CPU core-hours", "2", "2 core-hours"),
        ("compute", "RAM GB-hours", "2", "2 GB-hours"),
        ("storage", "Storage GB-hours", "20", "20 GB-hours"),
        ("platform", "Threads created", "2", "2 threads"),
        ("platform", "Messages sent", "5", "5 messages"),
    ]
    for section, label, text, title in expected_cards:
        value = card(page, section, label)
        expect(value).to_have_text(text)
        expect(value).to_have_attribute("title", title)
    expect(page.locator("#section-llm .card-sub")).to_have_text("25.7% of input from cache")

    buckets = BUCKETS["24h"]
    assert bars(page, "tokens over time") == 3 * buckets
    assert bars(page, "top consumers") == 2
    assert bars(page, "by model") == 2
    assert bars(page, "cpu over time") == buckets
    assert bars(page, "ram over time") == buckets
    assert bars(page, "top agents") == 2  # compute's and storage's: one agent each
    assert bars(page, "storage over time") == buckets
    assert bars(page, "activity over time") == 2 * buckets

    consumers = page.locator('g[data-mark="top consumers"] title')
    expect(consumers.first).to_contain_text("Ann Lee")
    expect(consumers.first).to_contain_text("Total: 2,300 tokens")
    expect(consumers.nth(1)).to_contain_text("Support Triage")
    expect(consumers.nth(1)).to_contain_text("Total: 1,650 tokens")
    expect(page.locator("#section-llm figure", has_text="Top consumers")).to_contain_text("agent")
    expect(page.locator("#section-compute")).to_contain_text("not what they used")
    expect(page.locator(".status")).to_contain_text("5-minute buckets")
    expect(page.locator(".status")).to_contain_text("Not live")
    expect(page.locator("footer")).to_contain_text("Run Timeline")
    expect(page.locator("footer")).to_contain_text("invoice")
    # The key left the address bar for sessionStorage.
    assert "token" not in page.url


def test_one_request_per_section_on_load_and_on_range_change_and_none_idle(
    seeded, usage_page, read_key
):
    tab = usage_page()
    # The page's own clock, so an hour of idling takes no time.
    tab.page.clock.install()
    page = tab.open("acme", read_key)
    tab.wait_for_sections()
    assert sorted(re.search(r"/usage/(\w+)", url)[1] for url in tab.usage_requests) == [
        "compute",
        "llm",
        "platform",
        "storage",
    ]
    ends = {re.search(r"end=([^&]+)", url)[1] for url in tab.usage_requests}
    assert len(ends) == 1, "every section of one load has the same end"

    page.get_by_role("button", name="Last 7d").click()
    tab.wait_for_sections()
    assert len(tab.usage_requests) == 8
    assert all("range=7d" in url for url in tab.usage_requests[4:])
    assert page.url.endswith("?range=7d")
    assert bars(page, "tokens over time") == 3 * BUCKETS["7d"]

    page.clock.fast_forward("01:00:00")  # every timer due within the hour fires
    page.wait_for_timeout(300)  # for any request such a timer would have made
    assert len(tab.usage_requests) == 8, "no polling"


def test_the_range_survives_a_reload(seeded, usage_page, read_key):
    tab = usage_page()
    page = tab.open("acme", read_key, "?range=30d")
    tab.wait_for_sections()
    page.reload()
    tab.wait_for_sections()
    expect(page.get_by_role("button", name="Last 30d")).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".status")).to_contain_text("6-hour buckets")
    assert bars(page, "tokens over time") == 3 * BUCKETS["30d"]
    assert len(tab.usage_requests) == 8


def test_a_custom_range(seeded, usage_page, read_key):
    tab = usage_page(timezone_id="Asia/Kolkata")
    page = tab.open("acme", read_key)
    tab.wait_for_sections()
    page.get_by_role("button", name="Custom").click()
    start, end = seeded.timestamp() - 6 * 3600, seeded.timestamp() + 60
    for field, moment in (("Start", start), ("End", end)):
        # datetime-local takes the viewer's wall clock: here India's, +05:30.
        local = page.evaluate(
            "(t) => { const d = new Date(t * 1000);"
            " d.setMinutes(d.getMinutes() - d.getTimezoneOffset());"
            " return d.toISOString().slice(0, 16); }",
            moment,
        )
        page.get_by_label(field, exact=True).fill(local)
    page.get_by_role("button", name="Apply").click()
    tab.wait_for_sections()
    custom = tab.usage_requests[4:]
    assert len(custom) == 4
    assert all("start=" in url and "end=" in url and "range=" not in url for url in custom)
    assert "start=" in page.url and "end=" in page.url
    expect(card(page, "llm", "Input tokens")).to_have_text("3.5K")
    expect(card(page, "platform", "Messages sent")).to_have_text("5")
    expect(page.locator(".status")).to_contain_text("5-minute buckets")
    expect(page.locator(".status")).to_contain_text("GMT+5:30")
    assert bars(page, "tokens over time") == 3 * 73  # 6 h and a minute, on the 5-minute grid


def test_another_orgs_key_shows_not_found(seeded, usage_page, new_key):
    globex_key = new_key(Scope.READ, "globex").key
    tab = usage_page()
    tab.expect_console_error("status of 404")
    page = tab.open("acme", globex_key)
    expect(page.get_by_role("heading", name="Organization not found")).to_be_visible()
    expect(page.locator(".usage-section")).to_have_count(0)


def test_a_refused_key_returns_to_the_sign_in_form(seeded, usage_page, read_key):
    tab = usage_page()
    tab.expect_console_error("status of 401")
    page = tab.open("acme", "usage_not-a-key")
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    page.get_by_label(re.compile("API key")).fill(read_key)
    page.get_by_role("button", name="Show usage").click()
    tab.wait_for_sections()
    expect(card(page, "llm", "Input tokens")).to_have_text("3.5K")


def test_without_a_key_the_page_asks_for_one(seeded, usage_page):
    tab = usage_page()
    page = tab.open("acme", None)
    expect(page.get_by_role("heading", name="Sign in to see usage")).to_be_visible()
    assert tab.usage_requests == []


def test_one_failing_section_leaves_the_others_intact(seeded, usage_page, read_key):
    tab = usage_page()
    tab.expect_console_error("status of 503")
    failing = {"on": True}

    def compute_route(route):
        if failing["on"]:
            route.fulfill(
                status=503,
                content_type="application/problem+json",
                body='{"status": 503, "title": "Service unavailable", "detail": "try later"}',
            )
        else:
            route.continue_()

    tab.page.route(re.compile(r".*/usage/compute\?.*"), compute_route)
    page = tab.open("acme", read_key)
    tab.wait_for_sections()
    expect(page.locator("#section-compute [role=alert]")).to_contain_text("try later")
    for section, label in [
        ("llm", "Input tokens"),
        ("storage", "Storage"),
        ("platform", "Threads"),
    ]:
        expect(card(page, section, label)).to_be_visible()

    failing["on"] = False
    page.locator("#section-compute").get_by_role("button", name="Retry").click()
    expect(card(page, "compute", "CPU core-hours")).to_have_text("2")
    assert len(tab.usage_requests) == 5  # the retry asked for compute alone


def test_an_empty_range_says_so(db, client, ingest_key, usage_page, read_key):
    long_ago = datetime.now(UTC) - timedelta(days=40)
    assert post_events(client, ingest_key, [llm_call(time=long_ago)]).status_code == 200
    tab = usage_page()
    page = tab.open("acme", read_key)
    tab.wait_for_sections()
    expect(page.locator(".empty").first).to_have_text("No usage in this range")
    assert page.locator(".empty").count() == 4


def test_the_range_selector_works_from_the_keyboard(seeded, usage_page, read_key):
    tab = usage_page()
    page = tab.open("acme", read_key)
    tab.wait_for_sections()
    page.get_by_role("button", name="Last 24h").focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    tab.wait_for_sections()
    expect(page.get_by_role("button", name="Last 7d")).to_have_attribute("aria-pressed", "true")
    assert page.url.endswith("?range=7d")


@pytest.mark.parametrize(
    ("name", "query", "options"),
    [
        ("24h-light", "", {"color_scheme": "light", "viewport": LAPTOP}),
        ("24h-dark", "", {"color_scheme": "dark", "viewport": LAPTOP}),
        ("30d-light", "?range=30d", {"color_scheme": "light", "viewport": LAPTOP}),
        ("30d-dark", "?range=30d", {"color_scheme": "dark", "viewport": LAPTOP}),
        ("phone", "", PHONE),
    ],
)
def test_screenshots(seeded, usage_page, read_key, name, query, options):
    """Saved under .data/screenshots for a person to look at; the page fits its width."""
    tab = usage_page(**options)
    page = tab.open("acme", read_key, query)
    tab.wait_for_sections()
    tab.screenshot(name)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"


def _bar_widths(page, chart: str) -> list[float]:
    return page.locator(f'g[data-mark="{chart}"] rect').evaluate_all(
        "rects => rects.map(rect => rect.getBoundingClientRect().width)"
    )


def test_a_bar_fills_its_bucket_in_every_time_chart(seeded, usage_page, read_key):
    """The compute charts once drew CPU and RAM side by side, then split them into two
    charts: each bar filled half its bucket. Every time chart's bars are as wide as the
    storage chart's, which has one series and always filled its bucket (the platform chart's
    threads and messages stand side by side by design)."""
    tab = usage_page()
    page = tab.open("acme", read_key)
    tab.wait_for_sections()
    full = max(_bar_widths(page, "storage over time"))
    assert full > 1
    for chart in ("cpu over time", "ram over time", "tokens over time"):
        widths = _bar_widths(page, chart)
        assert widths, chart
        assert max(widths) == pytest.approx(full, rel=0.05), chart
