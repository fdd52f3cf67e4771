"""GenAI spans for tests: drawn as plain specs, sent as OTLP (protobuf through the
OpenTelemetry project's messages, or JSON written here by hand as the OTLP specification
encodes it), and the llm.call CloudEvent each must count as, mapped here apart from the
service (DESIGN §12)."""

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status

from testkit.factories import BASE_TIME, identity, llm_call
from testkit.strategies import orgs, times

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class GenAiSpan:
    trace_id: bytes
    span_id: bytes
    org: str
    end: datetime
    model: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int | None = None  # None: the attribute is not sent
    service: str | None = "chat-service"  # None: the resource has no service.name
    org_on_resource: bool = False
    response_model: bool = False  # the model as gen_ai.response.model (else request.model)
    older_names: bool = False  # prompt_tokens / completion_tokens
    agent: tuple[str, str | None] | None = ("a1", None)  # (id, name); None: a user
    user: tuple[str, str] = ("enduser.id", "u1")  # (attribute, id), when no agent
    failed: str | None = None  # "status" (status ERROR) or "error.type"
    # Span attributes sent first, as they are: they stand for the span's own of their keys.
    extra: tuple[tuple[str, Any], ...] = ()

    @property
    def event_id(self) -> str:
        return f"{self.trace_id.hex()}-{self.span_id.hex()}"


# A span of an LLM call as an instrumentation records it, in acme, at BASE_TIME.
EXAMPLE = GenAiSpan(
    trace_id=bytes(range(1, 17)),
    span_id=bytes(range(1, 9)),
    org="acme",
    end=BASE_TIME,
    model="m1",
    input_tokens=100,
    output_tokens=20,
)


def llm_event(span: GenAiSpan) -> dict[str, Any]:
    """The CloudEvent the span must count as."""
    who = (
        identity(span.agent[0], "agent", span.agent[1])
        if span.agent
        else identity(span.user[1], "user")
    )
    end = EPOCH + timedelta(microseconds=_nanos(span.end) // 1000)
    return llm_call(
        id=span.event_id,
        source=span.service or "unknown_service",
        org=span.org,
        time=end,
        who=who,
        model=span.model,
        input_tokens=span.input_tokens,
        cached_tokens=span.cached_tokens or 0,
        output_tokens=span.output_tokens,
        succeeded=span.failed is None,
    )


def of_call(event: dict[str, Any]) -> GenAiSpan:
    """An llm.call CloudEvent as the span of the same call (its ids derived from the
    event's source and id: the same event, the same span)."""
    data = event["data"]
    who = data["identity"]
    key = f"{event['source']}/{event['id']}".encode()
    return GenAiSpan(
        trace_id=hashlib.blake2b(key, digest_size=16).digest(),
        span_id=hashlib.blake2b(key, digest_size=8, person=b"span").digest(),
        org=event["subject"],
        end=datetime.fromisoformat(event["time"]),
        model=data["model"],
        input_tokens=data["input_tokens"],
        cached_tokens=data["cached_tokens"],
        output_tokens=data["output_tokens"],
        service=event["source"],
        agent=(who["id"], who.get("name")) if who["kind"] == "agent" else None,
        user=("enduser.id", who["id"]),
        failed=None if data["succeeded"] else "status",
    )


def _nanos(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000 + 417  # below a microsecond


def _span_attributes(span: GenAiSpan) -> list[tuple[str, Any]]:
    input_key, output_key = (
        ("gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens")
        if span.older_names
        else ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")
    )
    found: list[tuple[str, Any]] = [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.response.model" if span.response_model else "gen_ai.request.model", span.model),
        (input_key, span.input_tokens),
        (output_key, span.output_tokens),
    ]
    if span.response_model:  # what was asked for is not what counts
        found.append(("gen_ai.request.model", "asked-for-" + span.model))
    if span.cached_tokens is not None:
        found.append(("gen_ai.usage.cache_read.input_tokens", span.cached_tokens))
    if not span.org_on_resource:
        found.append(("usage.org", span.org))
    if span.agent:
        found.append(("gen_ai.agent.id", span.agent[0]))
        if span.agent[1]:
            found.append(("gen_ai.agent.name", span.agent[1]))
    else:
        found.append(span.user)
    if span.failed == "error.type":
        found.append(("error.type", "rate_limit_exceeded"))
    return list(span.extra) + found


def _resource_attributes(span: GenAiSpan) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = [("telemetry.sdk.language", "python")]
    if span.service is not None:
        found.append(("service.name", span.service))
    if span.org_on_resource:
        found.append(("usage.org", span.org))
    return found


def _resource_key(span: GenAiSpan) -> tuple:
    return tuple(_resource_attributes(span))


def in_request_order(spans: list[GenAiSpan]) -> list[GenAiSpan]:
    """The spans in the order their request holds them (by resource, as first named)."""
    return [span for _, group in _grouped(spans) for span in group]


def _grouped(spans: list[GenAiSpan]):
    """The spans by resource, in the order first sent."""
    order = {key: n for n, key in reversed(list(enumerate(map(_resource_key, spans))))}
    ordered = sorted(spans, key=lambda span: order[_resource_key(span)])
    return groupby(ordered, key=_resource_key)


# --- protobuf


def _any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=value)


def _key_values(pairs: list[tuple[str, Any]]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_any_value(value)) for key, value in pairs]


