"""What Litestar cannot infer for the OpenAPI document: the CloudEvents that POST /events
reads from its raw body, and the CSV that every usage route can answer with."""

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from api.events import Event
from api.parsing import SHAPE_OF_MEDIA_TYPE, BodyShape

CSV = "text/csv"

OPENAPI_CONFIG = OpenAPIConfig(
    title="Usage",
    version="1.0.0",
    description="Metering service of the agent platform: ingest and usage reads.",
)


def _inline(schema: Any, components: dict[str, Any]) -> Any:
    """``schema`` with every ``$ref`` replaced by the component it names. Litestar rebuilds
    the document's components from its own types, so these schemas must stand alone."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline(components[schema["$ref"].rsplit("/", 1)[1]], components)
        return {key: _inline(value, components) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline(item, components) for item in schema]
    return schema


def _event_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    (event, batch), components = msgspec.json.schema_components([Event, list[Event]])
    return _inline(event, components), _inline(batch, components)


_EVENT, _BATCH = _event_schemas()
_SCHEMA_OF_SHAPE = {
    BodyShape.BATCH: _BATCH,
    BodyShape.SINGLE: _EVENT,
    BodyShape.EITHER: {"oneOf": [_BATCH, _EVENT]},
}


@dataclass
class IngestOperation(Operation):
    """POST /events: the body is parsed by hand (size and count limits come first), so its
    three accepted shapes are declared here."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="CloudEvents 1.0: a batch of at most 10,000 events, or one event.",
            content={
                media_type: OpenAPIMediaType(schema=_SCHEMA_OF_SHAPE[shape])  # type: ignore[arg-type]
                for media_type, shape in SHAPE_OF_MEDIA_TYPE.items()
            },
        )


@dataclass
class UsageOperation(Operation):
    """A usage route: JSON, or its series as CSV with Accept: text/csv or format=csv."""

    def __post_init__(self) -> None:
        if self.responses and "200" in self.responses:
            ok = self.responses["200"]
            ok.content = {  # type: ignore[union-attr]
                **(ok.content or {}),  # type: ignore[union-attr]
                CSV: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
            }
