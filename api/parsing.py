"""From a request body to validated events, or to the reasons it cannot be.

Pure: no I/O, the clock is a parameter. Every invalid event is reported, each with its
index in the batch, the field at fault and what is wrong with it.
"""

import enum
import re
from datetime import UTC, datetime, timedelta

import msgspec

from api.buckets import EPOCH
from api.events import EVENT_TYPES, SLUG_PATTERN, Event, LlmCallEvent

MAX_EVENTS = 10_000
MAX_CLOCK_SKEW = timedelta(minutes=5)


class BodyShape(enum.Enum):
    BATCH = "a JSON array of CloudEvents"
    SINGLE = "one CloudEvent as a JSON object"
    EITHER = "a JSON array of CloudEvents or one CloudEvent"


# What each accepted Content-Type of POST /events may hold.
SHAPE_OF_MEDIA_TYPE = {
    "application/cloudevents-batch+json": BodyShape.BATCH,
    "application/cloudevents+json": BodyShape.SINGLE,
    "application/json": BodyShape.EITHER,
}


class EventError(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    field: str | None
    message: str


class MalformedBody(Exception):
    """The body is not JSON of the expected shape: there are no events to speak of."""


class TooManyEvents(Exception):
    def __init__(self, count: int) -> None:
        super().__init__(f"the batch has {count:,} events; at most {MAX_EVENTS:,} are accepted")


class InvalidEvents(Exception):
    def __init__(self, errors: list[EventError]) -> None:
        super().__init__(f"{len(errors)} invalid event(s); nothing was stored")
        self.errors = errors


_event_decoder = msgspec.json.Decoder(Event)
_batch_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_JSON_WHITESPACE = b" \t\r\n"


def parse_events(body: bytes, shape: BodyShape, now: datetime) -> list[Event]:
    """Every event of the body, or an exception saying why the body is refused."""
    raw_events = _split(body, shape)
    if len(raw_events) > MAX_EVENTS:
        raise TooManyEvents(len(raw_events))
    events: list[Event] = []
    errors: list[EventError] = []
    for index, raw in enumerate(raw_events):
        try:
            event = _event_decoder.decode(raw)
        except msgspec.ValidationError as error:
            errors.append(_from_validation_error(index, str(error)))
            continue
        event_errors = _cross_field_errors(index, event, now)
        errors.extend(event_errors)
        if not event_errors:
            # In UTC: PostgreSQL refuses offsets beyond ±15:59 that RFC 3339 allows.
            events.append(msgspec.structs.replace(event, time=event.time.astimezone(UTC)))
    if errors:
        raise InvalidEvents(errors)
    return events


def _split(body: bytes, shape: BodyShape) -> list[msgspec.Raw]:
    first = body.lstrip(_JSON_WHITESPACE)[:1]
    is_array = first == b"["
    if (shape is BodyShape.BATCH and not is_array) or (shape is BodyShape.SINGLE and is_array):
        raise MalformedBody(f"the body must be {shape.value}")
    try:
        if is_array:
            return _batch_decoder.decode(body)
        single = msgspec.json.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise MalformedBody(f"the body is not valid JSON: {error}") from None
    if not isinstance(single, dict):
        raise MalformedBody(f"the body must be {shape.value}")
    return [msgspec.Raw(body)]


def _cross_field_errors(index: int, event: Event, now: datetime) -> list[EventError]:
    errors = []
    if event.time < EPOCH:
        errors.append(EventError(index=index, field="time", message="must not be before 1970"))
    if event.time > now + MAX_CLOCK_SKEW:
        errors.append(
            EventError(
                index=index,
                field="time",
                message=f"must be at most 5 minutes ahead of the server clock ({_iso(now)})",
            )
        )
    if isinstance(event, LlmCallEvent) and event.data.cached_tokens > event.data.input_tokens:
        errors.append(
            EventError(
                index=index,
                field="data.cached_tokens",
                message=f"must not exceed input_tokens ({event.data.input_tokens})",
            )
        )
    return errors


_LOCATED = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_INVALID_TAG = re.compile(r"^Invalid value '(?P<value>.*)'$", re.DOTALL)


def _from_validation_error(index: int, text: str) -> EventError:
    """msgspec's message, reworded where it speaks of regexes and tags, with a dotted path."""
    located = _LOCATED.match(text)
    assert located is not None  # the pattern matches any string
    message = located["message"]
    path = [part for part in re.split(r"[.\[\]]", located["path"] or "") if part]
    missing = _MISSING.match(message)
    if missing:
        path.append(missing["field"])
        message = "is required"
    field = ".".join(path) or None
    if "matching regex" in message:
        message = (
            f"must be an organization slug matching {SLUG_PATTERN}"
            if field == "subject"
            else "must not contain NUL characters"
        )
    invalid_tag = _INVALID_TAG.match(message)
    if invalid_tag and field == "type":
        message = f"unknown event type '{invalid_tag['value']}'; known: {', '.join(EVENT_TYPES)}"
    return EventError(index=index, field=field, message=message)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
