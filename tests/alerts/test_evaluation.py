"""Evaluating thresholds (§10): each crossing recorded once, at the first evaluation that
finds its period's figure over the limit, with the figure the reads give; late events and
allocations that grow with time alone included. Checked against the oracle."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from api.alerts.evaluation import evaluate
from api.reads.sections import SECTION_NAMED
from api.storage.marks import SECTION_OF
from api.storage.thresholds import create_threshold
from testkit import oracle
from testkit.database import fold, reset, rows_as_they_are, with_connection
from testkit.engine import examples
from testkit.factories import llm_call, post_events
from testkit.oracle import OracleThreshold, epoch_us
from testkit.strategies import event_sets_at, times_from

_HOOK = "http://127.0.0.1:9/hook"  # nothing is delivered here: these tests only evaluate
# Events over three days that hold the end of daylight saving time in Europe and America.
_BASE = datetime(2026, 10, 24, 12, tzinfo=UTC)
_ZONES = ["UTC", "Europe/Berlin", "Asia/Kolkata", "America/Santiago"]
_MEASURES = {
    name: tuple(field for field in section.summary_type.__struct_fields__)
    for name, section in SECTION_NAMED.items()
}


def _threshold(db, org="acme", created_at=_BASE - timedelta(days=1), **spec):
    """A threshold as created at ``created_at`` (the evaluator's first look then too)."""
    spec = {
        "section": "llm",
        "measure": "input_tokens",
        "period": "day",
        "tz": "UTC",
        "limit": 150.0,
        "filters": {},
        "url": _HOOK,
    } | spec

    async def run(conn):
        threshold, _ = await create_threshold(conn, org, **spec)
        await conn.execute(
            "UPDATE thresholds SET created_at = %s, recheck_at = %s WHERE threshold_id = %s",
            (created_at, created_at, threshold.threshold_id),
        )
        return threshold.threshold_id

    return with_connection(db, run)


def _evaluate(db, now):
    return with_connection(db, lambda conn: evaluate(conn, now))


def _crossed(db) -> dict[tuple[str, datetime], float]:
    return {
        (threshold_id, start): value
        for _, threshold_id, start, _, value, *_ in rows_as_they_are(db, "threshold_crossings")
    }


def _post(client, key, events):
    assert post_events(client, key, events).status_code == 200


# -- against the oracle ------------------------------------------------------------------


# The section each CloudEvents type counts in, as ingest marks it.
_SECTION_OF = {kind.__struct_config__.tag: section for kind, section in SECTION_OF.items()}
_FILTERS = {
    "llm": [{}, {"model": ["m1", "m2"]}, {"identity": ["agent:a1"]}],
    "compute": [{}, {"agent": ["a1"]}],
    "storage": [{}, {"agent": ["a1"]}],
    "platform": [{}, {"identity": ["user:a2"]}],
}


@st.composite
def _specs(draw, events: list[dict]):
    """A threshold but its limit: mostly on an organization and section the events use."""
    if events and draw(st.integers(0, 4)):
        sent = draw(st.sampled_from(events))
        org, section = sent["subject"], _SECTION_OF[sent["type"]]
    else:
        org, section = (
            draw(st.sampled_from(["acme", "globex"])),
            draw(st.sampled_from(list(_FILTERS))),
        )
    return {
        "org": org,
        "section": section,
        "measure": draw(st.sampled_from(_MEASURES[section])),
        "period": draw(st.sampled_from(["day", "week", "month"])),
        "tz": draw(st.sampled_from(_ZONES)),
        "filters": draw(st.sampled_from(_FILTERS[section])),
    }


def _highest(steps, threshold: OracleThreshold) -> float:
    """The highest figure any evaluation of ``steps`` finds for the threshold."""
    sent, highest = [], 0.0
    for events, now in steps:
        sent += events
        start, end = oracle.period_of(threshold.created_us, threshold.period, threshold.tz)
        while start <= now:
            highest = max(highest, oracle.period_figure(sent, threshold, start, min(end, now)))
            start, end = end, oracle.period_of(end, threshold.period, threshold.tz)[1]
    return highest


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    minutes=st.lists(st.integers(0, 5 * 1440), min_size=1, max_size=4).map(sorted),
    created_hours=st.integers(1, 60),
)
def test_crossings_are_the_oracles_each_recorded_once(
    client, database_url, ingest_key, data, minutes, created_hours
):
    """Random events sent in steps, each followed by an evaluation at a later instant (some
    steps send nothing: allocations held carry figures on alone), and some folds; limits
    drawn around the highest figure the evaluations will see, so some are crossed, some
    late, some not at all."""
    created = _BASE - timedelta(hours=created_hours)
    steps = [
        (data.draw(st.just([]) | event_sets_at(times_from(_BASE))), _BASE + timedelta(minutes=m))
        for m in minutes
    ]
    oracle_steps = [(events, epoch_us(now)) for events, now in steps]
    every_event = [sent for events, _ in steps for sent in events]
    thresholds = []
    for spec in data.draw(st.lists(_specs(every_event), min_size=1, max_size=4), label="specs"):
        unlimited = OracleThreshold(name="", created_us=epoch_us(created), limit=0.0, **spec)
        share = data.draw(st.sampled_from([0.25, 0.5, 0.9, 0.999, 1.5]), label="limit")
        # Off any figure: exactly at a limit is not over it, and floats differ in the last bit.
        limit = _highest(oracle_steps, unlimited) * share + 0.00012345
        thresholds.append(spec | {"limit": limit})

    reset(database_url)
    names = {_threshold(database_url, created_at=created, **spec): spec for spec in thresholds}
    recorded = []
    for events, now in steps:
        if events:
            _post(client, ingest_key, events)
        if data.draw(st.booleans(), label="fold"):
            fold(database_url)
        found_now = _evaluate(database_url, now).crossings
        for crossing in found_now:
            event("a past period crossed" if crossing.period_end <= now else "crossed")
            event("crossed with no new event" if not events else "crossed after events")
        recorded += found_now
    expected = oracle.crossings(
        oracle_steps,
        [
            OracleThreshold(name=threshold_id, created_us=epoch_us(created), **spec)
            for threshold_id, spec in names.items()
        ],
    )
    found = _crossed(database_url)
    event(f"crossings: {min(len(found), 3)}")
    assert {(t, epoch_us(start)) for t, start in found} == set(expected)
    for (threshold_id, start), value in found.items():
        assert value == pytest.approx(expected[(threshold_id, epoch_us(start))], rel=1e-9)
    # Each recorded by one evaluation only.
    assert sorted((c.threshold_id, c.period_start) for c in recorded) == sorted(found)


def test_events_ahead_of_the_clock_sent_before_a_threshold_existed_still_cross_it(
    client, db, ingest_key
):
    """A batch sent before the threshold existed left no mark: the looks while the threshold
    settles go back to its creation, once the events count."""
    created = _BASE
    ahead = llm_call(time=created + timedelta(minutes=3), input_tokens=500, cached_tokens=0)
    _post(client, ingest_key, [ahead])
    _threshold(db, created_at=created, limit=100.0)
    assert _evaluate(db, created + timedelta(minutes=1)).crossings == []
    assert _evaluate(db, created + timedelta(minutes=2)).crossings == []
    (crossing,) = _evaluate(db, created + timedelta(minutes=7)).crossings
    assert crossing.value == 500
