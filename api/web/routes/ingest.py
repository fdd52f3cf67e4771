"""POST /events: CloudEvents in, exactly once (docs/sending-events.md)."""

from datetime import UTC, datetime

from litestar import Request, post
from litestar.di import NamedDependency

from api.core.encodings import GZIP, IDENTITY, BadEncoding, BodyTooLarge, gunzip
from api.core.parsing import (
    KIND_OF_MEDIA_TYPE,
    Accepting,
    InvalidEvents,
    MalformedBody,
    TooManyEvents,
    parse_binary_event,
    parse_events,
)
from api.storage.folder import FolderStatus
from api.storage.ingest import IngestResult
from api.storage.keys import Scope
from api.storage.writer import Writer
from api.web.auth import requires
from api.web.openapi import IngestOperation
from api.web.problems import ErrorItem, Problem, problem_responses

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
        "stored; any invalid event gives 422 and stores nothing. An event whose subject, "
        "source and id were stored before is counted in `duplicates` and not stored again, "
        "whatever its time and data: the first stored wins. "
        "An event more than USAGE_ACCEPT_DAYS (default 35) days old is refused (422 on "
        "`time`): older events are loaded with `usage-api import`. "
        "One event may also come in binary content mode: its attributes in ce-* headers, "
        "its data as an application/json body. Content-Encoding: gzip is accepted."
    ),
    responses=problem_responses(400, 401, 403, 413, 415, 422, 429, 503),
    operation_class=IngestOperation,
)
async def post_events(
    request: Request, writer: NamedDependency[Writer], accept_days: NamedDependency[int]
) -> IngestResult:
    refuse_while_backed_up(request.app.state.folder.status, request.app.state.pending_limit)
    media_type, options = request.content_type
    media_type = media_type.lower()
    charset = options.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise Problem(415, f"the body must be UTF-8, not charset {charset}")
    body = await read_body(request)
    accepting = Accepting.posted(datetime.now(UTC), accept_days)
    try:
        if "ce-specversion" in request.headers and not media_type.startswith(_STRUCTURED):
            if media_type != "application/json":
                message = "an event in binary content mode (ce-* headers) carries "
                raise Problem(415, f"{message}application/json data, not {media_type or 'none'}")
            events = parse_binary_event(request.headers, media_type, body, accepting)
        else:
            kind = KIND_OF_MEDIA_TYPE.get(media_type)
            if kind is None:
                raise Problem(
                    415,
                    f"Content-Type must be one of {', '.join(KIND_OF_MEDIA_TYPE)}, "
                    f"not {media_type or 'missing'}",
                )
            events = parse_events(body, kind, accepting)
    except MalformedBody as error:
        raise Problem(400, str(error)) from None
    except TooManyEvents as error:
        raise Problem(413, str(error)) from None
    except InvalidEvents as error:
        errors = [ErrorItem(index=e.index, field=e.field, message=e.message) for e in error.errors]
        raise Problem(422, str(error), errors=errors) from None
    return await writer.ingest(events)


_STRUCTURED = "application/cloudevents"
_BACKED_UP_RETRY_SECONDS = 1


def refuse_while_backed_up(folder: FolderStatus, pending_limit: int) -> None:
    """503 while more events wait to be folded than the bound (a queue of exactly the bound
    still takes batches): reads add the queue to the rollups, so a queue without bound would
    slow every read instead."""
    queue = folder.queue
    if queue is not None and queue.rows > pending_limit:
        raise Problem(
            503,
            f"{queue.rows:,} events wait to be folded into the rollups (USAGE_PENDING_LIMIT "
            f"is {pending_limit:,}); retry in {_BACKED_UP_RETRY_SECONDS} s",
            headers={"Retry-After": str(_BACKED_UP_RETRY_SECONDS)},
        )


async def read_body(request: Request) -> bytes:
    """The body, inflated if its Content-Encoding is gzip; the size limit holds either way."""
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in IDENTITY:
        return await request.body()
    if encoding not in GZIP:
        raise Problem(415, f"Content-Encoding must be gzip or identity, not {encoding}")
    try:
        return await gunzip(request.stream(), MAX_BODY_BYTES)
    except BodyTooLarge:
        raise Problem(413, f"the body inflates to more than {MAX_BODY_BYTES:,} bytes") from None
    except BadEncoding as error:
        raise Problem(400, str(error)) from None
