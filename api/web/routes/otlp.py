"""POST /v1/traces: OpenTelemetry GenAI spans in, as LLM calls, exactly once
(docs/sending-events.md, "From OpenTelemetry").

The same key, limits, backpressure and write path as POST /events; OTLP's own answer, in the
request's encoding, with the spans refused in ``partial_success``.
"""

from datetime import UTC, datetime

from litestar import Request, Response, post
from litestar.di import NamedDependency

from api.core import otlp
from api.core.genai_spans import genai_span_count, llm_calls
from api.core.parsing import MAX_EVENTS, Accepting
from api.storage.keys import Scope
from api.storage.writer import Writer
from api.web.auth import requires
from api.web.openapi import OtlpOperation
from api.web.problems import Problem, problem_responses
from api.web.routes.ingest import MAX_BODY_BYTES, read_body, refuse_while_backed_up


@post(
    "/v1/traces",
    guards=[requires(Scope.INGEST)],
    request_max_body_size=MAX_BODY_BYTES,
    status_code=200,
    tags=["ingest"],
    summary="Ingest OpenTelemetry GenAI spans (OTLP/HTTP)",
    description=(
        "An OTLP/HTTP trace export, in protobuf (application/x-protobuf) or OTLP's JSON "
        "(application/json), gzip allowed, at most 10 MiB and 10,000 GenAI spans. A span "
        "with gen_ai.operation.name or any gen_ai.usage.* attribute is an LLM call, stored as "
        "the llm.call event of POST /events would be (org from usage.org, id from the trace "
        "and span ids, exactly once); other spans are passed over. The answer is OTLP's "
        "ExportTraceServiceResponse in the request's encoding: partial_success counts the "
        "GenAI spans refused and names the first few, with the reason."
    ),
    responses=problem_responses(400, 401, 403, 413, 415, 429, 503),
    operation_class=OtlpOperation,
)
async def post_traces(
    request: Request, writer: NamedDependency[Writer], accept_days: NamedDependency[int]
) -> Response[bytes]:
    refuse_while_backed_up(request.app.state.folder.status, request.app.state.pending_limit)
    media_type = request.content_type[0].lower()
    if media_type not in otlp.MEDIA_TYPES:
        raise Problem(
            415,
            f"Content-Type must be one of {', '.join(otlp.MEDIA_TYPES)}, "
            f"not {media_type or 'missing'}",
        )
    body = await read_body(request)
    try:
        export = otlp.decode_request(body, media_type)
    except otlp.NotOtlp as error:
        raise Problem(400, str(error)) from None
    genai_spans = genai_span_count(export.resource_spans)
    if genai_spans > MAX_EVENTS:
        raise Problem(
            413,
            f"the request holds {genai_spans:,} GenAI spans; "
            f"at most {MAX_EVENTS:,} are taken at once",
        )
    mapped = llm_calls(export.resource_spans, Accepting.posted(datetime.now(UTC), accept_days))
    if mapped.calls:
        await writer.ingest(mapped.calls)
    return Response(otlp.encode_response(mapped.refused, media_type), media_type=media_type)
