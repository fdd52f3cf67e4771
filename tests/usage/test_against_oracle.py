"""Every figure of every usage endpoint, for random event sets and windows, equals the oracle's.

Events are ingested through POST /events in random batches with re-sends, some rebuilt by
their producer with a new time and new figures (the first sent is the one counted); windows
are drawn around the events' own times (exactly at an event, a microsecond either side, off
the 5-minute grid), as presets with an explicit end and as custom windows with and without a
bucket.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.core.windows import PRESET_WIDTHS
from api.reads.sections import SECTION_NAMES
from api.storage.folding import QUEUES
from testkit import oracle
from testkit.answers import check_every_endpoint, windows
from testkit.database import fold_one, import_batch, reset
from testkit.engine import examples
from testkit.factories import BASE_TIME, post_events
from testkit.matching import assert_equal, comparable
from testkit.oracle import OracleWindow
from testkit.strategies import (
    deliveries,
    event_sets,
    event_sets_at,
    orgs,
    retries,
    times_from,
)

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
    stored = _ingest(client, database_url, ingest_key, data, retries(events))
    check_every_endpoint(
        client, (read_key, admin_key), data, stored, data.draw(windows(stored)), top
    )


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
    stored = _ingest(client, database_url, ingest_key, data, retries(events))
    window = data.draw(windows(stored, tz))
    check_every_endpoint(client, (read_key, admin_key), data, stored, window, top)


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
    _ingest(client, database_url, ingest_key, data, deliveries(events))
    bucket = data.draw(st.sampled_from([None, *PRESET_WIDTHS[preset]]))
    params = {"range": preset, "tz": tz, "top": 3, **({"bucket": bucket} if bucket else {})}
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


_FOLDS = st.lists(
    st.tuples(st.sampled_from([queue.name for queue in QUEUES]), orgs), max_size=2, unique=True
)


def _post(client, database_url, ingest_key, batch) -> None:
    assert post_events(client, ingest_key, batch).status_code == 200


def _import(client, database_url, ingest_key, batch) -> None:
    import_batch(database_url, batch)


def _ingest(client, database_url, ingest_key, data, batches, routes=(_post,)) -> list[dict]:
    """The events of ``batches`` (a strategy) alone in the database, sent in turn, each batch
    by one of ``routes``; after each batch, some organizations' queues folded into the
    rollups (the reads add what is still queued, whatever that is). The events stored: the
    first sent of each."""
    reset(database_url)
    sent = []
    for batch in data.draw(batches):
        data.draw(st.sampled_from(routes))(client, database_url, ingest_key, batch)
        sent += batch
        for queue, org in data.draw(_FOLDS):
            fold_one(database_url, queue, org)
    return oracle.unique_events(sent)


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), events=event_sets, top=st.integers(1, 3))
def test_retries_through_import_and_post_events_count_the_first_sent(
    client, database_url, ingest_key, read_key, admin_key, data, events, top
):
    """Producers that rebuild events to retry them, some batches posted, some imported: an
    event is one (subject, source, id) whichever way each copy came."""
    stored = _ingest(
        client, database_url, ingest_key, data, retries(events), routes=(_post, _import)
    )
    check_every_endpoint(
        client, (read_key, admin_key), data, stored, data.draw(windows(stored)), top
    )


def test_the_oracle_answers_every_section_of_the_service():
    assert list(oracle.SECTIONS) == list(SECTION_NAMES)
