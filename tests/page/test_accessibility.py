"""The page for people who use a keyboard or a screen reader: axe-core finds nothing
in any state, and every chart is a keyboard stop that says what it shows, with its figures
as a table."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from testkit.factories import llm_call, post_events

from .reading import PHONE, WIDE, bars

BUCKETS_24H = 288


def _open_custom_range(page) -> None:
    page.get_by_role("button", name="Custom").click()


def _open_every_table(page) -> None:
    for summary in page.locator("details.as-table > summary").all():
        summary.click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('details.as-table')]"
        ".every(details => details.querySelector('table'))"
    )


# A state: its context options, the page's query, and what is done once it has loaded.
STATES = {
    "loaded": ({"viewport": WIDE}, "", None),
    "dark": ({"viewport": WIDE, "color_scheme": "dark"}, "", None),
    "phone": (PHONE, "", None),
    "phone-dark": ({**PHONE, "color_scheme": "dark"}, "", None),
    "30d": ({"viewport": WIDE}, "?range=30d", None),
    "custom-range": ({"viewport": WIDE}, "", _open_custom_range),
    "custom-range-dark": ({"viewport": WIDE, "color_scheme": "dark"}, "", _open_custom_range),
    "chips-split-deltas": (
        {"viewport": WIDE},
        "?llm.identity=agent:agt-1&llm.by=model&compute.by=agent",
        None,
    ),
    "chips-split-deltas-dark": (
        {"viewport": WIDE, "color_scheme": "dark"},
        "?llm.model=model-a&storage.by=agent",
        None,
    ),
    "tables": ({"viewport": WIDE}, "", _open_every_table),
    "tables-dark": ({"viewport": WIDE, "color_scheme": "dark"}, "", _open_every_table),
    "tables-phone": (PHONE, "", _open_every_table),
}


@pytest.mark.parametrize("state", STATES)
def test_no_axe_finding_with_usage(seeded, usage_page, read_key, state):
    options, query, then = STATES[state]
    tab = usage_page(**options)
    page = tab.open("acme", read_key, query)
    tab.wait_for_sections()
    page.wait_for_function("() => !document.querySelector('[aria-busy]')")  # splits too
    if then:
        then(page)
    tab.assert_accessible()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_axe_finding_when_empty_or_failing(db, client, ingest_key, usage_page, read_key, scheme):
    long_ago = datetime.now(UTC) - timedelta(days=40)  # usage, none of it in the range shown
    assert post_events(client, ingest_key, [llm_call(time=long_ago)]).status_code == 200
    tab = usage_page(color_scheme=scheme)
    tab.expect_console_error("status of 503")
    tab.page.route(
        re.compile(r".*/usage/compute\?.*"),
        lambda route: route.fulfill(
            status=503,
            content_type="application/problem+json",
            body='{"status": 503, "title": "Service unavailable", "detail": "try later"}',
        ),
    )
    page = tab.open("acme", read_key)
    tab.wait_for_sections()
    expect(page.locator("#section-compute [role=alert]")).to_be_visible()
    expect(page.locator(".empty").first).to_have_text("No usage in this range")
    tab.assert_accessible()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_axe_finding_signed_out_refused_or_not_found(seeded, usage_page, read_key, scheme):
    signed_out = usage_page(color_scheme=scheme)
    page = signed_out.open("acme", None)
    expect(page.get_by_role("heading", name="Sign in to see usage")).to_be_visible()
    signed_out.assert_accessible()

    refused = usage_page(color_scheme=scheme)
    refused.expect_console_error("status of 401")
    page = refused.open("acme", "usage_not-a-key")
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    refused.assert_accessible()

    not_found = usage_page(color_scheme=scheme)
    not_found.expect_console_error("status of 404")
    page = not_found.open("nobody-here", read_key)
    expect(page.get_by_role("heading", name="Organization not found")).to_be_visible()
    not_found.assert_accessible()


def test_every_chart_is_a_keyboard_stop_with_a_summary(seeded, usage_page, read_key):
    tab = usage_page(viewport=WIDE)
    page = tab.open("acme", read_key)
    tab.wait_for_sections()
    stops = page.locator(".plot[tabindex='0']")
    charts = page.locator("figure.chart svg")
    assert stops.count() == 9  # every chart: tokens, consumers, models, cpu, ram, 2 agents,
    assert charts.count() >= stops.count()  # storage, activity (legends are SVGs too)

    reached = {}
    page.get_by_role("button", name="Last 24h").focus()
    for _ in range(150):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const e = document.activeElement;"
            " if (!e.classList.contains('plot')) return null;"
            " return [e.getAttribute('aria-label'),"
            " document.getElementById(e.getAttribute('aria-describedby')).textContent]; }"
        )
        if focused:
            reached[focused[0]] = focused[1]
    assert set(reached) == {
        "Tokens over time", "Top consumers", "By model", "CPU core-hours over time",
        "RAM GB-hours over time", "Top agents by CPU core-hours", "Usage over time",
        "Top agents", "Activity over time",
    }  # fmt: skip

    tokens = reached["Tokens over time"]
    assert "in 5-minute buckets; 288 buckets" in tokens
    # The largest bucket holds the 2,000-token call: 2,000 fresh input, 300 output.
    assert "Largest bucket:" in tokens and "Fresh input 2,000 tokens, Output 300 tokens" in tokens
    assert reached["Top consumers"].endswith(
        "2 bars, largest first. Ann Lee, 2,300 total tokens; Support Triage, 1,650 total tokens."
    )


def _table(page, section: str, chart_title: str) -> list[list[str]]:
    figure = page.locator(f"#section-{section} figure.chart").filter(
        has=page.get_by_role("group", name=chart_title, exact=True)
    )
    figure.locator("details.as-table > summary").press("Enter")
    table = figure.get_by_role("table", name=chart_title)
    expect(table).to_be_visible()
    return table.locator("tr").evaluate_all(
        "rows => rows.map(row => [...row.cells].map(cell => cell.textContent))"
    )


def test_a_charts_table_holds_its_figures(seeded, usage_page, read_key):
    """The tables' figures against the known events: the columns sum to the cards'."""
    tab = usage_page(viewport=WIDE)
    page = tab.open("acme", read_key)
    tab.wait_for_sections()

    head, *rows = _table(page, "llm", "Tokens over time")
    assert head == ["Bucket", "Cached input (tokens)", "Fresh input (tokens)", "Output (tokens)"]
    assert len(rows) == BUCKETS_24H == bars(page, "tokens over time") / 3
    sums = [sum(int(row[column].replace(",", "")) for row in rows) for column in (1, 2, 3)]
    assert sums == [900, 3500 - 900, 450]

    head, *rows = _table(page, "llm", "Top consumers")
    assert head == ["Name", "Kind", "Total tokens"]
    assert rows == [["Ann Lee", "user", "2,300"], ["Support Triage", "agent", "1,650"]]

    head, *rows = _table(page, "platform", "Activity over time")
    assert head == ["Bucket", "Threads created (threads)", "Messages sent (messages)"]
    assert sum(int(row[1]) for row in rows) == 2
    assert sum(int(row[2]) for row in rows) == 5


def test_the_page_has_an_icon(seeded, usage_page, read_key):
    tab = usage_page()
    page = tab.open("acme", read_key)
    tab.wait_for_sections()
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon
    response = page.request.get(page.evaluate("(href) => new URL(href, location).href", icon))
    assert response.status == 200 and "svg" in response.headers["content-type"]
