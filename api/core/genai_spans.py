"""OpenTelemetry spans that follow the GenAI semantic conventions, as LLM calls (DESIGN §12).

Pure: no I/O, the clock is in ``Accepting``. A span counts if it has
``gen_ai.operation.name`` or any ``gen_ai.usage.*`` attribute; every other span is no LLM
call and is passed over. A span that counts becomes an ``llm.call`` event checked as
POST /events checks one, or is refused with the reason, named by its span id.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status

from api.core.events import (
    MAX_TEXT_LENGTH,
    MAX_TOKENS,
    SLUG,
    EventTime,
    Identity,
    LlmCall,
    LlmCallEvent,
    is_slug,
)
from api.core.parsing import MAX_CLOCK_SKEW, Accepting
from api.core.timestamps import utc_iso

ORG = "usage.org"
SERVICE_NAME = "service.name"
# What the SDKs name a service that did not say its name (the resource semantic conventions).
UNKNOWN_SERVICE = "unknown_service"
OPERATION = "gen_ai.operation.name"
USAGE_PREFIX = "gen_ai.usage."
RESPONSE_MODEL = "gen_ai.response.model"
REQUEST_MODEL = "gen_ai.request.model"
# Each count's attribute, then the older name read where the newer is absent.
INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT_TOKENS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
CACHED_TOKENS = ("gen_ai.usage.cache_read.input_tokens",)
AGENT_ID = "gen_ai.agent.id"
AGENT_NAME = "gen_ai.agent.name"
USER_IDS = ("enduser.id", "user.id")
ERROR_TYPE = "error.type"

_EPOCH = EventTime(1970, 1, 1, tzinfo=UTC)
_TRACE_ID_BYTES = 16
_SPAN_ID_BYTES = 8

Attributes = Mapping[str, AnyValue]


@dataclass(frozen=True, slots=True)
class RefusedSpan:
    span_id: str  # in hex, as the trace's viewers show it
    reason: str


@dataclass(frozen=True, slots=True)
class Mapped:
    """A request's GenAI spans: the LLM calls of the valid ones, and the others refused."""

    calls: list[LlmCallEvent]
    refused: list[RefusedSpan]


class _Refused(Exception):
    pass


def attributes(pairs: Sequence[KeyValue]) -> dict[str, AnyValue]:
    """A span's or resource's attributes by key (the first of a key sent twice)."""
    return {pair.key: pair.value for pair in reversed(pairs)}


def counts(keys: Iterable[str]) -> bool:
    """Whether a span of these attribute keys is an LLM call to count (the module's
    docstring)."""
    return any(key == OPERATION or key.startswith(USAGE_PREFIX) for key in keys)


def genai_span_count(resource_spans: Iterable[ResourceSpans]) -> int:
    """How many spans count, from their attributes' keys alone: far cheaper than mapping
    them, so that a request of too many is refused before that work."""
    return sum(
        counts(pair.key for pair in span.attributes)
        for resource_span in resource_spans
        for scope_span in resource_span.scope_spans
        for span in scope_span.spans
    )


def llm_calls(resource_spans: Iterable[ResourceSpans], accepting: Accepting) -> Mapped:
    """The LLM calls of every GenAI span, in the order sent, and the spans refused."""
    calls: list[LlmCallEvent] = []
    refused: list[RefusedSpan] = []
    for resource_span in resource_spans:
        resource = attributes(resource_span.resource.attributes)
        for scope_span in resource_span.scope_spans:
            for span in scope_span.spans:
                span_attributes = attributes(span.attributes)
                if not counts(span_attributes):
                    continue
                try:
                    calls.append(_llm_call(span, span_attributes, resource, accepting))
                except _Refused as refusal:
                    refused.append(RefusedSpan(span.span_id.hex(), str(refusal)))
    return Mapped(calls, refused)


