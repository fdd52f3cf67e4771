"""Usage thresholds on the page (§10): a line under the section's cards with the share of its
limit the events posted make, and a rule at the limit on the chart that draws the measure one
period per bucket; thresholds never hold the sections up."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from testkit.factories import (
    identity,
    llm_call,
    post_events,
    workload_allocated,
    workload_released,
)

from .reading import WIDE, card

HOOK = "http://127.0.0.1:9/hook"  # an allowed host; the tests' servers send no webhook
DAY = timedelta(days=1)
# acme's calls today: input 820 (cached 200), output 200, 2 successful requests.
GPT5 = {"input_tokens": 600, "cached_tokens": 200, "output_tokens": 150}
OTHER = {"input_tokens": 220, "cached_tokens": 0, "output_tokens": 50}


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def create(client, admin_key: str, **fields) -> dict:
    answer = client.post(
        "/orgs/acme/thresholds", json={"tz": "UTC", "url": HOOK, **fields}, headers=_auth(admin_key)
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def today_calls(client, ingest_key: str) -> datetime:
    """Two calls a few minutes ago, today on UTC's clock; when they were."""
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    when = now - min(timedelta(minutes=3), (now - midnight) / 2)
    calls = [
        llm_call(time=when, model="gpt-5", who=identity("agt-1", "agent", "Triage"), **GPT5),
        llm_call(time=when, model="model-b", who=identity("usr-1", "user", "Ann Lee"), **OTHER),
        llm_call(org="globex", time=when, input_tokens=10_000),  # another org's: not counted
    ]
    assert post_events(client, ingest_key, calls).status_code == 200
    return when


def daily_window(when: datetime) -> str:
    """80 days to the end of today, in UTC: daily buckets (the finest with at most 300)."""
    midnight = when.replace(hour=0, minute=0, second=0, microsecond=0)
    return window(midnight - 79 * DAY, midnight + DAY)


def window(start: datetime, end: datetime) -> str:
    return f"?start={start:%Y-%m-%dT%H:%M:%SZ}&end={end:%Y-%m-%dT%H:%M:%SZ}&tz=UTC"


def limit_lines(page, section: str):
    return page.locator(f"#section-{section} ul.limits > li")


def chart_figure(page, mark: str):
    return page.locator("figure.chart", has=page.locator(f'g[data-mark="{mark}"]'))


def tokens_scale(figure) -> dict:
    """Where the tokens chart puts its largest bucket's stack edges and its rules (viewport px):
    y of the cached input's top and of all input's top, each between the two bars that meet
    there (every bar is inset half a pixel), the SVG's top, and each rule's y."""
    return figure.evaluate(
        """(figure) => {
          const rects = [...figure.querySelectorAll('g[data-mark="tokens over time"] rect')];
          const tallest = (fill) => rects.filter((r) => r.getAttribute('fill') === fill)
            .reduce((a, b) => (a.getBBox().height >= b.getBBox().height ? a : b));
          const box = (el) => el.getBoundingClientRect();
          const [cached, fresh, output] = ['#7aa6f5', '#2f6fde', '#f59e0b'].map(tallest);
          const svg = cached.ownerSVGElement;
          return {
            cachedTop: (box(cached).top + box(fresh).bottom) / 2,
            inputTop: (box(fresh).top + box(output).bottom) / 2,
            svgTop: box(svg).top,
            svgBottom: box(svg).bottom,
            rules: [...svg.querySelectorAll('g.limit-rule line')].map((l) => box(l).top),
          };
        }"""
    )


def expected_rule_y(scale: dict, cached: int, input_: int, limit: int) -> float:
    """The y of ``limit`` tokens on the line through y(cached) and y(input)."""
    per_token = (scale["cachedTop"] - scale["inputTop"]) / (input_ - cached)
    return scale["inputTop"] - (limit - input_) * per_token


