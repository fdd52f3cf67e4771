"""From a request body to validated events, or to the reasons it cannot be.

Pure: no I/O, the clock is a parameter. Every invalid event is reported, each with its
index in the batch, the field at fault and what is wrong with it.
"""

import enum
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote

import msgspec

from api.core.events import EVENT_TYPES, SLUG, Envelope, Event, LlmCall, decode_hook
from api.core.timestamps import utc_iso

MAX_EVENTS = 10_000
MAX_CLOCK_SKEW = timedelta(minutes=5)


class BodyKind(enum.Enum):
    BATCH = "a JSON array of CloudEvents"
    SINGLE = "one CloudEvent as a JSON object"
    EITHER = "a JSON array of CloudEvents or one CloudEvent"


BATCH_MEDIA_TYPE = "application/cloudevents-batch+json"
# What each accepted Content-Type of POST /events may hold.
KIND_OF_MEDIA_TYPE = {
    BATCH_MEDIA_TYPE: BodyKind.BATCH,
    "application/cloudevents+json": BodyKind.SINGLE,
    "application/json": BodyKind.EITHER,
}


@dataclass(frozen=True, slots=True)
class Accepting:
    """The times an event may have: from ``earliest`` (None: any age) to 5 minutes past the
    server clock ``now``; ``too_old`` says why an earlier one is refused and what to do."""

    now: datetime
    earliest: datetime | None = None
    too_old: str = ""

    @classmethod
    def posted(cls, now: datetime, days: int) -> "Accepting":
        """POST /events: the last ``days`` days (USAGE_ACCEPT_DAYS); older events are
        figures customers have seen, loaded on purpose by `usage-api import`."""
        earliest = now - timedelta(days=days)
        return cls(
            now,
            earliest,
            f"is more than {days} days old (before {utc_iso(earliest)}): POST /events accepts "
            f"the last {days} days (USAGE_ACCEPT_DAYS); load older events with "
            "`usage-api import`",
        )

    @classmethod
    def imported(cls, now: datetime, retention_days: int) -> "Accepting":
        """`usage-api import`: any age the raw tables keep (USAGE_RAW_RETENTION_DAYS)."""
        earliest = now - timedelta(days=retention_days)
        return cls(
            now,
            earliest,
            f"is older than the raw retention of {retention_days} days (before "
            f"{utc_iso(earliest)}, USAGE_RAW_RETENTION_DAYS)",
        )


