"""Parsing request bodies into events: pure, so hypothesis can throw anything at it."""

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.events import LlmCallEvent, WorkloadAllocatedEvent
from api.parsing import (
    MAX_EVENTS,
    BodyShape,
    InvalidEvents,
    MalformedBody,
    TooManyEvents,
    parse_events,
)
from tests.factories import BASE_TIME, iso, llm_call, one_of_each, workload_allocated

NOW = BASE_TIME + timedelta(days=1)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@given(body=json_values, shape=st.sampled_from(BodyShape))
def test_any_json_is_events_or_a_reason(body, shape):
    try:
        events = parse_events(msgspec.json.encode(body), shape, NOW)
    except (MalformedBody, TooManyEvents) as error:
        assert str(error)
    except InvalidEvents as error:
        assert error.errors
        for item in error.errors:
            assert 0 <= item.index < len(body) if isinstance(body, list) else item.index == 0
            assert item.message
    else:
        assert isinstance(events, list)


@st.composite
def mutated_events(draw) -> list[dict]:
    """Valid events of every type with one part deleted or replaced by any JSON: the near
    misses random JSON rarely reaches."""
    events = one_of_each()
    event = draw(st.sampled_from(events))
    paths = [(key,) for key in event] + [("data", key) for key in event["data"]]
    path = draw(st.sampled_from(paths))
    holder = event if len(path) == 1 else event["data"]
    if draw(st.booleans()):
        del holder[path[-1]]
    else:
        holder[path[-1]] = draw(json_values)
    return events


@given(events=mutated_events())
def test_near_miss_events_are_refused_by_index_and_field(events):
    try:
        parsed = parse_events(msgspec.json.encode(events), BodyShape.BATCH, NOW)
    except InvalidEvents as error:
        assert error.errors
        for item in error.errors:
            assert 0 <= item.index < len(events)
            assert item.message
    else:
        assert len(parsed) == len(events)


@given(body=st.binary(max_size=200), shape=st.sampled_from(BodyShape))
def test_any_bytes_are_events_or_a_reason(body, shape):
    try:
        events = parse_events(body, shape, NOW)
    except (MalformedBody, TooManyEvents, InvalidEvents) as refused:
        assert str(refused)
    else:
        assert all(isinstance(event, LlmCallEvent | WorkloadAllocatedEvent) for event in events)


@given(
    tokens=st.tuples(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(0, 10**9)),
    seconds=st.floats(-(10**8), 300, allow_nan=False),
)
def test_valid_llm_calls_keep_their_figures(tokens, seconds):
    input_tokens, output_tokens, cached = tokens[0], tokens[1], min(tokens)
    time = NOW + timedelta(seconds=seconds)
    body = [
        llm_call(
            input_tokens=input_tokens,
            cached_tokens=cached,
            output_tokens=output_tokens,
            time=time,
            id="e",
        )
    ]
    (event,) = parse_events(msgspec.json.encode(body), BodyShape.BATCH, NOW)
    assert isinstance(event, LlmCallEvent)
    assert (event.data.input_tokens, event.data.cached_tokens, event.data.output_tokens) == (
        input_tokens,
        cached,
        output_tokens,
    )
    assert event.time == datetime.fromisoformat(iso(time))


@given(minutes=st.floats(-60, 60, allow_nan=False))
def test_clock_skew_limit_is_five_minutes(minutes):
    body = msgspec.json.encode([llm_call(time=NOW + timedelta(minutes=minutes))])
    if minutes <= 5:
        assert len(parse_events(body, BodyShape.BATCH, NOW)) == 1
    else:
        with pytest.raises(InvalidEvents) as refused:
            parse_events(body, BodyShape.BATCH, NOW)
        assert refused.value.errors[0].field == "time"


@pytest.mark.parametrize("offset", ["+02:30", "-21:31", "+23:59", "Z"])
def test_offsets_are_kept_as_utc_instants(offset):
    local = datetime(2026, 11, 2, 0, 0, 0, 123456, tzinfo=UTC).astimezone(
        datetime.fromisoformat(f"2026-11-02T00:00:00{offset}").tzinfo
    )
    event = workload_allocated(cpu_cores=0.25)
    event["time"] = local.isoformat()
    (parsed,) = parse_events(msgspec.json.encode([event]), BodyShape.BATCH, NOW)
    assert isinstance(parsed, WorkloadAllocatedEvent)
    assert parsed.time == datetime(2026, 11, 2, 0, 0, 0, 123456, tzinfo=UTC)
    assert parsed.time.utcoffset() == timedelta(0)
    assert parsed.data.cpu_cores == 0.25


def test_times_before_1970_are_refused():
    event = llm_call()
    event["time"] = "0001-01-01T00:00:00+05:00"
    with pytest.raises(InvalidEvents) as refused:
        parse_events(msgspec.json.encode([event]), BodyShape.BATCH, NOW)
    assert [(e.field, e.message) for e in refused.value.errors] == [
        ("time", "must be in the years 1970 to 9999 in UTC")
    ]


def test_batch_size_limit():
    body = msgspec.json.encode(one_of_each() * (MAX_EVENTS // 7 + 1))
    with pytest.raises(TooManyEvents):
        parse_events(body, BodyShape.BATCH, NOW)


def test_a_single_event_shape_refuses_an_array_and_the_batch_shape_an_object():
    with pytest.raises(MalformedBody):
        parse_events(b"[]", BodyShape.SINGLE, NOW)
    with pytest.raises(MalformedBody):
        parse_events(msgspec.json.encode(llm_call()), BodyShape.BATCH, NOW)
    assert len(parse_events(msgspec.json.encode(llm_call()), BodyShape.EITHER, NOW)) == 1
