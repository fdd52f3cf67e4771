"""Exported exactly once, whatever happens around the exporter: events sent and re-sent
(POST /events and import) before and after the destination is registered, passes at random
moments, crashes at any write of any pass, rebuilds. At the end every stored event is in
exactly one file, and usage_hourly summed over each day is the oracle's figures."""

from contextlib import suppress
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.export import hourly
from api.storage import exports
from testkit import oracle
from testkit.database import import_batch, rebuild, reset, with_connection
from testkit.engine import examples
from testkit.exported import Crash, CrashingStore, check_events, check_hourly, export
from testkit.factories import post_events
from testkit.strategies import event_sets, orgs, retries

# Every event of the strategies is within a few days of 2026-11-02.
_FIRST_NOW = datetime(2026, 11, 3, 6, tzinfo=UTC)
_LAST_NOW = datetime(2026, 11, 12, tzinfo=UTC)

_step = st.one_of(
    st.tuples(st.just("export"), st.integers(0, 8), st.booleans()),
    st.tuples(st.just("rebuild"), orgs, st.none()),
)


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), events=event_sets)
def test_every_event_once_and_every_day_exact_through_crashes(
    client, database_url, ingest_key, tmp_path_factory, data, events
):
    # Parts of a few rows: a date's organizations spread over several.
    part_rows = data.draw(st.sampled_from([hourly.PART_ROWS, 1, 30]), label="part rows")
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(hourly, "PART_ROWS", part_rows)
        _exported_exactly_once(client, database_url, ingest_key, tmp_path_factory, data, events)


def _exported_exactly_once(client, database_url, ingest_key, tmp_path_factory, data, events):
    reset(database_url)
    root = tmp_path_factory.mktemp("export")
    url = f"file://{root}"
    now = _FIRST_NOW
    if data.draw(st.booleans(), label="registered before any event"):
        export(database_url, url, now=now)
    sent = []
    for batch in data.draw(retries(events)):
        if data.draw(st.booleans(), label="imported"):
            import_batch(database_url, batch)
        else:
            assert post_events(client, ingest_key, batch).status_code == 200
        sent += batch
        for action, value, after in data.draw(st.lists(_step, max_size=2)):
            if action == "rebuild":
                rebuild(database_url, value)
                _rebuilt(database_url, value, now)
                continue
            # The exporter's clock is never behind the events stored (but by MAX_CLOCK_SKEW).
            latest = max(datetime.fromisoformat(event["time"]) for event in sent)
            now = min(max(now + timedelta(hours=data.draw(st.integers(0, 60))), latest), _LAST_NOW)
            store = CrashingStore(url, value, after=after) if value else None
            with suppress(Crash):
                export(database_url, url, now=now, store=store)
    export(database_url, url, now=_LAST_NOW)
    # A pass with nothing new writes nothing.
    assert export(database_url, url, now=_LAST_NOW).events == 0
    check_events(root, sent)
    stored = oracle.unique_events(sent)
    first = min(datetime.fromisoformat(event["time"]) for event in stored).date()
    last = _LAST_NOW.date() - timedelta(days=1)
    check_hourly(root, sent, [first + timedelta(days=n) for n in range((last - first).days + 1)])


def _rebuilt(database_url: str, org: str, now: datetime) -> None:
    """What `usage-api rebuild --org` tells the exporter after the rebuild."""
    since = datetime(1970, 1, 1, tzinfo=UTC).date()
    with_connection(database_url, lambda conn: exports.rebuilt(conn, org, since, now.date()))
