"""What Litestar cannot infer for the OpenAPI document: the CloudEvents that POST /events
reads from its raw body, the CSV that every usage route can answer with, and the
constraints on the filters' repeated values. And where it is served: under /schema, as JSON
and YAML, with the API reference (api/web/reference.py)."""

from dataclasses import dataclass
from pathlib import Path

import msgspec
from litestar import Litestar, Router
from litestar.enums import ParamType
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
)

from api.core.events import SLUG_PATTERN, Event, schema_hook
from api.core.filters import MAX_LENGTH, MAX_VALUES
from api.core.parsing import BATCH_MEDIA_TYPE
from api.web.problems import PROBLEM_JSON
from api.web.reference import ApiReference
from api.web.routes.page import SECURITY_HEADERS

CSV = "text/csv"

BEARER_KEY = "BearerKey"


def openapi_config(page_dir: Path) -> OpenAPIConfig:
    """The document, and where it is served (no key needed: api/web/auth.py): the API
    reference at /schema and /schema/swagger, the document at /schema/openapi.json and
    /schema/openapi.yaml (or .yml). Nothing else: Litestar's other pages load their scripts
    from CDNs. A new router per app, since Litestar registers the routes on it."""
    return OpenAPIConfig(
        title="Usage",
        version="1.0.0",
        description="Metering service of the agent platform: ingest and usage reads.",
        security=[{BEARER_KEY: []}],
        components=Components(
            security_schemes={
                BEARER_KEY: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="An API key: Authorization: Bearer <key>",
                )
            }
        ),
        # The reference first: Litestar serves its first plugin at /schema itself.
        render_plugins=[ApiReference(page_dir), JsonRenderPlugin(), YamlRenderPlugin()],
        openapi_router=Router(
            "/schema", route_handlers=[], include_in_schema=False, response_headers=SECURITY_HEADERS
        ),
    )


PUBLIC_SECURITY: list[dict[str, list[str]]] = [{}]  # a route anyone may call


(_BATCH,), _EVENT_COMPONENTS = msgspec.json.schema_components(
    [list[Event]], schema_hook=schema_hook, ref_template="#/components/schemas/{name}"
)


def add_event_schemas(app: Litestar) -> None:
    """Puts the CloudEvents' schemas among the document's components: Litestar builds
    those from the types of its own handlers' signatures, and POST /events reads its body
    by hand. The document is built once and kept, so this lasts."""
    components = app.openapi_schema.components
    assert components.schemas is not None
    assert not components.schemas.keys() & _EVENT_COMPONENTS.keys(), "a component name clash"
    components.schemas.update(_EVENT_COMPONENTS)  # type: ignore[arg-type]


def add_transport_refusals(app: Litestar) -> None:
    """Declares on every operation the refusal the HTTP server itself may answer before any
    route sees the request (api.web.http_server): 431 for a request line and headers past
    their bound. A URL is part of it: a usage read with many long filter values can reach
    it."""
    problem = Reference(ref="#/components/schemas/ProblemDetails")
    refusal = OpenAPIResponse(
        description="Request header fields too large",
        content={PROBLEM_JSON: OpenAPIMediaType(schema=problem)},
    )
    for path in (app.openapi_schema.paths or {}).values():
        for method in ("get", "post", "delete", "put", "patch", "head", "options"):
            operation = getattr(path, method, None)
            if operation is not None and operation.responses is not None:
                operation.responses.setdefault("431", refusal)


