"""OTLP/HTTP trace bodies and answers, in protobuf or JSON (DESIGN §12), decoded with the
OpenTelemetry project's own message definitions (``opentelemetry-proto``). Pure: no I/O.

OTLP's JSON is protobuf's JSON mapping but for the trace and span ids, which are hex, not
base64: they are turned to base64 before protobuf's own JSON parser reads the rest.
"""

import base64
from typing import Any

import msgspec
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
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
        _prepare(document, ExportTraceServiceRequest.DESCRIPTOR)
        return json_format.ParseDict(
            document, ExportTraceServiceRequest(), ignore_unknown_fields=True
        )
    except msgspec.DecodeError as error:
        raise NotOtlp(f"the body is not JSON: {error}") from None
    except (json_format.ParseError, _NotTheMessage) as error:
        raise NotOtlp(f"the body is not an OTLP ExportTraceServiceRequest: {error}") from None
    except RecursionError:
        raise NotOtlp("the body is nested too deeply to be OTLP") from None


class _NotTheMessage(Exception):
    pass


# The bytes fields OTLP's JSON writes in hex (a span's and a link's ids); every other bytes
# field is base64, as protobuf's JSON mapping has it.
_HEX_FIELDS = {"trace_id", "span_id", "parent_span_id"}


def _prepare(document: dict[str, Any], message: Descriptor) -> None:
    """``document`` made ready for protobuf's JSON parser, as a ``message``: its hex ids in
    base64, and each message where one belongs an object (the parser would read a string
    there as an empty message, and take a body with no span in it for one with spans)."""
    for key, value in document.items():
        field = message.fields_by_camelcase_name.get(key) or message.fields_by_name.get(key)
        if field is None or value is None:
            continue  # unknown fields are passed over, as OTLP's receivers do
        items = value if field.is_repeated else [value]
        if not isinstance(items, list):
            raise _NotTheMessage(f"{key} must be a list")
        if field.message_type is not None:
            for item in items:
                if not isinstance(item, dict):
                    shape = "a list of objects" if field.is_repeated else "an object"
                    raise _NotTheMessage(f"{key} must be {shape} ({field.message_type.name})")
                _prepare(item, field.message_type)
        elif field.name in _HEX_FIELDS and isinstance(value, str):
            try:
                document[key] = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError:
                raise _NotTheMessage(f"{key} must be hex, not {value[:40]!r}") from None


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
