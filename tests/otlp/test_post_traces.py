"""POST /v1/traces over HTTP: GenAI spans stored as LLM calls, in either encoding; the
spans refused in partial_success; every body that is not OTLP refused cleanly, storing
nothing."""

import gzip
import zlib
from dataclasses import replace
from datetime import timedelta

import msgspec
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from api.web.routes import otlp as otlp_routes
from testkit.database import reset, rows
from testkit.factories import BASE_TIME, post_events
from testkit.spans import EXAMPLE, json_request, llm_event, protobuf_request

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
SPAN = replace(EXAMPLE, cached_tokens=30, agent=("a1", "Ann"))
NO_ORG = replace(SPAN, span_id=b"\x07" * 8, org="Not A Slug")


def post_traces(client, key, body: bytes, content_type=PROTOBUF, **headers):
    return client.post(
        "/v1/traces",
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": content_type, **headers},
    )


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_a_span_is_stored_as_its_llm_call_and_counted_once(client, db, ingest_key, content_type):
    body = (
        protobuf_request([SPAN])
        if content_type == PROTOBUF
        else msgspec.json.encode(json_request([SPAN]))
    )
    for _ in range(2):  # sent again: a duplicate
        response = post_traces(client, ingest_key, body, content_type)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == content_type
    (call,) = rows(db, "llm_calls")
    assert call[1:3] == ("chat-service", SPAN.event_id)
    assert call[4:] == ("agent", "a1", "m1", 100, 30, 20, True)
    # The same call as a CloudEvent is the same event: a duplicate.
    response = post_events(client, ingest_key, [llm_event(SPAN)])
    assert response.json() == {"accepted": 0, "duplicates": 1}


def test_the_answer_is_empty_when_every_span_is_taken(client, db, ingest_key):
    response = post_traces(client, ingest_key, protobuf_request([SPAN]))
    assert response.content == b""
    assert ExportTraceServiceResponse.FromString(response.content) == ExportTraceServiceResponse()
    response = post_traces(client, ingest_key, msgspec.json.encode(json_request([SPAN])), JSON)
    assert response.json() == {}


def test_refused_spans_are_counted_and_named_and_the_others_stored(client, db, ingest_key):
    late = replace(SPAN, span_id=b"\x08" * 8, cached_tokens=101)
    response = post_traces(client, ingest_key, protobuf_request([NO_ORG, SPAN, late]))
    assert response.status_code == 200
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 2
    message = answer.partial_success.error_message
    assert message.startswith("2 GenAI spans refused: span 0707070707070707: usage.org must")
    assert "span 0808080808080808: gen_ai.usage.cache_read.input_tokens (101)" in message
    assert [row[2] for row in rows(db, "llm_calls")] == [SPAN.event_id]


def test_json_partial_success_is_otlp_json(client, db, ingest_key):
    body = msgspec.json.encode(json_request([NO_ORG]))
    response = post_traces(client, ingest_key, body, JSON)
    answer = response.json()
    assert answer["partialSuccess"]["rejectedSpans"] == "1"
    assert answer["partialSuccess"]["errorMessage"].startswith("1 GenAI span refused: span 07")
    assert rows(db, "llm_calls") == []


def test_the_answer_names_the_first_five_refused(client, db, ingest_key):
    spans = [replace(NO_ORG, span_id=bytes([n]) * 8) for n in range(1, 9)]
    response = post_traces(client, ingest_key, protobuf_request(spans))
    answer = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert answer.rejected_spans == 8
    assert answer.error_message.count("span 0") == 5
    assert answer.error_message.endswith("; and 3 more")


@pytest.mark.parametrize("int_as_string", [True, False])
def test_json_ids_are_hex_and_its_integers_strings_or_numbers(
    client, db, ingest_key, int_as_string
):
    body = msgspec.json.encode(json_request([SPAN], int_as_string=int_as_string))
    assert post_traces(client, ingest_key, body, JSON).status_code == 200
    json_rows = rows(db, "llm_calls")
    reset(db)
    assert post_traces(client, ingest_key, protobuf_request([SPAN])).status_code == 200
    assert rows(db, "llm_calls") == json_rows


def test_a_gzip_body_is_inflated(client, db, ingest_key):
    response = post_traces(
        client, ingest_key, gzip.compress(protobuf_request([SPAN])), **{"Content-Encoding": "gzip"}
    )
    assert response.status_code == 200, response.text
    assert len(rows(db, "llm_calls")) == 1


def test_a_gzip_bomb_is_413_at_the_limit(client, db, ingest_key):
    inflater = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    bomb = inflater.compress(b"\x00" * (1 << 30)) + inflater.flush()
    response = post_traces(client, ingest_key, bomb, **{"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (b"\xff\xff\xff", PROTOBUF, "not an OTLP ExportTraceServiceRequest"),
        (protobuf_request([SPAN])[:-7], PROTOBUF, "not an OTLP ExportTraceServiceRequest"),
        (b"{", JSON, "not JSON"),
        (b"[]", JSON, "must be a JSON object"),
        (b'{"resourceSpans": 3}', JSON, "not an OTLP ExportTraceServiceRequest"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}',
            JSON,
            "traceId must be hex",
        ),
        (b'{"resourceSpans": [{"resource": {"attributes": 7}}]}', JSON, "not an OTLP"),
        (b"[" * 100_000 + b"]" * 100_000, JSON, ""),
    ],
)
def test_a_body_that_is_not_otlp_is_400_and_stores_nothing(
    client, db, ingest_key, body, content_type, says
):
    response = post_traces(client, ingest_key, body, content_type)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert says in response.json()["detail"]
    assert rows(db, "llm_calls") == []


def test_a_deeply_nested_protobuf_body_is_400(client, db, ingest_key):
    # An attribute's value, a list holding a list... past protobuf's depth limit.
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    value = span.attributes.add(key="deep").value
    for _ in range(300):
        value = value.array_value.values.add()
    response = post_traces(client, ingest_key, request.SerializeToString())
    assert response.status_code == 400
    assert "MaxDepth" in response.json()["detail"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Type": "application/cloudevents-batch+json"}, 415),
        ({"Content-Type": "text/plain"}, 415),
        ({"Content-Encoding": "br"}, 415),
    ],
)
def test_other_media_types_and_encodings_are_415(client, db, ingest_key, headers, status):
    response = client.post(
        "/v1/traces",
        content=protobuf_request([SPAN]),
        headers={"Authorization": f"Bearer {ingest_key}", "Content-Type": PROTOBUF, **headers},
    )
    assert response.status_code == status
    assert rows(db, "llm_calls") == []


def test_a_key_of_another_scope_or_none_is_refused(client, db, read_key):
    body = protobuf_request([SPAN])
    assert client.post("/v1/traces", content=body).status_code == 401
    assert post_traces(client, read_key, body).status_code == 403
    assert rows(db, "llm_calls") == []


def test_more_than_10000_genai_spans_is_413_before_any_is_mapped(
    client, db, ingest_key, monkeypatch
):
    spans = [
        replace(SPAN, span_id=n.to_bytes(8, "big"), end=BASE_TIME + timedelta(seconds=n))
        for n in range(1, 10_002)
    ]

    def mapped(*_args):
        raise AssertionError("mapped before being counted")  # a 500

    monkeypatch.setattr(otlp_routes, "llm_calls", mapped)
    response = post_traces(client, ingest_key, protobuf_request(spans))
    assert response.status_code == 413
    assert "10,001 GenAI spans" in response.json()["detail"]
    assert rows(db, "llm_calls") == []