def _llm_call(
    span: Span, span_attributes: Attributes, resource: Attributes, accepting: Accepting
) -> LlmCallEvent:
    input_tokens = _tokens(span_attributes, INPUT_TOKENS)
    cached_tokens = _tokens(span_attributes, CACHED_TOKENS)
    if cached_tokens > input_tokens:
        raise _Refused(
            f"{CACHED_TOKENS[0]} ({cached_tokens:,}) must not exceed the input tokens "
            f"({input_tokens:,}), which include them"
        )
    return LlmCallEvent(
        specversion="1.0",
        id=f"{_span_key(span.trace_id, _TRACE_ID_BYTES, 'trace_id')}-"
        f"{_span_key(span.span_id, _SPAN_ID_BYTES, 'span_id')}",
        source=_source(resource),
        subject=_org(span_attributes, resource),
        time=_end_time(span, accepting),
        data=LlmCall(
            identity=_identity(span_attributes, resource),
            model=_model(span_attributes),
            input_tokens=input_tokens,
            cached_tokens=cached_tokens,
            output_tokens=_tokens(span_attributes, OUTPUT_TOKENS),
            succeeded=span.status.code != Status.STATUS_CODE_ERROR
            and ERROR_TYPE not in span_attributes,
        ),
    )


def _span_key(value: bytes, size: int, name: str) -> str:
    if len(value) != size or not any(value):
        raise _Refused(f"its {name} must be {size} bytes, not all zero")
    return value.hex()


def _end_time(span: Span, accepting: Accepting) -> EventTime:
    if not span.end_time_unix_nano:
        raise _Refused("it has no end time (end_time_unix_nano)")
    # Microseconds, truncated: PostgreSQL holds no finer.
    end = _EPOCH + timedelta(microseconds=span.end_time_unix_nano // 1000)
    if end > accepting.now + MAX_CLOCK_SKEW:
        raise _Refused(
            f"its end time {utc_iso(end)} is more than 5 minutes ahead of the server clock "
            f"({utc_iso(accepting.now)})"
        )
    if accepting.earliest is not None and end < accepting.earliest:
        raise _Refused(f"its end time {utc_iso(end)} {accepting.too_old}")
    return end


def _org(span_attributes: Attributes, resource: Attributes) -> str:
    org = _text_of(span_attributes, resource, ORG)
    if org is None:
        raise _Refused(f"{ORG} is missing (an attribute of the span or of its resource)")
    if not is_slug(org):
        raise _Refused(f"{ORG} must be an organization slug matching {SLUG}, not {org!r}")
    return org


def _source(resource: Attributes) -> str:
    return _text_of({}, resource, SERVICE_NAME) or UNKNOWN_SERVICE


def _model(span_attributes: Attributes) -> str:
    model = _text_of(span_attributes, {}, RESPONSE_MODEL) or _text_of(
        span_attributes, {}, REQUEST_MODEL
    )
    if model is None:
        raise _Refused(f"it names no model ({RESPONSE_MODEL} or {REQUEST_MODEL})")
    return model


def _identity(span_attributes: Attributes, resource: Attributes) -> Identity:
    agent = _text_of(span_attributes, resource, AGENT_ID)
    if agent is not None:
        return Identity(
            kind="agent", id=agent, name=_text_of(span_attributes, resource, AGENT_NAME)
        )
    for key in USER_IDS:
        user = _text_of(span_attributes, resource, key)
        if user is not None:
            return Identity(kind="user", id=user)
    raise _Refused(f"it names no identity ({AGENT_ID}, or {' or '.join(USER_IDS)} for a user)")


def _text_of(span_attributes: Attributes, resource: Attributes, key: str) -> str | None:
    """The attribute ``key`` of the span, else of its resource, as text (an integer id as
    its digits); None when neither has it."""
    value = span_attributes.get(key) or resource.get(key)
    if value is None:
        return None
    kind = value.WhichOneof("value")
    if kind == "string_value":
        text = value.string_value
    elif kind == "int_value":
        text = str(value.int_value)
    else:
        raise _Refused(f"{key} must be a string, not {kind or 'empty'}")
    if not 1 <= len(text) <= MAX_TEXT_LENGTH or "\x00" in text:
        raise _Refused(f"{key} must be 1 to {MAX_TEXT_LENGTH} characters, without NUL characters")
    return text


def _tokens(span_attributes: Attributes, keys: tuple[str, ...]) -> int:
    """The first of ``keys`` the span has, as a count of tokens; 0 when it has none (a call
    whose usage was not recorded is still a call)."""
    for key in keys:
        value = span_attributes.get(key)
        if value is None:
            continue
        kind = value.WhichOneof("value")
        if kind == "int_value":
            count = value.int_value
        elif kind == "double_value" and value.double_value.is_integer():
            count = int(value.double_value)
        else:
            raise _Refused(f"{key} must be an integer")
        if not 0 <= count <= MAX_TOKENS:
            raise _Refused(f"{key} must be from 0 to {MAX_TOKENS:,}, not {count:,}")
        return count
    return 0