def test_each_thresholds_line_and_the_rule_at_its_limit(
    db, client, ingest_key, admin_key, read_key, usage_page
):
    when = today_calls(client, ingest_key)
    created = [
        create(client, admin_key, section="llm", **fields)
        for fields in [
            {"measure": "input_tokens", "period": "day", "limit": 2000},
            {"measure": "output_tokens", "period": "day", "limit": 150},
            {
                "measure": "input_tokens",
                "period": "day",
                "limit": 750,
                "filters": {"model": ["gpt-5"]},
            },
            {"measure": "input_tokens", "period": "week", "limit": 1000},
            {"measure": "input_tokens", "period": "month", "limit": 1000},
            {"measure": "input_tokens", "period": "day", "limit": 1000, "tz": "Asia/Tokyo"},
            {"measure": "successful_requests", "period": "day", "limit": 4},
        ]
    ]
    daily, output, gpt5, weekly, monthly, tokyo, requests = (t["id"] for t in created)
    # Tokyo's today may have begun after the calls (it begins at 15:00 UTC).
    tokyo_midnight = datetime.now(ZoneInfo("Asia/Tokyo")).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    tokyo_input = 820 if when >= tokyo_midnight else 0
    # The API's own figures, which the percentages are of.
    listed = client.get("/orgs/acme/thresholds", headers=_auth(read_key))
    assert listed.status_code == 200, listed.text
    assert [t["current_period"]["value"] for t in listed.json()["thresholds"]] == [
        820, 200, 600, 820, 820, tokyo_input, 2
    ]  # fmt: skip

    tab = usage_page(viewport=WIDE)
    page = tab.open("acme", read_key, daily_window(when))
    tab.wait_for_sections()
    expect(page.locator(".status")).to_contain_text("daily buckets")
    expect(card(page, "llm", "Input tokens")).to_have_text("820")

    lines = limit_lines(page, "llm")
    expect(lines.locator(".limit-text")).to_have_text([
        "Input tokens today: 41% of limit",  # 820 / 2,000
        "Output tokens today: 133% of limit",  # 200 / 150
        "Input tokens today (model gpt-5): 80% of limit",  # 600 / 750
        "Input tokens this week: 82% of limit",
        "Input tokens this month: 82% of limit",
        f"Input tokens today in Asia/Tokyo: {round(tokyo_input * 100 / 1000)}% of limit",
        "Successful requests today: 50% of limit",
    ])  # fmt: skip
    expect(lines.nth(0).locator(".limit-figures")).to_have_text(" · 820 of 2,000 tokens")
    # Over its limit: said in words, and in the warning colour.
    over = page.locator(f'#section-llm li[data-threshold="{output}"]')
    expect(over).to_have_class(re.compile(r"\bover\b"))
    expect(over).to_contain_text("over the limit")
    expect(page.locator("#section-llm li.over")).to_have_count(1)
    colour = "(el) => getComputedStyle(el).color"
    assert over.locator(".limit-text").evaluate(colour) != lines.nth(0).locator(
        ".limit-text"
    ).evaluate(colour)
    for other in ("compute", "storage", "platform"):
        expect(limit_lines(page, other)).to_have_count(0)

    # One rule on the tokens chart: the unfiltered daily input limit in the page's zone. Not
    # the output's (stacked on the input), the model's (the page is not filtered), the week's
    # or month's (daily buckets), Tokyo's (UTC days), nor the requests' (no chart of its own).
    tokens = chart_figure(page, "tokens over time")
    rules = tokens.locator("g.limit-rule")
    expect(rules).to_have_count(1)
    expect(rules).to_have_attribute("data-threshold", daily)
    expect(rules).to_have_attribute("data-limit", "2000")
    expect(rules).to_have_attribute("data-measure", "input_tokens")
    expect(tokens.locator("g.limit-label text")).to_have_text("Input tokens limit 2,000")
    expect(page.locator("g.limit-rule")).to_have_count(1)
    # At 2,000 on the bars' scale, and inside the chart though its tallest stack is 1,020.
    scale = tokens_scale(tokens)
    (rule_y,) = scale["rules"]
    assert rule_y == pytest.approx(expected_rule_y(scale, 200, 820, 2000), abs=1)
    assert scale["svgTop"] < rule_y < scale["inputTop"]
    summary = page.get_by_role("group", name="Tokens over time", exact=True)
    expect(summary).to_have_accessible_description(
        re.compile(r"Input tokens limit: 2,000 tokens a day\.$")
    )
    tab.screenshot("thresholds-daily")
    tab.assert_accessible()

    # Filtered as the model's threshold is, the chart counts what it counts: its rule instead.
    page = tab.open("acme", read_key, daily_window(when) + "&llm.model=gpt-5")
    tab.wait_for_sections()
    expect(card(page, "llm", "Input tokens")).to_have_text("600")
    expect(limit_lines(page, "llm")).to_have_count(7)  # a threshold's line is its own figure
    rules = chart_figure(page, "tokens over time").locator("g.limit-rule")
    expect(rules).to_have_count(1)
    expect(rules).to_have_attribute("data-threshold", gpt5)
    expect(rules).to_have_attribute("data-limit", "750")
    scale = tokens_scale(chart_figure(page, "tokens over time"))
    assert scale["rules"][0] == pytest.approx(expected_rule_y(scale, 200, 600, 750), abs=1)

    # Split by model, the chart stacks all tokens: no summary field, so no rule.
    page = tab.open("acme", read_key, daily_window(when) + "&llm.by=model")
    tab.wait_for_sections()
    expect(page.locator('g[data-mark="tokens over time"] rect').first).to_be_attached()
    expect(limit_lines(page, "llm")).to_have_count(7)
    expect(page.locator("g.limit-rule")).to_have_count(0)
    assert {weekly, monthly, tokyo, requests}.isdisjoint(
        page.locator("g.limit-rule").evaluate_all("gs => gs.map(g => g.dataset.threshold)")
    )


