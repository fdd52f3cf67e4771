"""POST /events: CloudEvents in, exactly once (DESIGN §5)."""

from datetime import UTC, datetime

from litestar import Request, post
from litestar.di import NamedDependency
from psycopg_pool import AsyncConnectionPool

from api.auth import requires
from api.ingest import IngestResult, ingest
from api.keys import Scope
from api.openapi import IngestOperation
from api.parsing import (
    SHAPE_OF_MEDIA_TYPE,
    InvalidEvents,
    MalformedBody,
    TooManyEvents,
    parse_events,
)
from api.problems import ErrorItem, Problem, problem_responses

MAX_BODY_BYTES = 10 * 1024 * 1024


@post(
    "/events",
    guards=[requires(Scope.INGEST)],
    request_max_body_size=MAX_BODY_BYTES,
    status_code=200,
    tags=["ingest"],
    summary="Ingest a batch of CloudEvents",
    description=(
        "A CloudEvents 1.0 JSON batch (application/cloudevents-batch+json or an array as "
        "application/json) or one structured event (application/cloudevents+json). At most "
        "10,000 events and 10 MiB. The batch is one transaction: 200 means every event is "
        "stored; any invalid event gives 422 and stores nothing. Events already stored "
        "(same subject, source and id) are counted in `duplicates` and not stored again."
    ),
    responses=problem_responses(400, 401, 403, 413, 415, 422, 429, 503),
    operation_class=IngestOperation,
)
async def post_events(request: Request, pool: NamedDependency[AsyncConnectionPool]) -> IngestResult:
    media_type, _ = request.content_type
    shape = SHAPE_OF_MEDIA_TYPE.get(media_type.lower())
    if shape is None:
        raise Problem(415, f"Content-Type must be one of {', '.join(SHAPE_OF_MEDIA_TYPE)}, "
                           f"not {media_type or 'missing'}")  # fmt: skip
    body = await request.body()
    try:
        events = parse_events(body, shape, datetime.now(UTC))
    except MalformedBody as error:
        raise Problem(400, str(error)) from None
    except TooManyEvents as error:
        raise Problem(413, str(error)) from None
    except InvalidEvents as error:
        errors = [ErrorItem(index=e.index, field=e.field, message=e.message) for e in error.errors]
        raise Problem(422, str(error), errors=errors) from None
    async with pool.connection() as conn:
        return await ingest(conn, events)
