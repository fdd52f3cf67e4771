"""Slicing on the page (§9.1): the viewer's zone, drill-down, the previous period, splits and
CSV downloads, each checked against the API's own answer to the same query."""

import csv
import gzip
import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from playwright.sync_api import expect

from testkit.factories import identity, llm_call, post_events

from .reading import PHONE, WIDE, card

ROOT = Path(__file__).resolve().parents[2]


def query_of(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query)


def section_of(url: str) -> str:
    return re.search(r"/usage/([\w/]+)\?", url)[1]


def api(client, key: str, path: str, params, accept: str = "application/json"):
    answer = client.get(
        f"/orgs/acme/usage/{path}",
        params=params,
        headers={"Authorization": f"Bearer {key}", "Accept": accept},
    )
    assert answer.status_code == 200, answer.text
    return answer


def bar_titles(page, chart: str) -> list[str]:
    return page.locator(f'g[data-mark="{chart}"] title').all_text_contents()


def per_bucket(titles: list[str], parts: int) -> list[tuple[str, int]]:
    """Each bucket's label and the sum of its parts' figures, from the bars' titles (every
    part's bar of a bucket carries the bucket's whole title)."""
    buckets = []
    for title in titles[::parts]:
        label, *lines = title.split("\n")
        label = label.removesuffix(" (partial bucket)")
        figures = (int(re.search(r": ([\d,]+) ", line)[1].replace(",", "")) for line in lines)
        buckets.append((label, sum(figures)))
    return buckets


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/New_York", "Pacific/Chatham"])
def test_every_get_carries_the_viewers_zone_and_days_start_at_its_midnight(
    db, client, ingest_key, usage_page, read_key, zone
):
    # Three weeks across New York's fall-back day (1 November 2026): 6-hour buckets.
    start, end = datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC)
    calls = [llm_call(time=start + timedelta(hours=7 * n), input_tokens=100 + n) for n in range(72)]
    assert post_events(client, ingest_key, calls).status_code == 200
    tab = usage_page(timezone_id=zone, viewport=WIDE)
    window = f"?start={start:%Y-%m-%dT%H:%M:%SZ}&end={end:%Y-%m-%dT%H:%M:%SZ}"
    page = tab.open("acme", read_key, window)
    tab.wait_for_sections()

    assert len(tab.usage_requests) == 4
    for url in tab.usage_requests:
        assert ("tz", zone) in query_of(url) and ("compare", "previous") in query_of(url)
    expect(page.locator(".status .zone")).to_have_text(f"Times in {zone}")
    expect(page.locator(".status")).to_contain_text("6-hour buckets")

    llm_request = next(url for url in tab.usage_requests if section_of(url) == "llm")
    series = api(client, read_key, "llm", query_of(llm_request)).json()["series"]
    buckets = per_bucket(bar_titles(page, "tokens over time"), 3)
    assert len(buckets) == len(series)
    # Every bucket starts at 00:00, 06:00, 12:00 or 18:00 on the viewer's wall clock, before
    # and after a daylight-saving change, and holds what the API says.
    assert {label[-5:] for label, _ in buckets} <= {"00:00", "06:00", "12:00", "18:00"}
    assert [total for _, total in buckets] == [
        item["cached_input_tokens"] + item["fresh_input_tokens"] + item["output_tokens"]
        for item in series
    ]


def test_the_url_zone_overrides_the_browsers(seeded, usage_page, read_key):
    tab = usage_page(timezone_id="Europe/Berlin")
    page = tab.open("acme", read_key, "?range=7d&tz=Asia/Kathmandu")
    tab.wait_for_sections()
    assert all(("tz", "Asia/Kathmandu") in query_of(url) for url in tab.usage_requests)
    expect(page.locator(".status .zone")).to_have_text("Times in Asia/Kathmandu")
    labels = [label for label, _ in per_bucket(bar_titles(page, "tokens over time"), 3)]
    assert labels and all(label.endswith(":00") for label in labels)  # hourly, on its clock