@dataclass
class IngestOperation(Operation):
    """POST /events: the body is parsed by hand (size and count limits come first), so it
    is declared here. As a batch only: the other forms the route takes (one structured
    event, plain JSON, binary content mode) are in its description, because generated
    clients cannot take a body of several media types (openapi-python-client 0.29 writes
    a module that fails to import)."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="CloudEvents 1.0: a batch of at most 10,000 events.",
            content={BATCH_MEDIA_TYPE: OpenAPIMediaType(schema=_BATCH)},  # type: ignore[arg-type]
        )


_OTLP_PROTOBUF = OpenAPIMediaType(
    schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
)


@dataclass
class OtlpOperation(Operation):
    """POST /v1/traces: OTLP's messages in protobuf or OTLP's JSON, read and written by
    hand. The JSON is described as far as the route reads it; the rest is OTLP's."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="An OTLP ExportTraceServiceRequest.",
            content={
                "application/x-protobuf": _OTLP_PROTOBUF,
                "application/json": OpenAPIMediaType(schema=_OTLP_REQUEST),
            },
        )
        assert self.responses is not None
        self.responses["200"] = OpenAPIResponse(
            description="An OTLP ExportTraceServiceResponse, in the request's encoding",
            content={
                "application/x-protobuf": _OTLP_PROTOBUF,
                "application/json": OpenAPIMediaType(schema=_OTLP_RESPONSE),
            },
        )


_OTLP_REQUEST = Schema(
    type=OpenAPIType.OBJECT,
    properties={
        # null: protobuf's JSON mapping reads it as the field's default (no spans).
        "resourceSpans": Schema(
            type=[OpenAPIType.ARRAY, OpenAPIType.NULL],
            items=Schema(type=OpenAPIType.OBJECT),
            description="OTLP's ResourceSpans (trace and span ids in hex)",
        )
    },
)
_OTLP_RESPONSE = Schema(
    type=OpenAPIType.OBJECT,
    properties={
        "partialSuccess": Schema(
            type=OpenAPIType.OBJECT,
            description="Present when GenAI spans were refused",
            properties={
                "rejectedSpans": Schema(
                    type=OpenAPIType.STRING,
                    pattern=r"^[0-9]+$",
                    description="How many GenAI spans were refused (an int64, as OTLP's JSON "
                    "writes it)",
                ),
                "errorMessage": Schema(
                    type=OpenAPIType.STRING,
                    description="The first few refused: span id and reason",
                ),
            },
        )
    },
)


@dataclass
class UsageOperation(Operation):
    """A usage route: JSON, or its series as CSV with Accept: text/csv or format=csv. Its
    optional query parameters are plain values (a query string cannot send null), and
    ``org`` is a slug."""

    def __post_init__(self) -> None:
        if self.responses and "200" in self.responses:
            ok = self.responses["200"]
            ok.content = {  # type: ignore[union-attr]
                **(ok.content or {}),  # type: ignore[union-attr]
                CSV: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
            }
        for parameter in self.parameters or []:
            schema = parameter.schema  # type: ignore[union-attr]
            if isinstance(schema, Schema) and schema.one_of:
                (parameter.schema,) = [  # type: ignore[union-attr]
                    option
                    for option in schema.one_of
                    if not (isinstance(option, Schema) and option.type == OpenAPIType.NULL)
                ]
                for name in ("description", "enum", "format"):
                    setattr(parameter.schema, name, getattr(schema, name, None))
            if parameter.name in _FILTER_VALUES and parameter.param_in == ParamType.QUERY:
                parameter.schema = Schema(
                    type=OpenAPIType.ARRAY,
                    description=parameter.description,
                    max_items=MAX_VALUES,
                    items=_FILTER_VALUES[parameter.name],
                )
            elif parameter.name == "org" and isinstance(parameter.schema, Schema):  # type: ignore[union-attr]
                parameter.schema.pattern = SLUG_PATTERN  # type: ignore[union-attr]


def _filter_value(pattern: str) -> Schema:
    return Schema(type=OpenAPIType.STRING, min_length=1, max_length=MAX_LENGTH, pattern=pattern)


# Any printable text; identities as kind:id; org slugs.
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
_FILTER_VALUES = {
    "model": _filter_value(_PRINTABLE),
    "identity": _filter_value(r"^(agent|user):[^\x00-\x1f\x7f]+$"),
    "agent": _filter_value(_PRINTABLE),
    "org": _filter_value(SLUG_PATTERN),
}
