"""Parsing request bodies into events: pure, so hypothesis can throw anything at it."""

import json
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.core.events import LlmCallEvent, WorkloadAllocatedEvent
from api.core.parsing import (
    MAX_EVENTS,
    Accepting,
    BodyKind,
    InvalidEvents,
    MalformedBody,
    TooManyEvents,
    parse_binary_event,
    parse_events,
    validate,
)
from testkit.factories import BASE_TIME, iso, llm_call, one_of_each, workload_allocated

NOW = BASE_TIME + timedelta(days=1)
ANY_AGE = Accepting(NOW)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@given(body=json_values, kind=st.sampled_from(BodyKind))
def test_any_json_is_events_or_a_reason(body, kind):
    try:
        events = parse_events(msgspec.json.encode(body), kind, ANY_AGE)
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
def mutated_events(draw) -> tuple[list[dict], int, tuple[str, ...]]:
    """Valid events of every type with one part deleted or replaced by any JSON: the near
    misses random JSON rarely reaches. With the mutated event's index and the part's path."""
    events = one_of_each()
    index = draw(st.integers(0, len(events) - 1))
    event = events[index]
    paths = [(key,) for key in event] + [("data", key) for key in event["data"]]
    path = draw(st.sampled_from(paths))
    holder = event if len(path) == 1 else event["data"]
    if draw(st.booleans()):
        del holder[path[-1]]
    else:
        holder[path[-1]] = draw(json_values)
    return events, index, path


@given(mutated=mutated_events())
def test_near_miss_events_are_refused_by_index_and_field(mutated):
    events, index, path = mutated
    try:
        parsed = parse_events(msgspec.json.encode(events), BodyKind.BATCH, ANY_AGE)
    except InvalidEvents as error:
        assert error.errors
        for item in error.errors:
            assert item.index == index, "only the mutated event is refused"
            assert item.message
            assert item.field is not None
            if path[0] == "data":  # cross-field checks may name a sibling: cached vs input
                assert item.field.startswith("data")
            elif path[0] != "type":  # another type makes another data invalid
                assert item.field == path[0]
    else:
        # Accepted: every event as the type it says it is, the mutated one included.
        assert [type(e).__struct_config__.tag for e in parsed] == [e["type"] for e in events]


@given(body=st.binary(max_size=200), kind=st.sampled_from(BodyKind))
def test_any_bytes_are_events_or_a_reason(body, kind):
    try:
        events = parse_events(body, kind, ANY_AGE)
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
    (event,) = parse_events(msgspec.json.encode(body), BodyKind.BATCH, ANY_AGE)
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
        assert len(parse_events(body, BodyKind.BATCH, ANY_AGE)) == 1
    else:
        with pytest.raises(InvalidEvents) as refused:
            parse_events(body, BodyKind.BATCH, ANY_AGE)
        assert refused.value.errors[0].field == "time"


@pytest.mark.parametrize("offset", ["+02:30", "-21:31", "+23:59", "Z"])
def test_offsets_are_kept_as_utc_instants(offset):
    local = datetime(2026, 11, 2, 0, 0, 0, 123456, tzinfo=UTC).astimezone(
        datetime.fromisoformat(f"2026-11-02T00:00:00{offset}").tzinfo
    )
    event = workload_allocated(cpu_cores=0.25)
    event["time"] = local.isoformat()
    (parsed,) = parse_events(msgspec.json.encode([event]), BodyKind.BATCH, ANY_AGE)
    assert isinstance(parsed, WorkloadAllocatedEvent)
    assert parsed.time == datetime(2026, 11, 2, 0, 0, 0, 123456, tzinfo=UTC)
    assert parsed.time.utcoffset() == timedelta(0)
    assert parsed.data.cpu_cores == 0.25


def test_times_before_1970_are_refused():
    event = llm_call()
    event["time"] = "0001-01-01T00:00:00+05:00"
    with pytest.raises(InvalidEvents) as refused:
        parse_events(msgspec.json.encode([event]), BodyKind.BATCH, ANY_AGE)
    assert [(e.field, e.message) for e in refused.value.errors] == [
        ("time", "must be in the years 1970 to 9999 in UTC")
    ]