def test_choosing_a_bar_filters_that_section_alone(seeded, client, usage_page, read_key):
    tab = usage_page(viewport=WIDE)
    page = tab.open("acme", read_key)
    tab.wait_for_sections()
    end = dict(query_of(tab.usage_requests[0]))["end"]

    page.get_by_role("button", name="Filter LLM by consumer Support Triage").click()
    tab.wait_for_sections()
    chip = page.get_by_role("button", name="Remove filter consumer Support Triage")
    expect(chip).to_be_focused()
    assert len(tab.usage_requests) == 5
    refetch = tab.usage_requests[4]
    assert section_of(refetch) == "llm"
    assert ("identity", "agent:agt-1") in query_of(refetch) and ("end", end) in query_of(refetch)
    assert "llm.identity=agent%3Aagt-1" in page.url
    filtered = api(client, read_key, "llm", query_of(refetch)).json()["summary"]
    expect(card(page, "llm", "Input tokens")).to_have_attribute(
        "title", f"{filtered['input_tokens']:,} tokens"
    )
    assert filtered["input_tokens"] == 1500  # Support Triage's two calls

    # From the keyboard: a model bar, focused, Enter. Both filters hold (§4.1: all must match).
    page.get_by_role("button", name="Filter LLM by model model-a").focus()
    page.keyboard.press("Enter")
    tab.wait_for_sections()
    assert len(tab.usage_requests) == 6
    both = query_of(tab.usage_requests[5])
    assert ("identity", "agent:agt-1") in both and ("model", "model-a") in both
    expect(page.locator("#section-llm .chip")).to_have_count(2)

    # Reload: the filters stay, named from the answer; then a chip removes its filter.
    page.reload()
    tab.wait_for_sections()
    expect(page.locator("#section-llm .chip")).to_have_text(
        ["Model: model-a ✕", "Consumer: Support Triage ✕"]
    )
    page.get_by_role("button", name="Remove filter model model-a").click()
    tab.wait_for_sections()
    last = query_of(tab.usage_requests[-1])
    assert ("identity", "agent:agt-1") in last and not any(k == "model" for k, _ in last)
    assert "llm.model" not in page.url
    # The other sections were fetched on the loads alone.
    assert sum(section_of(url) == "compute" for url in tab.usage_requests) == 2


def test_an_agent_bar_filters_compute(seeded, client, usage_page, read_key):
    tab = usage_page(viewport=WIDE)
    page = tab.open("acme", read_key)
    tab.wait_for_sections()
    page.get_by_role("button", name="Filter Compute by agent Support Triage").press(" ")
    tab.wait_for_sections()
    refetch = tab.usage_requests[-1]
    assert section_of(refetch) == "compute" and ("agent", "agt-1") in query_of(refetch)
    assert "compute.agent=agt-1" in page.url
    expect(page.locator("#section-compute .chip")).to_have_text(["Agent: Support Triage ✕"])


@pytest.fixture
def with_previous_day(seeded, client, ingest_key) -> datetime:
    """acme's known events, and a day earlier a few more: a previous span to compare with."""
    agent = identity("agt-1", "agent", "Support Triage")
    before = seeded - timedelta(hours=30)
    calls = [
        llm_call(time=before, who=agent, model="model-a", input_tokens=1000, cached_tokens=400,
                 output_tokens=200),
        llm_call(time=before, who=agent, model="model-a", input_tokens=3000, output_tokens=100),
    ]  # fmt: skip
    assert post_events(client, ingest_key, calls).status_code == 200
    return seeded


def expected_change(current: float, previous: float) -> str:
    """§9.1's wording, computed here independently of the page."""
    if current == previous:
        return "no change vs previous 24h"
    if previous == 0:
        return "new none in previous 24h"
    ratio = abs(current - previous) / previous * 100
    arrow = "▲" if current > previous else "▼"
    if ratio < 0.1:
        shown = "<0.1"
    elif ratio < 10:  # one decimal, halves away from zero, no trailing zero
        shown = f"{math.floor(ratio * 10 + 0.5) / 10:g}"
    else:
        shown = f"{math.floor(ratio + 0.5):,}"
    return f"{arrow} {shown}% vs previous 24h"


def test_every_card_shows_its_change_against_the_previous_span(
    with_previous_day, client, usage_page, read_key
):
    tab = usage_page(viewport=WIDE)
    page = tab.open("acme", read_key)
    tab.wait_for_sections()
    cards = {
        "llm": [("Input tokens", "input_tokens"), ("Cached tokens", "cached_tokens"),
                ("Output tokens", "output_tokens"), ("Successful requests", "successful_requests"),
                ("Failed requests", "failed_requests")],
        "compute": [("CPU core-hours", "cpu_core_hours"), ("RAM GB-hours", "ram_gb_hours")],
        "storage": [("Storage GB-hours", "storage_gb_hours")],
        "platform": [("Threads created", "threads_created"), ("Messages sent", "messages_sent")],
    }  # fmt: skip
    for url in tab.usage_requests:
        name = section_of(url)
        answer = api(client, read_key, name, query_of(url)).json()
        for label, figure in cards[name]:
            current, previous = answer["summary"][figure], answer["previous"]["summary"][figure]
            delta = page.locator(f"#section-{name} .card", has_text=label).locator(".card-delta")
            expect(delta).to_have_text(expected_change(current, previous))
    # The figures of this seed: input 3,500 against 4,000, output 450 against 300.
    expect(page.locator("#section-llm .card", has_text="Input tokens")).to_contain_text("▼ 13%")
    expect(page.locator("#section-llm .card", has_text="Output tokens")).to_contain_text("▲ 50%")


