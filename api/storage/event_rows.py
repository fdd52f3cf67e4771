"""From events to rows: each raw table's columns after its key, and the identities' names
(the name on each identity's latest named event, by time, source and id)."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from api.core.events import (
    Agent,
    Event,
    Identity,
    LlmCallEvent,
    MessageSentEvent,
    ThreadCreatedEvent,
    VolumeDeletedEvent,
    VolumeProvisionedEvent,
    WorkloadAllocatedEvent,
    WorkloadReleasedEvent,
)


def envelope(event: Event) -> tuple[str, str, str, datetime]:
    return (event.subject, event.source, event.id, event.time)


def llm_call_row(event: LlmCallEvent) -> tuple[Any, ...]:
    data = event.data
    return (
        data.identity.kind,
        data.identity.id,
        data.model,
        data.input_tokens,
        data.cached_tokens,
        data.output_tokens,
        data.succeeded,
    )


def workload_row(event: WorkloadAllocatedEvent | WorkloadReleasedEvent) -> tuple[Any, ...]:
    data = event.data
    if isinstance(event, WorkloadAllocatedEvent):
        return (data.workload_id, "allocated", data.agent.id, data.cpu_cores, data.memory_bytes)
    return (data.workload_id, "released", None, None, None)


def volume_row(event: VolumeProvisionedEvent | VolumeDeletedEvent) -> tuple[Any, ...]:
    data = event.data
    if isinstance(event, VolumeProvisionedEvent):
        return (data.volume_id, "provisioned", data.agent.id, data.size_bytes)
    return (data.volume_id, "deleted", None, None)


def platform_row(event: ThreadCreatedEvent | MessageSentEvent) -> tuple[Any, ...]:
    return (event.data.thread_id, event.data.identity.kind, event.data.identity.id)


def named_identity(event: Event) -> Identity | None:
    if isinstance(event, LlmCallEvent | ThreadCreatedEvent | MessageSentEvent):
        return event.data.identity
    if isinstance(event, WorkloadAllocatedEvent | VolumeProvisionedEvent):
        agent: Agent = event.data.agent
        return Identity(kind="agent", id=agent.id, name=agent.name)
    return None


def identity_rows(events: Iterable[Event]) -> list[tuple[Any, ...]]:
    """One row per identity: the name on its latest named event (by time, source, id)."""
    latest: dict[tuple[str, str, str], tuple[Any, ...]] = {}
    for event in events:
        identity = named_identity(event)
        if identity is None:
            continue
        key = (event.subject, identity.kind, identity.id)
        if identity.name is None:
            latest.setdefault(key, (None, None, None, None))
            continue
        candidate = (identity.name, event.time, event.source, event.id)
        current = latest.get(key)
        if current is None or current[0] is None or current[1:] < candidate[1:]:
            latest[key] = candidate
    return [key + value for key, value in latest.items()]