def test_a_weekly_limit_on_weekly_buckets_and_compute_limits_on_their_charts(
    db, client, ingest_key, admin_key, read_key, usage_page
):
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    when = now - min(timedelta(minutes=3), (now - midnight) / 2)
    # Two cores and 1 GiB for the hour before the call (its figures are the lines' concern in
    # the test above; here, where the limits are drawn).
    events = [
        llm_call(time=when, **GPT5),
        workload_allocated("w1", agent="agt-1", cpu_cores=2, memory_bytes=2**30,
                           time=when - timedelta(hours=1)),
        workload_released("w1", time=when),
    ]  # fmt: skip
    assert post_events(client, ingest_key, events).status_code == 200
    weekly = create(client, admin_key, section="llm", measure="input_tokens", period="week",
                    limit=5000)["id"]  # fmt: skip
    cpu = create(client, admin_key, section="compute", measure="cpu_core_hours", period="week",
                 limit=10)["id"]  # fmt: skip
    create(client, admin_key, section="compute", measure="ram_gb_hours", period="day", limit=10)

    # 400 days to the end of today: weekly buckets, from Mondays.
    tab = usage_page(viewport=WIDE)
    page = tab.open("acme", read_key, window(midnight - 400 * DAY, midnight + DAY))
    tab.wait_for_sections()
    expect(page.locator(".status")).to_contain_text("weekly buckets")
    expect(limit_lines(page, "llm").locator(".limit-text")).to_have_text(
        ["Input tokens this week: 12% of limit"]  # 600 / 5,000
    )
    expect(limit_lines(page, "compute").locator(".limit-text")).to_have_text([
        re.compile(r"^CPU core-hours this week: (\d+|<1)% of limit$"),
        re.compile(r"^RAM GB-hours today: (\d+|<1)% of limit$"),
    ])  # fmt: skip

    tokens = chart_figure(page, "tokens over time").locator("g.limit-rule")
    expect(tokens).to_have_count(1)
    expect(tokens).to_have_attribute("data-threshold", weekly)
    # The week's CPU limit on the CPU chart alone; the day's RAM limit on none.
    cpu_rules = chart_figure(page, "cpu over time").locator("g.limit-rule")
    expect(cpu_rules).to_have_count(1)
    expect(cpu_rules).to_have_attribute("data-threshold", cpu)
    label = chart_figure(page, "cpu over time").locator("g.limit-label text")
    expect(label).to_have_text("limit 10")
    expect(chart_figure(page, "ram over time").locator("g.limit-rule")).to_have_count(0)
    expect(page.locator("g.limit-rule")).to_have_count(2)
    # The CPU chart's y axis reaches the limit, far above its bars (at most 2 core-hours).
    ticks = chart_figure(page, "cpu over time").locator("svg text").all_text_contents()
    assert "10" in ticks


def test_thresholds_hold_no_section_up_and_a_refusal_shows_none(
    seeded, client, admin_key, read_key, usage_page
):
    created = create(client, admin_key, section="llm", measure="input_tokens", period="day",
                     limit=7000)  # fmt: skip
    # The seeded 3,500 input tokens, or what of them is today's on UTC's clock just after midnight.
    percent = round(created["current_period"]["value"] * 100 / 7000)
    assert created["current_period"]["value"] in (0, 1000, 1500, 3000, 3500)

    # Held back: the sections are drawn without them, then the line comes.
    tab = usage_page(color_scheme="dark")
    held = []
    tab.page.route(re.compile(r".*/orgs/acme/thresholds$"), lambda route: held.append(route))
    page = tab.open("acme", read_key)
    tab.wait_for_sections()
    expect(card(page, "llm", "Input tokens")).to_have_text("3.5K")
    expect(page.locator("ul.limits")).to_have_count(0)
    assert len(held) == 1, "one request for thresholds per load"
    held[0].continue_()
    expect(limit_lines(page, "llm").locator(".limit-text")).to_have_text(
        [f"Input tokens today: {percent}% of limit"]
    )
    # 5-minute buckets are no period's: no rule.
    expect(page.locator("g.limit-rule")).to_have_count(0)
    tab.assert_accessible()

    # A key that may not read them (403): no line, no error on the page.
    refused = usage_page()
    refused.expect_console_error("status of 403")
    refused.page.route(
        re.compile(r".*/orgs/acme/thresholds$"),
        lambda route: route.fulfill(
            status=403,
            content_type="application/problem+json",
            body='{"status": 403, "title": "Forbidden", "detail": "not this key"}',
        ),
    )
    with refused.page.expect_response(re.compile(r".*/orgs/acme/thresholds$")):
        page = refused.open("acme", read_key)
    refused.wait_for_sections()
    expect(card(page, "llm", "Input tokens")).to_have_text("3.5K")
    page.evaluate("() => new Promise((done) => setTimeout(done, 50))")  # its answer handled
    expect(page.locator("ul.limits")).to_have_count(0)
    expect(page.locator(".usage-section [role=alert], .usage-section .error")).to_have_count(0)
    expect(page.locator("g.limit-rule")).to_have_count(0)