def test_no_change_is_shown_without_a_previous_span(seeded, usage_page, read_key):
    tab = usage_page()
    page = tab.open("acme", read_key, "?start=1970-01-01T00:00:00Z&end=1970-01-02T00:00:00Z")
    tab.wait_for_sections()
    expect(page.locator(".card").first).to_be_visible()
    expect(page.locator(".card-delta")).to_have_count(0)


def test_a_split_stacks_groups_that_sum_to_the_unsplit_bars(seeded, client, usage_page, read_key):
    tab = usage_page(viewport=WIDE)
    page = tab.open("acme", read_key)
    tab.wait_for_sections()
    unsplit = per_bucket(bar_titles(page, "tokens over time"), 3)

    page.get_by_label("Split LLM tokens over time by").select_option(label="Model")
    expect(page.locator('#section-llm g[data-mark="tokens over time"]')).to_be_visible()
    page.wait_for_function("() => !document.querySelector('#section-llm [aria-busy]')")
    assert len(tab.usage_requests) == 5
    groups_url = tab.usage_requests[4]
    assert section_of(groups_url) == "llm/groups"
    params = dict(query_of(groups_url))
    assert params["by"] == "model" and params["top"] == "8" and "compare" not in params
    assert params["end"] == dict(query_of(tab.usage_requests[0]))["end"]
    assert "llm.by=model" in page.url

    groups = api(client, read_key, "llm/groups", query_of(groups_url)).json()
    names = [group["key"]["model"] for group in groups["groups"]]
    assert names == ["model-b", "model-a"]
    expect(page.locator("#section-llm figure", has_text="Tokens over time")).to_contain_text(
        "model-b"
    )
    split = per_bucket(bar_titles(page, "tokens over time"), len(names))
    assert split == unsplit  # bucket by bucket, the groups add up to the series

    # Reload keeps the split: one GET per section and one for the split. The reload is a new
    # snapshot (a new `end`), so its bars are compared with each other, not with the first's.
    page.reload()
    tab.wait_for_sections()
    page.wait_for_function("() => !document.querySelector('#section-llm [aria-busy]')")
    assert sorted(section_of(url) for url in tab.usage_requests[5:]) == [
        "compute", "llm", "llm/groups", "platform", "storage",
    ]  # fmt: skip
    split_again = per_bucket(bar_titles(page, "tokens over time"), len(names))
    page.get_by_label("Split LLM tokens over time by").select_option(label="Token type")
    assert len(tab.usage_requests) == 10  # the section's own series is already here
    assert per_bucket(bar_titles(page, "tokens over time"), 3) == split_again


@pytest.mark.parametrize("split", [None, "model"])
def test_download_csv_saves_the_apis_csv(seeded, client, usage_page, read_key, split):
    tab = usage_page(timezone_id="Asia/Kolkata", accept_downloads=True)
    page = tab.open("acme", read_key, f"?llm.by={split}" if split else "")
    tab.wait_for_sections()
    page.wait_for_function("() => !document.querySelector('#section-llm [aria-busy]')")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV of LLM tokens over time").click()
    download = download_info.value
    name = "llm-by-model" if split else "llm"
    assert download.suggested_filename == f"usage-acme-{name}-24h-Asia-Kolkata.csv"
    with open(download.path(), encoding="utf-8", newline="") as file:
        saved = file.read()
    asked = tab.usage_requests[-1]
    assert section_of(asked) == ("llm/groups" if split else "llm")
    expected = api(client, read_key, section_of(asked), query_of(asked), "text/csv").text
    assert saved == expected
    assert ("model" in saved.splitlines()[0].split(",")) == bool(split)


FORMULAS = ["=1+1", "+cmd", "-2+3", "@SUM(1+1)", "\tTAB", "\rCR"]