def protobuf_span(span: GenAiSpan) -> Span:
    end = _nanos(span.end)
    return Span(
        trace_id=span.trace_id,
        span_id=span.span_id,
        name=f"chat {span.model}",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=end - 1_500_000_000,
        end_time_unix_nano=end,
        attributes=_key_values(_span_attributes(span)),
        status=Status(code=Status.STATUS_CODE_ERROR if span.failed == "status" else 0),
    )


def protobuf_request(spans: list[GenAiSpan], others: list[Span] = ()) -> bytes:
    """The spans as an OTLP request in protobuf; ``others`` (spans of no GenAI call) beside
    them, under the first resource."""
    request = ExportTraceServiceRequest()
    for key, group in _grouped(spans):
        resource_spans = ResourceSpans()
        resource_spans.resource.attributes.extend(_key_values(list(key)))
        scope = resource_spans.scope_spans.add()
        scope.scope.name = "testkit"
        scope.spans.extend(protobuf_span(span) for span in group)
        request.resource_spans.append(resource_spans)
    if others:
        if not request.resource_spans:
            request.resource_spans.add().scope_spans.add()
        request.resource_spans[0].scope_spans[0].spans.extend(others)
    return request.SerializeToString()


# --- JSON, as the OTLP specification encodes it: hex ids, lowerCamelCase, enums as
# integers, 64-bit integers as decimal strings or as numbers


def _json_value(value: Any, int_as_string: bool) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value) if int_as_string else value}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": value}


def _json_attributes(pairs: list[tuple[str, Any]], int_as_string: bool) -> list[dict]:
    return [{"key": key, "value": _json_value(value, int_as_string)} for key, value in pairs]


def json_request(spans: list[GenAiSpan], *, int_as_string: bool = True) -> dict[str, Any]:
    def number(value: int) -> str | int:
        return str(value) if int_as_string else value

    resource_spans = []
    for key, group in _grouped(spans):
        json_spans = []
        for span in group:
            end = _nanos(span.end)
            json_span = {
                "traceId": span.trace_id.hex(),
                "spanId": span.span_id.hex(),
                "name": f"chat {span.model}",
                "kind": 3,
                "startTimeUnixNano": number(end - 1_500_000_000),
                "endTimeUnixNano": number(end),
                "attributes": _json_attributes(_span_attributes(span), int_as_string),
                "status": {"code": 2} if span.failed == "status" else {},
            }
            json_spans.append(json_span)
        resource_spans.append(
            {
                "resource": {"attributes": _json_attributes(list(key), int_as_string)},
                "scopeSpans": [{"scope": {"name": "testkit"}, "spans": json_spans}],
            }
        )
    return {"resourceSpans": resource_spans}


# --- strategies

_ids = st.integers(1, 6)
_names = st.sampled_from([None, "Ann", "Bob"])

genai_spans = st.builds(
    GenAiSpan,
    # A few of each id, so that the same span (or another with its ids) is drawn again.
    trace_id=_ids.map(lambda n: bytes([n]) * 16),
    span_id=_ids.map(lambda n: bytes([0xA0 + n]) * 8),
    org=orgs,
    end=times,
    model=st.sampled_from(["m1", "m2", "m3"]),
    input_tokens=st.integers(0, 5000),
    output_tokens=st.integers(0, 5000),
    service=st.sampled_from(["chat-service", "gateway", None]),
    org_on_resource=st.booleans(),
    response_model=st.booleans(),
    older_names=st.booleans(),
    agent=st.one_of(st.none(), st.tuples(st.sampled_from(["a1", "a2"]), _names)),
    user=st.tuples(st.sampled_from(["enduser.id", "user.id"]), st.sampled_from(["u1", "u2"])),
    failed=st.sampled_from([None, None, "status", "error.type"]),
).flatmap(
    lambda span: st.builds(
        lambda cached: replace(span, cached_tokens=cached),
        st.none() | st.integers(0, span.input_tokens),
    )
)
