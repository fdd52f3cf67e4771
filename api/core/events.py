"""CloudEvents as producers send them: the envelope and one ``data`` Struct per type.

Decoding a JSON event into ``Event`` validates everything a field can check by itself;
the checks that compare fields or need the clock are in ``parsing``.
"""

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from api.core.timestamps import EXAMPLE, parse_rfc3339

MAX_TEXT_LENGTH = 200
MAX_TOKENS = 1_000_000_000
MIN_CPU_CORES = 0.001  # a millicore, Kubernetes' finest CPU unit
MAX_CPU_CORES = 100_000
MAX_MEMORY_BYTES = 2**50  # 1 PiB
MAX_SIZE_BYTES = 2**60  # 1 EiB

# PostgreSQL text cannot hold NUL; it is refused at parsing rather than failing the insert.
NO_NUL_PATTERN = r"^[^\x00]*$"
SLUG = r"[a-z0-9][a-z0-9-]{0,62}"
# msgspec searches with Python's re, whose $ also matches before a final newline ("acme\n");
# the lookahead refuses that and means nothing to the JSON Schema (ECMA) readers of the same
# pattern, whose $ is the end.
SLUG_PATTERN = rf"^{SLUG}$(?!\n)"
# A CloudEvents datacontenttype: JSON, with media type parameters if any.
JSON_MEDIA_TYPE_PATTERN = r"^application/json[ \t]*(;.*)?$(?!\n)"


def is_slug(text: str) -> bool:
    return re.fullmatch(SLUG, text) is not None


class EventTime(datetime):
    """A CloudEvent's ``time``: RFC 3339 with an offset, held in UTC, with fractions finer
    than a microsecond truncated (msgspec would round them into the next second)."""

    @classmethod
    def parse(cls, text: Any) -> "EventTime":
        if not isinstance(text, str):
            raise TypeError(f"must be an RFC 3339 timestamp such as {EXAMPLE}")
        return parse_rfc3339(text, truncate=True, kind=cls)


def decode_hook(type_: type, value: Any) -> Any:
    """msgspec's ``dec_hook`` for the types it does not know itself."""
    if type_ is EventTime:
        return EventTime.parse(value)
    raise NotImplementedError(type_)


def schema_hook(type_: type) -> dict[str, Any]:
    """msgspec's ``schema_hook``: the JSON Schema of the same types."""
    if type_ is EventTime:
        return {"type": "string", "format": "date-time"}
    raise NotImplementedError(type_)


# NUL is refused by api.core.parsing, not by msgspec: a pattern is a Python regex search per
# field, which was half of decoding a batch (1,000 LLM calls: 14.5 -> 7.2 ms). The schema
# still says it.
Text = Annotated[
    str,
    Meta(min_length=1, max_length=MAX_TEXT_LENGTH, extra_json_schema={"pattern": NO_NUL_PATTERN}),
]
Slug = Annotated[str, Meta(pattern=SLUG_PATTERN)]
Tokens = Annotated[int, Meta(ge=0, le=MAX_TOKENS)]
IdentityKind = Literal["agent", "user"]


class _Data(Struct, frozen=True, kw_only=True):
    pass


class Identity(_Data):
    kind: IdentityKind
    id: Text
    name: Text | None = None


class Agent(_Data):
    id: Text
    name: Text | None = None


class LlmCall(_Data):
    identity: Identity
    model: Text
    input_tokens: Tokens
    cached_tokens: Tokens
    output_tokens: Tokens
    succeeded: bool


class WorkloadAllocated(_Data):
    workload_id: Text
    agent: Agent
    cpu_cores: Annotated[float, Meta(ge=MIN_CPU_CORES, le=MAX_CPU_CORES)]
    memory_bytes: Annotated[int, Meta(gt=0, le=MAX_MEMORY_BYTES)]


class WorkloadReleased(_Data):
    workload_id: Text


class VolumeProvisioned(_Data):
    volume_id: Text
    agent: Agent
    size_bytes: Annotated[int, Meta(gt=0, le=MAX_SIZE_BYTES)]


class VolumeDeleted(_Data):
    volume_id: Text


class ThreadCreated(_Data):
    thread_id: Text
    identity: Identity


class MessageSent(_Data):
    thread_id: Text
    identity: Identity


class Envelope(Struct, frozen=True, kw_only=True, tag_field="type"):
    specversion: Literal["1.0"]
    id: Text
    source: Text
    subject: Slug
    time: EventTime
    datacontenttype: Annotated[str, Meta(pattern=JSON_MEDIA_TYPE_PATTERN)] | None = None


class LlmCallEvent(Envelope, tag="llm.call"):
    data: LlmCall


class WorkloadAllocatedEvent(Envelope, tag="workload.allocated"):
    data: WorkloadAllocated


class WorkloadReleasedEvent(Envelope, tag="workload.released"):
    data: WorkloadReleased


class VolumeProvisionedEvent(Envelope, tag="volume.provisioned"):
    data: VolumeProvisioned


class VolumeDeletedEvent(Envelope, tag="volume.deleted"):
    data: VolumeDeleted


class ThreadCreatedEvent(Envelope, tag="thread.created"):
    data: ThreadCreated


class MessageSentEvent(Envelope, tag="message.sent"):
    data: MessageSent


Event = (
    LlmCallEvent
    | WorkloadAllocatedEvent
    | WorkloadReleasedEvent
    | VolumeProvisionedEvent
    | VolumeDeletedEvent
    | ThreadCreatedEvent
    | MessageSentEvent
)

EVENT_TYPES = tuple(cls.__struct_config__.tag for cls in Event.__args__)