def test_batch_size_limit():
    body = msgspec.json.encode(one_of_each() * (MAX_EVENTS // 7 + 1))
    with pytest.raises(TooManyEvents):
        parse_events(body, BodyKind.BATCH, ANY_AGE)


def test_a_single_event_kind_refuses_an_array_and_the_batch_kind_an_object():
    with pytest.raises(MalformedBody):
        parse_events(b"[]", BodyKind.SINGLE, ANY_AGE)
    with pytest.raises(MalformedBody):
        parse_events(msgspec.json.encode(llm_call()), BodyKind.BATCH, ANY_AGE)
    assert len(parse_events(msgspec.json.encode(llm_call()), BodyKind.EITHER, ANY_AGE)) == 1


def _refusals(body: bytes) -> list[tuple[int, str | None, str]]:
    with pytest.raises(InvalidEvents) as refused:
        parse_events(body, BodyKind.EITHER, ANY_AGE)
    return [(e.index, e.field, e.message) for e in refused.value.errors]


@pytest.mark.parametrize("subject", ["acme\n", "acme\r\n", "\nacme", "ac\nme"])
def test_an_org_slug_has_nothing_after_it(subject):
    body = msgspec.json.encode([llm_call(), llm_call(org=subject)])
    assert [(index, field) for index, field, _ in _refusals(body)] == [(1, "subject")]


def test_nanoseconds_are_truncated_never_rounded_into_the_next_bucket():
    event = llm_call()
    event["time"] = "2026-11-02T05:59:59.999999999Z"
    (parsed,) = parse_events(msgspec.json.encode([event]), BodyKind.BATCH, ANY_AGE)
    assert parsed.time == datetime(2026, 11, 2, 5, 59, 59, 999999, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"subject": "a", "subject": "b"}', "subject"),
        (b'{"data": {"input_tokens": 1, "input_tokens": 2}}', "data.input_tokens"),
        (b'{"x": [{"k": 1}, {"k": 1, "k": 2}]}', "x[1].k"),
    ],
)
def test_a_key_twice_in_one_object_is_refused_by_name(body, field):
    event = msgspec.json.encode(llm_call())
    batch = b"[" + event + b", " + body + b"]"
    assert _refusals(batch) == [(1, field, "appears twice in one object")]


def test_every_invalid_field_of_every_event_is_listed():
    first = llm_call(org="Acme", input_tokens=-1, cached_tokens=0)
    first["time"] = "yesterday"
    second = workload_allocated(cpu_cores=0)
    del second["id"]
    body = msgspec.json.encode([llm_call(), first, second])
    assert sorted((index, field) for index, field, _ in _refusals(body)) == [
        (1, "data.input_tokens"),
        (1, "subject"),
        (1, "time"),
        (2, "data.cpu_cores"),
        (2, "id"),
    ]


def test_the_detail_counts_invalid_events_not_their_errors():
    first = llm_call(org="Acme", input_tokens=-1, cached_tokens=0)
    second = workload_allocated(cpu_cores=0)
    del second["id"]
    with pytest.raises(InvalidEvents) as two:
        parse_events(msgspec.json.encode([llm_call(), first, second]), BodyKind.EITHER, ANY_AGE)
    assert len(two.value.errors) == 4
    assert str(two.value) == "2 invalid events; nothing was stored"
    with pytest.raises(InvalidEvents) as one:
        parse_events(msgspec.json.encode([first]), BodyKind.EITHER, ANY_AGE)
    assert str(one.value) == "1 invalid event; nothing was stored"


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'[{"data": ' + b"[" * 5_000 + b"]" * 5_000 + b"}]",
        b'{"data": ' + b'{"a": ' * 5_000 + b"1" + b"}" * 5_001,
    ],
)
def test_deep_nesting_is_a_malformed_body(body):
    with pytest.raises(MalformedBody, match="nested too deeply"):
        parse_events(body, BodyKind.EITHER, ANY_AGE)


@pytest.mark.parametrize(
    "body",
    [
        b'[{"model": "m\xff"}]',
        b'[{"specversion": "1.0", "x-extension": "\xc3\x28"}]',
        "[]".encode("utf-16"),
    ],
)
def test_a_body_that_is_not_utf8_is_malformed(body):
    with pytest.raises(MalformedBody, match="not UTF-8"):
        parse_events(body, BodyKind.EITHER, ANY_AGE)


