"""OTLP bodies and answers (api.core.otlp): pure, so hypothesis can throw anything at them."""

import msgspec
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from api.core.genai_spans import RefusedSpan, llm_calls
from api.core.otlp import JSON, PROTOBUF, NotOtlp, decode_request, encode_response
from api.core.parsing import Accepting
from testkit.factories import BASE_TIME
from testkit.spans import genai_spans, json_request, protobuf_request

ANY_AGE = Accepting(BASE_TIME)
_OTLP_KEYS = [
    "resourceSpans", "resource_spans", "scopeSpans", "spans", "resource", "attributes", "key",
    "value", "stringValue", "intValue", "doubleValue", "arrayValue", "kvlistValue", "values",
    "bytesValue", "traceId", "spanId", "parentSpanId", "links", "status", "code",
    "endTimeUnixNano", "kind", "name", "other",
]  # fmt: skip
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["00ff", "0102030405060708", "zz", "AAAA", "-1", "18446744073709551616"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(_OTLP_KEYS), children)
    ),
    max_leaves=30,
)


def _request_or_refusal(body: bytes, media_type: str) -> None:
    """The body is OTLP, whose GenAI spans are each a call or a reason, or it is refused:
    never another exception."""
    try:
        request = decode_request(body, media_type)
    except NotOtlp as refusal:
        assert str(refusal)
        return
    llm_calls(request.resource_spans, ANY_AGE)


@given(st.dictionaries(st.sampled_from(_OTLP_KEYS), _json_values, max_size=4) | _json_values)
def test_any_json_is_a_request_or_a_reason(document):
    _request_or_refusal(msgspec.json.encode(document), JSON)


@given(st.binary())
def test_any_bytes_are_a_request_or_a_reason(body):
    _request_or_refusal(body, PROTOBUF)


@given(spans=st.lists(genai_spans, min_size=1, max_size=4), data=st.data())
def test_a_request_cut_or_changed_anywhere_is_a_request_or_a_reason(spans, data):
    body = bytearray(protobuf_request(spans))
    at = data.draw(st.integers(0, len(body) - 1))
    if data.draw(st.booleans()):
        body[at] = data.draw(st.integers(0, 255))
    else:
        del body[at:]
    _request_or_refusal(bytes(body), PROTOBUF)


@given(spans=st.lists(genai_spans, max_size=6), int_as_string=st.booleans())
def test_otlp_json_decodes_to_the_same_request_as_protobuf(spans, int_as_string):
    from_json = decode_request(
        msgspec.json.encode(json_request(spans, int_as_string=int_as_string)), JSON
    )
    assert from_json == decode_request(protobuf_request(spans), PROTOBUF)


@given(refused=st.lists(st.builds(RefusedSpan, st.text(max_size=16), st.text()), max_size=8))
def test_the_answer_counts_every_refused_span_in_either_encoding(refused):
    answer = ExportTraceServiceResponse.FromString(encode_response(refused, PROTOBUF))
    assert answer.partial_success.rejected_spans == len(refused)
    as_json = msgspec.json.decode(encode_response(refused, JSON))
    if not refused:
        assert as_json == {} and not answer.HasField("partial_success")
        return
    assert as_json["partialSuccess"]["rejectedSpans"] == str(len(refused))
    assert as_json["partialSuccess"]["errorMessage"] == answer.partial_success.error_message
    for span in refused[:5]:
        assert f"span {span.span_id}: {span.reason}" in answer.partial_success.error_message
