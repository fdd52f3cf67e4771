"""Every figure of every usage endpoint, for random event sets and windows, equals the oracle's.

Events are ingested through POST /events in random batches with re-sends; windows are drawn
around the events' own times (exactly at an event, a microsecond either side, off the 5-minute
grid), as presets with an explicit end and as custom windows with and without a bucket.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.core.windows import PRESET_WIDTHS
from api.reads.sections import SECTION_NAMES
from testkit import oracle
from testkit.database import reset
from testkit.engine import examples
from testkit.factories import BASE_TIME, iso, post_events
from testkit.invariants import check_invariants
from testkit.matching import assert_equal, comparable
from testkit.oracle import US, OracleWindow, epoch_us, event_us, from_us
from testkit.strategies import deliveries, event_sets, event_sets_at, times_from

_NUDGES = [0, 0, 1, -1, 150 * US, -299 * US, 3600 * US]


@st.composite
def windows(draw, events: list[dict], tz: str = "UTC") -> tuple[dict[str, str], OracleWindow]:
    times = sorted({event_us(event) for event in events})

    def near_an_event() -> int:
        return draw(st.sampled_from(times)) + draw(st.sampled_from(_NUDGES))

    zone = {} if tz == "UTC" and draw(st.booleans()) else {"tz": tz}
    if draw(st.booleans()):
        preset = draw(st.sampled_from(list(oracle.PRESETS)))
        as_of = from_us(near_an_event() + draw(st.sampled_from([1, 0])))
        bucket = draw(st.sampled_from([None, None, *PRESET_WIDTHS[preset]]))
        params = {"range": preset, "end": iso(as_of), **zone}
        if bucket:
            params["bucket"] = bucket
        return params, OracleWindow.preset(preset, as_of, bucket, tz)
    start, end = sorted([near_an_event(), near_an_event()])
    end += 0 if end > start else draw(st.sampled_from([1, 7 * US, 3 * 3600 * US]))
    bucket = draw(st.sampled_from([None, None, "5m", "15m", "1h", "6h", "1d", "7d"]))
    params = {"start": iso(from_us(start)), "end": iso(from_us(end)), **zone}
    if bucket:
        params["bucket"] = bucket
    return params, OracleWindow.custom(from_us(start), from_us(end), bucket, tz)


_EXAMPLES = settings(
    max_examples=examples(50),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@_EXAMPLES
@given(data=st.data(), events=event_sets, top=st.integers(1, 3))
def test_every_figure_of_every_endpoint_matches_the_oracle(
    client, database_url, ingest_key, read_key, admin_key, data, events, top
):
    keys = (ingest_key, read_key, admin_key)
    _check_every_endpoint(client, database_url, keys, data, events, data.draw(windows(events)), top)


def _offset_changes(name: str) -> list[datetime]:
    """The instants from 2025 to BASE_TIME at which the zone's offset changes, found by
    reading its clock every hour, then every minute of the hour where it changed."""
    zone, found = ZoneInfo(name), []
    hour = datetime(2025, 1, 1, tzinfo=UTC)
    while hour < BASE_TIME:
        following = hour + timedelta(hours=1)
        if hour.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            minute = hour
            while minute.astimezone(zone).utcoffset() == hour.astimezone(zone).utcoffset():
                minute += timedelta(minutes=1)
            found.append(minute)
        hour = following
    return found


# Zones with :30 and :45 offsets, daylight saving both ways and a 30-minute shift.
ZONES = [
    "UTC",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
]
# Events start 90 minutes before an offset change (spring forward or fall back) of the zone,
# so their two hours and three days hold the change; zones without one use the usual day.
_STARTS = {
    name: [change - timedelta(minutes=90) for change in _offset_changes(name)]
    or [BASE_TIME - timedelta(minutes=90)]
    for name in ZONES
}


def test_the_zones_change_offsets_where_expected():
    """The zones tested do what they are chosen for (two changes a year where they have DST)."""
    counts = {name: len(starts) for name, starts in _STARTS.items()}
    assert counts == {name: 1 for name in ZONES[:3]} | {name: 4 for name in ZONES[3:]}
    lord_howe = _offset_changes("Australia/Lord_Howe")[0]
    shift = (
        lord_howe.astimezone(ZoneInfo("Australia/Lord_Howe")).utcoffset()
        - (lord_howe - timedelta(minutes=1)).astimezone(ZoneInfo("Australia/Lord_Howe")).utcoffset()
    )
    assert abs(shift) == timedelta(minutes=30)


@st.composite
def zoned(draw) -> tuple[str, list[dict]]:
    tz = draw(st.sampled_from(ZONES))
    start = draw(st.sampled_from(_STARTS[tz]))
    return tz, draw(event_sets_at(times_from(start)))


@_EXAMPLES
@given(data=st.data(), case=zoned(), top=st.integers(1, 3))
def test_every_figure_in_every_zone_matches_the_oracle(
    client, database_url, ingest_key, read_key, admin_key, data, case, top
):
    """Wall-clock buckets across daylight-saving changes, :30 and :45 offsets."""
    tz, events = case
    keys = (ingest_key, read_key, admin_key)
    window = data.draw(windows(events, tz))
    _check_every_endpoint(client, database_url, keys, data, events, window, top)


@_EXAMPLES
@given(data=st.data(), tz=st.sampled_from(ZONES), preset=st.sampled_from(list(oracle.PRESETS)))
def test_a_read_up_to_now_counts_exactly_to_the_as_of_it_reports(
    client, database_url, ingest_key, read_key, data, tz, preset
):
    """Without ``end``, the window is cut at one instant taken once per request: workloads
    still running and volumes not deleted count up to exactly the ``as_of`` echoed, in every
    section, series and breakdown (the oracle computes the window from that as_of)."""
    now = datetime.now(UTC)
    recent = st.builds(
        lambda seconds, micros: now - timedelta(seconds=seconds, microseconds=micros),
        # Some a little ahead of the server's clock (a producer's clock runs fast).
        st.integers(0, 3 * 86400) | st.integers(-2, 600),
        st.integers(0, 999_999),
    )
    events = [{**event, "subject": "acme"} for event in data.draw(event_sets_at(recent))]
    reset(database_url)
    assert post_events(client, ingest_key, events).status_code == 200
    bucket = data.draw(st.sampled_from([None, *PRESET_WIDTHS[preset]]))
    params = {"range": preset, "tz": tz, **({"bucket": bucket} if bucket else {})}
    for section, compute in oracle.SECTIONS.items():
        response = client.get(
            f"/orgs/acme/usage/{section}",
            params=params,
            headers={"Authorization": f"Bearer {read_key}"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        as_of = datetime.fromisoformat(body["window"]["as_of"])
        assert body["window"]["end"] == body["window"]["as_of"]
        window = OracleWindow.preset(preset, as_of, bucket, tz)
        expected = compute(events, window, 3, "acme", filters={})
        assert_equal(comparable({name: body[name] for name in expected}), expected, section)


# The filters of each section (§4.1) and values that match some events, or none.
_FILTERS = {
    "llm": ["model", "identity"],
    "compute": ["agent"],
    "storage": ["agent"],
    "platform": ["identity"],
}
# The dimensions each section's groups split by (§4.3), besides org across orgs.
_GROUPS = {
    "llm": ["model", "identity"],
    "compute": ["agent"],
    "storage": ["agent"],
    "platform": ["identity"],
}
_FILTER_VALUES = {
    "model": ["m1", "m2", "m3", "gpt-none"],
    "identity": ["agent:a1", "user:a1", "agent:a2", "user:a3", "agent:nobody"],
    "agent": ["a1", "a2", "nobody"],
    "org": ["acme", "globex", "initech"],
}


def _filters(data, names: list[str]) -> dict[str, list[str]]:
    """None half the time; otherwise some of ``names``, each with one to three values."""
    if data.draw(st.booleans()):
        return {}
    chosen = data.draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
    return {
        name: data.draw(
            st.lists(st.sampled_from(_FILTER_VALUES[name]), min_size=1, max_size=3, unique=True)
        )
        for name in chosen
    }


def _check_every_endpoint(client, database_url, keys, data, events, window, top) -> None:
    ingest_key, read_key, admin_key = keys
    params, window = window
    reset(database_url)
    for batch in data.draw(deliveries(events)):
        assert post_events(client, ingest_key, batch).status_code == 200
    compare = data.draw(st.booleans())
    if compare:
        params["compare"] = "previous"
    acme_exists = any(event["subject"] == "acme" for event in events)
    for section, compute in oracle.SECTIONS.items():
        for path, key, org in [
            (f"/orgs/acme/usage/{section}", read_key, "acme"),
            (f"/usage/{section}", admin_key, None),
        ]:
            filters = _filters(data, _FILTERS[section] + ([] if org else ["org"]))
            response = client.get(
                path,
                params={**params, **filters, "top": top},
                headers={"Authorization": f"Bearer {key}"},
            )
            if org and not acme_exists:
                assert response.status_code == 404
                continue
            assert response.status_code == 200, response.text
            body = response.json()
            check_invariants(section, body)
            assert body["org"] == org
            assert epoch_us(datetime.fromisoformat(body["window"]["as_of"])) == window.as_of
            assert body["window"]["bucket"] == window.bucket
            assert body["window"]["tz"] == params.get("tz", "UTC")
            assert body["filters"] == filters
            expected = compute(events, window, top, org, filters=filters)
            actual = comparable({name: body[name] for name in expected})
            assert_equal(actual, expected, section)
            assert ("previous" in body) == compare
            if compare:
                assert_equal(
                    comparable(body["previous"]),
                    _previous(compute, events, window, top, org, filters),
                    f"{section}.previous",
                )
            by = data.draw(st.sampled_from(_GROUPS[section] + ([] if org else ["org"])))
            window_params = {name: value for name, value in params.items() if name != "compare"}
            grouped = client.get(
                f"{path}/groups",
                params={**window_params, **filters, "top": top, "by": by},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert grouped.status_code == 200, grouped.text
            expected = oracle.groups(section, events, window, top, org, filters, by)
            actual = comparable({name: grouped.json()[name] for name in expected})
            assert_equal(actual, expected, f"{section} by {by}")


def _previous(compute, events, window: OracleWindow, top: int, org, filters) -> dict:
    """The oracle's summary over the span of equal length before the counted data."""
    length = window.as_of - window.counted_from
    start, end = window.counted_from - length, window.counted_from
    # Any buckets will do: only the summary is compared.
    span = OracleWindow.custom(from_us(start), from_us(end), "7d")
    summary = compute(events, span, top, org, filters=filters)["summary"]
    return {"start": start, "end": end, "summary": summary}


def test_the_oracle_answers_every_section_of_the_service():
    assert list(oracle.SECTIONS) == list(SECTION_NAMES)