@pytest.mark.parametrize(
    ("number", "message"),
    [(b"1e999", "Number out of range"), (b"1" * 5_000, "Integer value out of range")],
)
def test_a_number_past_every_range_is_an_invalid_event(number, message):
    """msgspec reads these as no Python value and json.loads refuses an integer of over
    4,300 digits: in a field, or in none, the event is refused (no exception escapes)."""
    event = msgspec.json.encode(llm_call(input_tokens=123_456_789))
    in_field = event.replace(b"123456789", number)
    assert _refusals(b"[" + in_field + b"]") == [(0, "data.input_tokens", message)]
    in_no_field = event.replace(b'"model"', b'"x": ' + number + b', "model"')
    batch = in_no_field.replace(b'"gpt-5"', b"5")  # and invalid otherwise
    assert [(index, field) for index, field, _ in _refusals(b"[" + batch + b"]")] == [
        (0, "data.model")
    ]


_raw = msgspec.json.Decoder(msgspec.Raw)


def _raw_or_none(text: bytes) -> msgspec.Raw | None:
    try:
        return _raw.decode(text)
    except (msgspec.DecodeError, RecursionError):
        return None


# What msgspec.Raw lets through as a JSON value, and the checks after it may not: strings
# of any bytes (not UTF-8), nesting near any parser's depth, numbers past every range.
_event = msgspec.json.encode(llm_call(model="MODEL", input_tokens=777_777))
raw_values = (
    st.one_of(
        st.binary(max_size=8).map(lambda text: _event.replace(b"MODEL", text)),
        st.integers(1, 1_100).map(lambda depth: b"[" * depth + b"]" * depth),
        st.integers(1, 1_100).map(lambda depth: b'{"data": ' * depth + b"1" + b"}" * depth),
        st.sampled_from([b"1e999", b"9" * 5_000]).map(lambda n: _event.replace(b"777777", n)),
        json_values.map(msgspec.json.encode),
    )
    .map(_raw_or_none)
    .filter(lambda raw: raw is not None)
)


@given(values=st.lists(raw_values, max_size=5))
def test_any_values_msgspec_reads_are_events_or_errors_by_index(values):
    """`usage-api import` hands validate what each line holds: nothing escapes it."""
    events, errors = validate(values, ANY_AGE)
    assert all(0 <= error.index < len(values) and error.message for error in errors)
    assert len(events) + len({error.index for error in errors}) == len(values)


@st.composite
def written_batches(draw) -> bytes:
    """Valid events written out by hand, as producers may: a key repeated (with the same or
    another value), whitespace around colons, extension attributes, strings that hold a
    quote and a colon, a name sent as null. The cases the one-pass check of parse_events
    must hand to the exact one."""

    def written(value: object) -> str:
        if not isinstance(value, dict):
            return json.dumps(value)
        pairs = list(value.items())
        if draw(st.booleans()):
            pairs.append((draw(st.sampled_from(["x-trace", 'note":', "a"])), draw(st.text())))
        if pairs and draw(st.integers(0, 4)) == 0:
            key, item = draw(st.sampled_from(pairs))
            pairs.insert(draw(st.integers(0, len(pairs))), (key, draw(st.just(item) | st.text())))
        colon = draw(st.sampled_from([":", " :", ": ", "\n\t:", "\r :"]))
        return "{" + ",".join(json.dumps(k) + colon + written(v) for k, v in pairs) + "}"

    events = one_of_each()
    for event in events:
        identity = event["data"].get("identity")
        if identity is not None:
            identity["name"] = draw(st.sampled_from([None, 'say ":" twice', "plain"]))
    return ("[" + ",".join(written(event) for event in events) + "]").encode()


@given(body=written_batches())
def test_the_one_pass_check_answers_as_the_exact_one(body):
    """parse_events' fast path against the oracle: every event checked alone for a key
    twice (json.loads keeping every pair), then validated."""
    expected, errors = validate(msgspec.json.decode(body, type=list[msgspec.Raw]), ANY_AGE, True)
    if errors:
        with pytest.raises(InvalidEvents) as refused:
            parse_events(body, BodyKind.BATCH, ANY_AGE)
        assert refused.value.errors == errors
    else:
        assert parse_events(body, BodyKind.BATCH, ANY_AGE) == expected


