"""GenAI spans as LLM calls (api.core.genai_spans): pure, against the mapping testkit.spans
writes apart from it."""

from dataclasses import replace
from datetime import timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from api.core.genai_spans import genai_span_count, llm_calls
from api.core.parsing import Accepting
from testkit.factories import BASE_TIME, iso
from testkit.spans import EXAMPLE, genai_spans, in_request_order, llm_event, protobuf_request

NOW = BASE_TIME + timedelta(days=5)
ANY_AGE = Accepting(NOW)
SPAN = EXAMPLE


def mapped(spans, others=(), accepting=ANY_AGE):
    request = ExportTraceServiceRequest.FromString(protobuf_request(spans, list(others)))
    return llm_calls(request.resource_spans, accepting)


def as_sent(event) -> dict:
    """An event as its CloudEvent's JSON says it (no attribute null)."""

    def without_nulls(value):
        if isinstance(value, dict):
            return {key: without_nulls(item) for key, item in value.items() if item is not None}
        return value

    return without_nulls(msgspec.to_builtins(event, enc_hook=iso))


@given(spans=st.lists(genai_spans, max_size=8))
def test_every_genai_span_is_the_llm_call_the_conventions_say(spans):
    result = mapped(spans)
    assert result.refused == []
    expected = [llm_event(span) for span in in_request_order(spans)]
    for event in expected:
        del event["datacontenttype"]
    assert [as_sent(call) for call in result.calls] == expected


def test_spans_of_no_genai_call_are_passed_over():
    http = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="GET /", end_time_unix_nano=1)
    # An attribute merely near the conventions' names does not make a call.
    near = Span(trace_id=b"\x01" * 16, span_id=b"\x03" * 8, name="agent step")
    near.attributes.add(key="gen_ai.system", value={"string_value": "openai"})
    near.attributes.add(key="gen_ai.usage", value={"int_value": 5})
    result = mapped([SPAN], others=[http, near])
    assert [call.id for call in result.calls] == [SPAN.event_id]
    assert result.refused == []
    assert mapped([], others=[http, near]).calls == []


def _no_call(n: int) -> Span:
    """A span of no GenAI call, though an attribute of it is near the conventions' names."""
    span = Span(trace_id=b"\x01" * 16, span_id=n.to_bytes(8, "big"), name="agent step")
    span.attributes.add(key="gen_ai.usage", value={"int_value": 5})
    return span


@given(spans=st.lists(genai_spans, max_size=8), refused=st.integers(0, 3), others=st.integers(0, 3))
def test_the_genai_spans_counted_are_those_mapped_or_refused(spans, refused, others):
    """POST /v1/traces refuses too many GenAI spans on this count, before mapping them."""
    refusing = [
        replace(SPAN, span_id=(100 + n).to_bytes(8, "big"), org="Acme") for n in range(refused)
    ]
    body = protobuf_request(spans + refusing, [_no_call(n) for n in range(1, others + 1)])
    request = ExportTraceServiceRequest.FromString(body)
    result = llm_calls(request.resource_spans, ANY_AGE)
    counted = genai_span_count(request.resource_spans)
    assert counted == len(result.calls) + len(result.refused) == len(spans) + refused


def test_usage_attributes_alone_make_a_call():
    result = mapped([SPAN])
    request = ExportTraceServiceRequest.FromString(protobuf_request([SPAN]))
    span = request.resource_spans[0].scope_spans[0].spans[0]
    kept = [pair for pair in span.attributes if pair.key != "gen_ai.operation.name"]
    del span.attributes[:]
    span.attributes.extend(kept)
    assert llm_calls(request.resource_spans, ANY_AGE).calls == result.calls
    assert genai_span_count(request.resource_spans) == 1


@pytest.mark.parametrize(
    ("span", "reason"),
    [
        (replace(SPAN, org="Acme"), "usage.org must be an organization slug"),
        (replace(SPAN, org="acme\n"), "usage.org must be an organization slug"),
        (replace(SPAN, input_tokens=-1), "gen_ai.usage.input_tokens must be from 0"),
        (replace(SPAN, output_tokens=10**10), "gen_ai.usage.output_tokens must be from 0"),
        (
            replace(SPAN, cached_tokens=101),
            "gen_ai.usage.cache_read.input_tokens (101) must not exceed the input tokens (100)",
        ),
        (replace(SPAN, end=NOW + timedelta(minutes=6)), "more than 5 minutes ahead"),
        (replace(SPAN, model=""), "gen_ai.request.model must be 1 to 200 characters"),
        (replace(SPAN, model="m" * 201), "gen_ai.request.model must be 1 to 200 characters"),
        (replace(SPAN, agent=("a\x001", None)), "gen_ai.agent.id must be 1 to 200"),
        (replace(SPAN, trace_id=bytes(16)), "trace_id must be 16 bytes, not all zero"),
        (replace(SPAN, span_id=b"\x01" * 4), "span_id must be 8 bytes"),
        (replace(SPAN, extra=(("gen_ai.usage.input_tokens", "100"),)), "must be an integer"),
        (replace(SPAN, extra=(("gen_ai.usage.input_tokens", 1.5),)), "must be an integer"),
        (replace(SPAN, extra=(("usage.org", True),)), "usage.org must be a string"),
    ],
)
def test_a_span_that_cannot_be_a_call_is_refused_with_its_reason(span, reason):
    valid = replace(SPAN, span_id=b"\x09" * 8)
    result = mapped([span, valid])
    assert [call.id for call in result.calls] == [valid.event_id]
    (refused,) = result.refused
    assert reason in refused.reason
    assert refused.span_id == span.span_id.hex()


def test_a_span_without_org_model_identity_or_end_is_refused():
    request = ExportTraceServiceRequest.FromString(protobuf_request([SPAN]))
    span = request.resource_spans[0].scope_spans[0].spans[0]
    for missing, reason in [
        ("usage.org", "usage.org is missing"),
        ("gen_ai.request.model", "names no model"),
        ("gen_ai.agent.id", "names no identity"),
    ]:
        copy = ExportTraceServiceRequest()
        copy.CopyFrom(request)
        each = copy.resource_spans[0].scope_spans[0].spans[0]
        kept = [pair for pair in each.attributes if pair.key != missing]
        del each.attributes[:]
        each.attributes.extend(kept)
        (refused,) = llm_calls(copy.resource_spans, ANY_AGE).refused
        assert reason in refused.reason
    span.end_time_unix_nano = 0
    (refused,) = llm_calls(request.resource_spans, ANY_AGE).refused
    assert "no end time" in refused.reason


def test_an_end_time_before_the_window_is_refused_as_post_events_refuses_it():
    accepting = Accepting.posted(NOW, 35)
    result = mapped([replace(SPAN, end=NOW - timedelta(days=36))], accepting=accepting)
    (refused,) = result.refused
    assert "more than 35 days old" in refused.reason
    assert mapped([replace(SPAN, end=NOW - timedelta(days=34))], accepting=accepting).calls


@given(st.integers(0, 2**64 - 1))
def test_any_end_time_is_a_call_or_a_reason(nanos):
    request = ExportTraceServiceRequest.FromString(protobuf_request([SPAN]))
    request.resource_spans[0].scope_spans[0].spans[0].end_time_unix_nano = nanos
    result = llm_calls(request.resource_spans, Accepting(NOW))
    assert len(result.calls) + len(result.refused) == 1
