"""OTLP/HTTP trace bodies and answers, in protobuf or JSON (DESIGN §12), decoded with the
OpenTelemetry project's own message definitions (``opentelemetry-proto``). Pure: no I/O.

OTLP's JSON is protobuf's JSON mapping but for the trace and span ids, which are hex, not
base64: they are turned to base64 before protobuf's own JSON parser reads the rest.
"""

import base64
from typing import Any

import msgspec
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from api.core.genai_spans import RefusedSpan

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MEDIA_TYPES = (PROTOBUF, JSON)
# How many refused spans the answer names (it counts them all).
NAMED_REFUSALS = 5


class NotOtlp(Exception):
    """The body is not an OTLP trace export request in its media type."""


def decode_request(body: bytes, media_type: str) -> ExportTraceServiceRequest:
    if media_type == PROTOBUF:
        try:
            return ExportTraceServiceRequest.FromString(body)
        except DecodeError as error:
            raise NotOtlp(f"the body is not an OTLP ExportTraceServiceRequest: {error}") from None
    try:
        document = msgspec.json.decode(body)
        if not isinstance(document, dict):
            raise NotOtlp("the body must be a JSON object (an OTLP ExportTraceServiceRequest)")
        _ids_to_base64(document)
        return json_format.ParseDict(
            document, ExportTraceServiceRequest(), ignore_unknown_fields=True
        )
    except msgspec.DecodeError as error:
        raise NotOtlp(f"the body is not JSON: {error}") from None
    except (json_format.ParseError, _BadId) as error:
        raise NotOtlp(f"the body is not an OTLP ExportTraceServiceRequest: {error}") from None
    except RecursionError:
        raise NotOtlp("the body is nested too deeply to be OTLP") from None


class _BadId(Exception):
    pass


# The bytes fields of a span (and of its links) that OTLP's JSON writes in hex, by both the
# names protobuf's JSON parser reads.
_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _ids_to_base64(document: dict[str, Any]) -> None:
    for resource_spans in _objects(document, "resourceSpans", "resource_spans"):
        for scope_spans in _objects(resource_spans, "scopeSpans", "scope_spans"):
            for span in _objects(scope_spans, "spans"):
                _hex_ids_to_base64(span)
                for link in _objects(span, "links"):
                    _hex_ids_to_base64(link)


def _objects(parent: dict[str, Any], *names: str) -> list[dict[str, Any]]:
    """The objects of the list ``parent`` holds under any of ``names`` (what is not a list
    of objects is left for protobuf's parser to refuse)."""
    found = []
    for name in names:
        value = parent.get(name)
        if isinstance(value, list):
            found += [item for item in value if isinstance(item, dict)]
    return found


def _hex_ids_to_base64(holder: dict[str, Any]) -> None:
    for name in _ID_FIELDS:
        value = holder.get(name)
        if isinstance(value, str):
            try:
                holder[name] = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError:
                raise _BadId(f"{name} must be hex, not {value[:40]!r}") from None


def encode_response(refused: list[RefusedSpan], media_type: str) -> bytes:
    """OTLP's answer: empty when every span was taken; else ``partial_success`` counts the
    spans refused and names the first few, with their reasons."""
    response = ExportTraceServiceResponse()
    if refused:
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(
                rejected_spans=len(refused), error_message=refusal_message(refused)
            )
        )
    if media_type == PROTOBUF:
        return response.SerializeToString()
    return msgspec.json.encode(json_format.MessageToDict(response))


def refusal_message(refused: list[RefusedSpan]) -> str:
    named = "; ".join(f"span {span.span_id}: {span.reason}" for span in refused[:NAMED_REFUSALS])
    more = len(refused) - NAMED_REFUSALS
    spans = "span" if len(refused) == 1 else "spans"
    tail = f"; and {more:,} more" if more > 0 else ""
    return f"{len(refused):,} GenAI {spans} refused: {named}{tail}"