def _text_paths(value: dict, path: str = "") -> list[str]:
    """Where an event holds free text (not a slug, time, media type or one of a few words)."""
    fixed = {"type", "specversion", "subject", "time", "datacontenttype", "kind"}
    found = []
    for key, item in value.items():
        inner = f"{path}.{key}" if path else key
        if isinstance(item, dict):
            found += _text_paths(item, inner)
        elif isinstance(item, str) and key not in fixed:
            found.append(inner)
    return found


@given(data=st.data(), batch=st.booleans())
def test_nul_in_any_text_is_refused_by_field(data, batch):
    events = one_of_each()
    for event in events:
        for named in ("identity", "agent"):
            if named in event["data"]:
                event["data"][named]["name"] = "named"
    index = data.draw(st.integers(0, len(events) - 1))
    path = data.draw(st.sampled_from(_text_paths(events[index])))
    *parents, last = path.split(".")
    holder = events[index]
    for key in parents:
        holder = holder[key]
    holder[last] = data.draw(st.sampled_from(["\x00", "a\x00b", "\\u0000 and \x00"]))
    body = msgspec.json.encode(events if batch else events[index])
    assert _refusals(body) == [(index if batch else 0, path, "must not contain NUL characters")]


@pytest.mark.parametrize("cores", [5e-324, 1e-300, 0.0009, 100_000.5])
def test_cores_outside_a_millicore_to_100k_are_refused(cores):
    body = msgspec.json.encode([workload_allocated(cpu_cores=cores)])
    assert [field for _, field, _ in _refusals(body)] == ["data.cpu_cores"]


@pytest.mark.parametrize(
    "media_type", ["application/json", "application/json; charset=utf-8", "application/json;x=1"]
)
def test_datacontenttype_may_carry_parameters(media_type):
    event = llm_call()
    event["datacontenttype"] = media_type
    assert len(parse_events(msgspec.json.encode(event), BodyKind.SINGLE, ANY_AGE)) == 1


def test_binary_mode_refuses_a_key_twice_in_its_data():
    headers = {"ce-specversion": "1.0", "ce-id": "b", "ce-source": "s", "ce-type": "llm.call",
               "ce-subject": "acme", "ce-time": "2026-11-02T00:00:00Z"}  # fmt: skip
    data = llm_call()["data"]
    body = msgspec.json.encode(data).replace(b'"model"', b'"model":"x","model"')
    with pytest.raises(InvalidEvents) as refused:
        parse_binary_event(headers, "application/json", body, ANY_AGE)
    assert [(e.index, e.field) for e in refused.value.errors] == [(0, "data.model")]


@given(days=st.integers(2, 400), seconds=st.integers(-86_400, 3 * 86_400))
def test_post_accepts_the_last_days_and_names_import_for_older_events(days, seconds):
    accepting = Accepting.posted(NOW, days)
    time = NOW - timedelta(days=days, seconds=seconds)
    body = msgspec.json.encode([llm_call(time=time)])
    if seconds <= 0:  # at or inside the window
        assert len(parse_events(body, BodyKind.BATCH, accepting)) == 1
        return
    with pytest.raises(InvalidEvents) as refused:
        parse_events(body, BodyKind.BATCH, accepting)
    ((field, message),) = [(e.field, e.message) for e in refused.value.errors]
    assert field == "time"
    assert f"more than {days} days old" in message and "usage-api import" in message


def test_import_accepts_any_age_within_the_raw_retention():
    accepting = Accepting.imported(NOW, 400)
    kept = msgspec.json.encode([llm_call(time=NOW - timedelta(days=399))])
    assert len(parse_events(kept, BodyKind.BATCH, accepting)) == 1
    gone = msgspec.json.encode([llm_call(time=NOW - timedelta(days=401))])
    with pytest.raises(InvalidEvents) as refused:
        parse_events(gone, BodyKind.BATCH, accepting)
    assert "raw retention of 400 days" in refused.value.errors[0].message