def test_a_downloaded_name_a_spreadsheet_would_run_is_text(
    seeded, client, ingest_key, usage_page, read_key
):
    """The page's download of a split by model whose names look like formulas: each is
    saved with a leading ' (the API's CSV, which the page saves as it is)."""
    calls = [llm_call(model=name, time=seeded, output_tokens=10_000) for name in FORMULAS]
    assert post_events(client, ingest_key, calls).status_code == 200
    tab = usage_page(accept_downloads=True)
    page = tab.open("acme", read_key, "?llm.by=model")
    tab.wait_for_sections()
    page.wait_for_function("() => !document.querySelector('#section-llm [aria-busy]')")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV of LLM tokens over time").click()
    with open(download_info.value.path(), encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file))
    models = {row[rows[0].index("model")] for row in rows[1:]}
    assert {"'" + name for name in FORMULAS} <= models
    assert not any(
        cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row
    )


def test_keyboard_alone_reaches_every_control(seeded, usage_page, read_key):
    tab = usage_page(viewport=WIDE)
    page = tab.open("acme", read_key, "?llm.model=model-a")
    tab.wait_for_sections()
    reached = set()
    for _ in range(80):
        page.keyboard.press("Tab")
        reached.add(
            page.evaluate(
                "() => { const e = document.activeElement;"
                " return e.getAttribute('aria-label') || e.textContent.trim(); }"
            )
        )
    for control in [
        "Last 7d",
        "Custom",
        "Remove filter model model-a",
        "Split LLM tokens over time by",
        "Download CSV of LLM tokens over time",
        "Filter LLM by consumer Support Triage",
        "Filter LLM by model model-a",
        "Split compute over time by",
        "Filter Compute by agent Support Triage",
        "Filter Storage by agent Support Triage",
        "Download CSV of platform activity over time",
    ]:
        assert control in reached, control


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("sliced-wide-light", {"color_scheme": "light", "viewport": WIDE}),
        ("sliced-wide-dark", {"color_scheme": "dark", "viewport": WIDE}),
        ("sliced-phone-light", {"color_scheme": "light", **PHONE}),
        ("sliced-phone-dark", {"color_scheme": "dark", **PHONE}),
    ],
)
def test_sliced_screenshots(with_previous_day, usage_page, read_key, name, options):
    """Chips, a split, deltas: saved under .data/screenshots; the page fits its width."""
    tab = usage_page(timezone_id="Asia/Kolkata", **options)
    page = tab.open("acme", read_key, "?llm.identity=agent:agt-1&llm.by=model&compute.by=agent")
    tab.wait_for_sections()
    page.wait_for_function("() => !document.querySelector('[aria-busy]')")
    tab.screenshot(name)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"


def test_first_render_time_and_page_weight_are_reported(seeded, usage_page, read_key, capsys):
    """Reported, not asserted (§9.1's budget: under 300 ms from the answers to all four
    sections drawn, at most 150 KB of gzipped JavaScript)."""
    tab = usage_page(viewport=WIDE)
    tab.open("acme", read_key, "?range=30d")  # the most bars of the presets' charts
    tab.wait_for_sections()
    tab.page.reload()  # a warm server
    tab.wait_for_sections()
    marks = tab.page.evaluate(
        "() => Object.fromEntries(performance.getEntriesByType('mark')"
        ".filter(m => m.name.startsWith('usage:')).map(m => [m.name, m.startTime]))"
    )
    drawing = {
        name: marks[f"usage:drawn:{name}"] - marks[f"usage:answered:{name}"]
        for name in ("llm", "compute", "storage", "platform")
    }
    # The scripts this page loads: not every one in assets/ (the API reference's are there).
    loaded = tab.page.evaluate(
        "() => performance.getEntriesByType('resource')"
        ".map(entry => new URL(entry.name).pathname).filter(path => path.endsWith('.js'))"
    )
    scripts = [ROOT / "frontend" / "dist" / path.removeprefix("/") for path in loaded]
    gzipped = sum(len(gzip.compress(path.read_bytes(), 9)) for path in scripts)
    with capsys.disabled():
        print(
            f"\n  page: drawing the four sections took {sum(drawing.values()):.0f} ms "
            f"({', '.join(f'{name} {ms:.0f}' for name, ms in drawing.items())}); "
            f"JavaScript {gzipped / 1024:.0f} KB gzipped"
        )
    assert all(ms >= 0 for ms in drawing.values())
    assert gzipped > 0
