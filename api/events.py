"""CloudEvents as producers send them: the envelope and one ``data`` Struct per type.

Decoding a JSON event into ``Event`` validates everything a field can check by itself;
the checks that compare fields or need the clock are in ``parsing``.
"""

from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

MAX_TEXT_LENGTH = 200
MAX_TOKENS = 1_000_000_000
MAX_CPU_CORES = 100_000
MAX_MEMORY_BYTES = 2**50  # 1 PiB
MAX_SIZE_BYTES = 2**60  # 1 EiB

# PostgreSQL text cannot hold NUL; it is refused here rather than failing the insert.
NO_NUL_PATTERN = r"^[^\x00]*$"
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"

Text = Annotated[str, Meta(min_length=1, max_length=MAX_TEXT_LENGTH, pattern=NO_NUL_PATTERN)]
Slug = Annotated[str, Meta(pattern=SLUG_PATTERN)]
Tokens = Annotated[int, Meta(ge=0, le=MAX_TOKENS)]
Timestamp = Annotated[datetime, Meta(tz=True)]
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
    cpu_cores: Annotated[float, Meta(gt=0, le=MAX_CPU_CORES)]
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


class _Envelope(Struct, frozen=True, kw_only=True, tag_field="type"):
    specversion: Literal["1.0"]
    id: Text
    source: Text
    subject: Slug
    time: Timestamp
    datacontenttype: Literal["application/json"] | None = None


class LlmCallEvent(_Envelope, tag="llm.call"):
    data: LlmCall


class WorkloadAllocatedEvent(_Envelope, tag="workload.allocated"):
    data: WorkloadAllocated


class WorkloadReleasedEvent(_Envelope, tag="workload.released"):
    data: WorkloadReleased


class VolumeProvisionedEvent(_Envelope, tag="volume.provisioned"):
    data: VolumeProvisioned


class VolumeDeletedEvent(_Envelope, tag="volume.deleted"):
    data: VolumeDeleted


class ThreadCreatedEvent(_Envelope, tag="thread.created"):
    data: ThreadCreated


class MessageSentEvent(_Envelope, tag="message.sent"):
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