class EventError(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    field: str | None
    message: str


class MalformedBody(Exception):
    """The body is not JSON of the expected kind: there are no events to speak of."""


class TooManyEvents(Exception):
    def __init__(self, count: int) -> None:
        super().__init__(f"the batch has {count:,} events; at most {MAX_EVENTS:,} are accepted")


class InvalidEvents(Exception):
    def __init__(self, errors: list[EventError]) -> None:
        # An event may have several errors: the detail counts events, `errors` lists all.
        count = len({error.index for error in errors})
        events = "event" if count == 1 else "events"
        super().__init__(f"{count:,} invalid {events}; nothing was stored")
        self.errors = errors


_event_decoder = msgspec.json.Decoder(Event, dec_hook=decode_hook)
_events_decoder = msgspec.json.Decoder(list[Event], dec_hook=decode_hook)
_batch_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_raw_decoder = msgspec.json.Decoder(msgspec.Raw)
_JSON_WHITESPACE = b" \t\r\n"
_CLASS_OF_TYPE = {cls.__struct_config__.tag: cls for cls in Event.__args__}


def parse_events(body: bytes, kind: BodyKind, accepting: Accepting) -> list[Event]:
    """Every event of the body, or an exception saying why the body is refused."""
    raw_events = _split(body, kind)
    if len(raw_events) > MAX_EVENTS:
        raise TooManyEvents(len(raw_events))
    events = _all_valid(body, accepting)
    if events is not None:
        return events
    events, errors = validate(raw_events, accepting, _has_duplicate_keys(body))
    if errors:
        raise InvalidEvents(errors)
    return events


def _all_valid(body: bytes, accepting: Accepting) -> list[Event] | None:
    """The events of a (split, UTF-8) body in one pass, if it is plainly valid: every event
    decodes, passes the cross-field checks, and no key can be there twice. None when any of
    that fails, or a string may hold NUL: ``validate`` then finds each error the slow way,
    event by event.

    A key appears twice only if the body has more keys than its events have fields: a key
    ends with a quote and a colon, found by ``_key_ends`` counting at least every key, and
    each decoded field that holds a value was one key of the body."""
    is_array = body.lstrip(_JSON_WHITESPACE)[:1] == b"["
    try:
        events = _events_decoder.decode(body) if is_array else [_event_decoder.decode(body)]
    except (msgspec.DecodeError, RecursionError):  # a ValidationError is a DecodeError
        return None
    if _ESCAPED_NUL in body or sum(map(_present_keys, events)) != _key_ends(body):
        return None
    for index, event in enumerate(events):
        if _cross_field_errors(index, event.time, event.data, accepting):
            return None
    return events


def _key_ends(body: bytes) -> int:
    """At least as many as the keys of the (valid JSON) body: each key's closing quote is
    followed by its colon, maybe after whitespace; inside a string a quote is escaped, which
    can only add to the count."""
    if any(space in body for space in _QUOTE_SPACES):
        return len(_KEY_END.findall(body))
    return body.count(b'":')


_QUOTE_SPACES = [b'"' + bytes([space]) for space in _JSON_WHITESPACE]
_KEY_END = re.compile(rb'"[ \t\r\n]*:')


def _present_keys(value: msgspec.Struct) -> int:
    """How many keys the JSON object decoded into ``value`` held at least: its tag, every
    required field, every optional one holding a value, and the keys of its nested objects
    (a key sent as null is not counted, which can only make the total smaller)."""
    required, optional, nested = _shape(type(value))
    present = required
    for name, default in optional:
        if getattr(value, name) != default:
            present += 1
    for name in nested:
        present += _present_keys(getattr(value, name))
    return present


@functools.cache
def _shape(
    struct: type[msgspec.Struct],
) -> tuple[int, tuple[tuple[str, Any], ...], tuple[str, ...]]:
    """A Struct's keys as ``_present_keys`` counts them: the required ones (the tag
    included), the optional fields with their defaults, and the fields holding a nested
    Struct (required)."""
    fields = msgspec.structs.fields(struct)
    tagged = struct.__struct_config__.tag_field is not None
    required = sum(field.required for field in fields) + tagged
    optional = tuple((field.name, field.default) for field in fields if not field.required)
    nested = tuple(field.name for field in fields if field.required and _struct_type(field.type))
    return required, optional, nested


def validate(
    raw_events: list[msgspec.Raw], accepting: Accepting, has_duplicates: bool | None = None
) -> tuple[list[Event], list[EventError]]:
    """The valid events among ``raw_events`` and every error of the others, each with its
    index in the list: never an exception, whatever the values. ``raw_events``: JSON values
    as msgspec.Raw reads them, whose strings may hold any bytes and whose nesting may be any
    depth. ``has_duplicates``: whether any object of them has a key twice, their body being
    UTF-8 (None: find out, and whether each is UTF-8)."""
    if has_duplicates is None:
        # One pass over them all, the fast path. When it cannot tell (a value not UTF-8 or
        # nested too deeply), each is looked at alone, and the one at fault reported.
        try:
            has_duplicates = _has_duplicate_keys(b"[" + b",".join(raw_events) + b"]")
        except (MalformedBody, UnicodeDecodeError):
            has_duplicates = True
    events: list[Event] = []
    errors: list[EventError] = []
    for index, raw in enumerate(raw_events):
        try:
            found = _event_or_errors(index, raw, accepting, has_duplicates)
        except RecursionError:
            # Each event's own depth: it may pass one check of the batch and not the next,
            # deeper in the stack.
            found = [EventError(index=index, field=None, message=_TOO_DEEP_EVENT)]
        if isinstance(found, list):
            errors.extend(found)
        else:
            events.append(found)
    return events, errors


_TOO_DEEP_EVENT = "is nested too deeply to be a CloudEvent"


def _event_or_errors(
    index: int, raw: msgspec.Raw, accepting: Accepting, has_duplicates: bool
) -> Event | list[EventError]:
    if has_duplicates:
        errors = _text_errors(index, raw)
        if errors:
            return errors
    try:
        event = _event_decoder.decode(raw)
    except msgspec.ValidationError as error:
        return _every_field_error(index, raw, accepting, error)
    if _ESCAPED_NUL in bytes(raw):
        # A string may hold NUL, which msgspec lets through (api.core.events.Text): the
        # fields are checked one by one, NUL included.
        errors = _every_field_error(index, raw, accepting)
        if errors:
            return errors
    return _cross_field_errors(index, event.time, event.data, accepting) or event


# The one way a JSON string holds NUL (or a backslash before "u0000", which is harmless).
_ESCAPED_NUL = b"\\u0000"


def parse_binary_event(
    headers: Mapping[str, str], media_type: str, body: bytes, accepting: Accepting
) -> list[Event]:
    """One event in CloudEvents' binary content mode: the attributes in ``ce-*`` headers
    (percent-encoded, HTTP binding §3.1.3.2), ``datacontenttype`` in Content-Type and
    ``data`` the whole body."""
    event: dict[str, Any] = {}
    for name, value in headers.items():
        if name.lower().startswith(_ATTRIBUTE_PREFIX):
            try:
                event[name.lower().removeprefix(_ATTRIBUTE_PREFIX)] = unquote(
                    value, errors="strict"
                )
            except UnicodeDecodeError:
                raise MalformedBody(f"header {name} is not percent-encoded UTF-8") from None
    event["datacontenttype"] = media_type
    # Kept as sent (a Raw is encoded verbatim), so parse_events sees any duplicate key in it.
    (event["data"],) = _split(body, BodyKind.SINGLE)
    return parse_events(msgspec.json.encode(event), BodyKind.SINGLE, accepting)


_ATTRIBUTE_PREFIX = "ce-"


def _split(body: bytes, kind: BodyKind) -> list[msgspec.Raw]:
    _check_utf8(body)
    first = body.lstrip(_JSON_WHITESPACE)[:1]
    is_array = first == b"["
    if (kind is BodyKind.BATCH and not is_array) or (kind is BodyKind.SINGLE and is_array):
        raise MalformedBody(f"the body must be {kind.value}")
    if is_array:
        return _raw_json(body, _batch_decoder)
    if first != b"{":
        raise MalformedBody(f"the body must be {kind.value}")
    return [_raw_json(body)]


def _raw_json(body: bytes, decoder: msgspec.json.Decoder = _raw_decoder) -> Any:
    """The (UTF-8) body decoded by ``decoder`` (by default: checked to be JSON, kept as it
    is)."""
    try:
        return decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise MalformedBody(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise MalformedBody(_TOO_DEEP) from None


_TOO_DEEP = "the body is nested too deeply to be CloudEvents"


def _check_utf8(body: bytes) -> None:
    try:
        body.decode()
    except UnicodeDecodeError as error:
        raise MalformedBody(
            f"the body is not UTF-8: invalid byte at offset {error.start}"
        ) from None


class _DuplicateKey(Exception):
    pass


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> None:
    if len(pairs) > 1 and len(dict(pairs)) < len(pairs):
        raise _DuplicateKey
    # The decoded value is not needed: msgspec decodes the events themselves.


def _has_duplicate_keys(body: bytes) -> bool:
    """Whether any object of the (JSON) body has a key twice. Such a body is refused, not
    read last-wins: it is how a field is smuggled past a proxy that validates the first."""
    try:
        json.loads(body.decode(), object_pairs_hook=_refuse_duplicates, **_KEYS_ONLY)
    except _DuplicateKey:
        return True
    except RecursionError:
        raise MalformedBody(_TOO_DEEP) from None
    return False


# The keys are what the duplicate checks look at: numbers are left unread (json.loads
# refuses an integer of over 4,300 digits, which msgspec's checks let through).
_KEYS_ONLY: dict[str, Any] = {"parse_int": len, "parse_float": len}


def _text_errors(index: int, raw: msgspec.Raw) -> list[EventError]:
    """Where ``raw`` is not UTF-8, or where in it a key appears twice, if it is or does."""
    try:
        text = bytes(raw).decode()
    except UnicodeDecodeError as error:
        message = f"is not UTF-8: invalid byte at offset {error.start}"
        return [EventError(index=index, field=None, message=message)]
    field = duplicate_key(text)
    if field is None:
        return []
    return [EventError(index=index, field=field, message="appears twice in one object")]


def duplicate_key(text: str | bytes) -> str | None:
    """Where in a JSON text (valid JSON, nested within the parser's depth) a key appears a
    second time in one object, as a path (``data.identity.id``), if one does."""
    return _duplicate_path(json.loads(text, object_pairs_hook=_Object, **_KEYS_ONLY), "")


class _Object(list):
    """A JSON object's (key, value) pairs in order, duplicates kept."""


def _duplicate_path(value: Any, path: str) -> str | None:
    if isinstance(value, _Object):
        seen = set()
        for key, item in value:
            inner = f"{path}.{key}" if path else key
            if key in seen:
                return inner
            seen.add(key)
            found = _duplicate_path(item, inner)
            if found:
                return found
    elif isinstance(value, list):
        for position, item in enumerate(value):
            found = _duplicate_path(item, f"{path}[{position}]")
            if found:
                return found
    return None


def _every_field_error(
    index: int,
    raw: msgspec.Raw,
    accepting: Accepting,
    first: msgspec.ValidationError | None = None,
) -> list[EventError]:
    """Each invalid field of an event, found by checking the fields one by one: the slow
    path, taken for events msgspec refused (it stops at the ``first`` error) and for those
    whose strings may hold NUL (``first`` None)."""
    try:
        event = msgspec.json.decode(raw)
    except msgspec.ValidationError:
        # A number no Python value holds (1e999, 10**5000), refused even where the event
        # has no field: there are no fields to check one by one, the first error is all.
        return [] if first is None else [_from_validation_error(index, str(first), "")]
    if not isinstance(event, dict):
        return [
            EventError(
                index=index, field=None, message=f"Expected `object`, got `{type(event).__name__}`"
            )
        ]
    errors = []
    found = event.get("type")
    event_class = _CLASS_OF_TYPE.get(found) if isinstance(found, str) else None
    if event_class is None:
        message = (
            "is required"
            if found is None
            else f"unknown event type {found!r}; known: {', '.join(EVENT_TYPES)}"
        )
        errors.append(EventError(index=index, field="type", message=message))
    valid, field_errors = _struct_errors(index, event, event_class or Envelope, "")
    errors.extend(field_errors)
    if "time" in valid:
        errors.extend(_cross_field_errors(index, valid["time"], valid.get("data"), accepting))
    return errors


def _struct_errors(
    index: int, value: dict[str, Any], struct: type[msgspec.Struct], path: str
) -> tuple[dict[str, Any], list[EventError]]:
    """The fields of ``value`` that are valid as fields of ``struct``, and the errors of the
    others, recursing into nested Structs so each field is reported on its own."""
    valid: dict[str, Any] = {}
    errors: list[EventError] = []
    for field in msgspec.structs.fields(struct):
        name = field.encode_name
        where = f"{path}.{name}" if path else name
        if name not in value:
            if field.required:
                errors.append(EventError(index=index, field=where, message="is required"))
            continue
        nested = _struct_type(field.type)
        if nested is not None and isinstance(value[name], dict):
            _, inner_errors = _struct_errors(index, value[name], nested, where)
            errors.extend(inner_errors)
            if not inner_errors:
                valid[name] = msgspec.convert(value[name], nested, dec_hook=decode_hook)
            continue
        try:
            valid[name] = msgspec.convert(value[name], field.type, dec_hook=decode_hook)
        except msgspec.ValidationError as error:
            errors.append(_from_validation_error(index, str(error), where))
            continue
        if isinstance(valid[name], str) and "\x00" in valid[name]:
            del valid[name]
            errors.append(EventError(index=index, field=where, message=_NUL))
    return valid, errors


def _struct_type(annotation: Any) -> type[msgspec.Struct] | None:
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return annotation
    return None


def _cross_field_errors(
    index: int, time: datetime, data: Any, accepting: Accepting
) -> list[EventError]:
    errors = []
    now = accepting.now
    if time > now + MAX_CLOCK_SKEW:
        errors.append(
            EventError(
                index=index,
                field="time",
                message=f"must be at most 5 minutes ahead of the server clock ({utc_iso(now)})",
            )
        )
    if accepting.earliest is not None and time < accepting.earliest:
        errors.append(EventError(index=index, field="time", message=accepting.too_old))
    if isinstance(data, LlmCall) and data.cached_tokens > data.input_tokens:
        errors.append(
            EventError(
                index=index,
                field="data.cached_tokens",
                message=f"must not exceed input_tokens ({data.input_tokens})",
            )
        )
    return errors


_LOCATED = re.compile(r"(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?", re.DOTALL)


def _from_validation_error(index: int, text: str, field: str) -> EventError:
    """msgspec's message about ``field``, reworded where it speaks of regexes."""
    located = _LOCATED.fullmatch(text)
    assert located is not None  # the pattern matches any string
    message = located["message"]
    if located["path"]:
        field = (field + located["path"]).removeprefix(".")
    if "matching regex" in message:
        message = _PATTERN_MESSAGES.get(field, message)
    return EventError(index=index, field=field or None, message=message)


_NUL = "must not contain NUL characters"
_PATTERN_MESSAGES = {
    "subject": f"must be an organization slug matching {SLUG}",
    "datacontenttype": "must be application/json (media type parameters allowed)",
}
