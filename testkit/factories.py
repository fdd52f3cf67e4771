"""CloudEvents for tests, and posting them."""

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar.testing import TestClient

BATCH = "application/cloudevents-batch+json"
BASE_TIME = datetime(2026, 11, 2, tzinfo=UTC)
_ids = itertools.count()


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def event(
    type_: str,
    data: dict[str, Any],
    *,
    org: str = "acme",
    source: str = "test",
    id: str | None = None,
    time: datetime = BASE_TIME,
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": id or f"evt-{next(_ids)}",
        "source": source,
        "type": type_,
        "subject": org,
        "time": iso(time),
        "datacontenttype": "application/json",
        "data": data,
    }


def identity(id: str = "a1", kind: str = "agent", name: str | None = None) -> dict[str, Any]:
    return {"kind": kind, "id": id} | ({"name": name} if name else {})


def llm_call(
    *,
    who: dict | None = None,
    model: str = "gpt-5",
    input_tokens: int = 100,
    cached_tokens: int = 40,
    output_tokens: int = 20,
    succeeded: bool = True,
    **envelope: Any,
) -> dict[str, Any]:
    return event(
        "llm.call",
        {
            "identity": who or identity(),
            "model": model,
            "input_tokens": input_tokens,
            "cached_tokens": cached_tokens,
            "output_tokens": output_tokens,
            "succeeded": succeeded,
        },
        **envelope,
    )


def workload_allocated(
    workload_id: str = "w1",
    *,
    agent: str = "a1",
    cpu_cores: float = 2,
    memory_bytes: int = 2**30,
    **envelope: Any,
) -> dict[str, Any]:
    return event(
        "workload.allocated",
        {
            "workload_id": workload_id,
            "agent": {"id": agent},
            "cpu_cores": cpu_cores,
            "memory_bytes": memory_bytes,
        },
        **envelope,
    )


def workload_released(workload_id: str = "w1", **envelope: Any) -> dict[str, Any]:
    return event("workload.released", {"workload_id": workload_id}, **envelope)


def volume_provisioned(
    volume_id: str = "v1", *, agent: str = "a1", size_bytes: int = 2**30, **envelope: Any
) -> dict[str, Any]:
    return event(
        "volume.provisioned",
        {
            "volume_id": volume_id,
            "agent": {"id": agent},
            "size_bytes": size_bytes,
        },
        **envelope,
    )


def volume_deleted(volume_id: str = "v1", **envelope: Any) -> dict[str, Any]:
    return event("volume.deleted", {"volume_id": volume_id}, **envelope)


def thread_created(
    thread_id: str = "t1", *, who: dict | None = None, **envelope: Any
) -> dict[str, Any]:
    return event(
        "thread.created", {"thread_id": thread_id, "identity": who or identity()}, **envelope
    )


def message_sent(
    thread_id: str = "t1", *, who: dict | None = None, **envelope: Any
) -> dict[str, Any]:
    return event(
        "message.sent", {"thread_id": thread_id, "identity": who or identity()}, **envelope
    )


def one_of_each(time: datetime = BASE_TIME) -> list[dict[str, Any]]:
    later = time + timedelta(hours=1)
    return [
        llm_call(time=time),
        workload_allocated(time=time),
        workload_released(time=later),
        volume_provisioned(time=time),
        volume_deleted(time=later),
        thread_created(time=time),
        message_sent(time=time),
    ]


def post_events(client: TestClient, key: str, body: Any, content_type: str = BATCH):
    payload = body if isinstance(body, bytes) else msgspec.json.encode(body)
    return client.post(
        "/events",
        content=payload,
        headers={"Authorization": f"Bearer {key}", "Content-Type": content_type},
    )
