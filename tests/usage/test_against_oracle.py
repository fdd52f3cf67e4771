"""Every figure of every usage endpoint, for random event sets and windows, equals the oracle's.

Events are ingested through POST /events in random batches with re-sends; windows are drawn
around the events' own times (exactly at an event, a microsecond either side, off the 5-minute
grid), as presets with an explicit end and as custom windows with and without a bucket.
"""

from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.reads.sections import SECTION_NAMES
from testkit import oracle
from testkit.database import reset
from testkit.factories import iso, post_events
from testkit.invariants import check_invariants
from testkit.matching import assert_equal, comparable
from testkit.oracle import US, OracleWindow, epoch_us, event_us, from_us
from testkit.strategies import deliveries, event_sets

_NUDGES = [0, 0, 1, -1, 150 * US, -299 * US, 3600 * US]


@st.composite
def windows(draw, events: list[dict]) -> tuple[dict[str, str], OracleWindow]:
    times = sorted({event_us(event) for event in events})

    def near_an_event() -> int:
        return draw(st.sampled_from(times)) + draw(st.sampled_from(_NUDGES))

    if draw(st.booleans()):
        preset = draw(st.sampled_from(list(oracle.PRESETS)))
        as_of = from_us(near_an_event() + draw(st.sampled_from([1, 0])))
        return {"range": preset, "end": iso(as_of)}, OracleWindow.preset(preset, as_of)
    start, end = sorted([near_an_event(), near_an_event()])
    end += 0 if end > start else draw(st.sampled_from([1, 7 * US, 3 * 3600 * US]))
    bucket = draw(st.sampled_from([None, None, "5m", "15m", "1h", "1d", "7d"]))
    params = {"start": iso(from_us(start)), "end": iso(from_us(end))}
    if bucket:
        params["bucket"] = bucket
    return params, OracleWindow.custom(from_us(start), from_us(end), bucket)


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), events=event_sets, top=st.integers(1, 3))
def test_every_figure_of_every_endpoint_matches_the_oracle(
    client, database_url, ingest_key, read_key, admin_key, data, events, top
):
    reset(database_url)
    for batch in data.draw(deliveries(events)):
        assert post_events(client, ingest_key, batch).status_code == 200
    params, window = data.draw(windows(events))
    compare = data.draw(st.booleans())
    if compare:
        params["compare"] = "previous"
    acme_exists = any(event["subject"] == "acme" for event in events)
    for section, compute in oracle.SECTIONS.items():
        for path, key, org in [
            (f"/orgs/acme/usage/{section}", read_key, "acme"),
            (f"/usage/{section}", admin_key, None),
        ]:
            response = client.get(
                path, params={**params, "top": top}, headers={"Authorization": f"Bearer {key}"}
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
            expected = compute(events, window, top, org)
            actual = comparable({name: body[name] for name in expected})
            assert_equal(actual, expected, section)
            assert ("previous" in body) == compare
            if compare:
                assert_equal(
                    comparable(body["previous"]),
                    _previous(compute, events, window, top, org),
                    f"{section}.previous",
                )


def _previous(compute, events, window: OracleWindow, top: int, org) -> dict:
    """The oracle's summary over the span of equal length before the counted data."""
    length = window.as_of - window.counted_from
    start, end = window.counted_from - length, window.counted_from
    span = OracleWindow.custom(from_us(start), from_us(end), None)
    return {"start": start, "end": end, "summary": compute(events, span, top, org)["summary"]}


def test_the_oracle_answers_every_section_of_the_service():
    assert list(oracle.SECTIONS) == list(SECTION_NAMES)
