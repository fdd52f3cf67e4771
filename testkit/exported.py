"""Running the exporter from the tests, and reading what it wrote back with DuckDB (a reader
nobody here wrote) and checking it against the oracle."""

import json
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from pyarrow import fs

from api.core.destinations import parse
from api.export.exporter import Passed, export_once
from api.export.store import Store
from testkit import oracle
from testkit.database import with_connection
from testkit.object_store import S3Endpoint

EVENT_DATASETS = ("llm_calls", "workload_events", "volume_events", "threads", "messages")
DATASET_OF_TYPE = {
    "llm.call": "llm_calls",
    "workload.allocated": "workload_events",
    "workload.released": "workload_events",
    "volume.provisioned": "volume_events",
    "volume.deleted": "volume_events",
    "thread.created": "threads",
    "message.sent": "messages",
}


class Crash(Exception):
    """The exporter's process dying, as far as the pass can tell: nothing after it runs."""


class CrashingStore(Store):
    """A store whose ``crash_at``-th write or delete raises Crash, before it reaches the
    store or (``after``) once it has."""

    def __init__(self, url: str, crash_at: int, *, after: bool) -> None:
        super().__init__(parse(url))
        self._left = crash_at
        self._after = after

    def _step(self, act):
        self._left -= 1
        if self._left == 0 and not self._after:
            raise Crash
        act()
        if self._left == 0:
            raise Crash

    def put(self, key, data):
        self._step(lambda: super(CrashingStore, self).put(key, data))

    def delete(self, key):
        self._step(lambda: super(CrashingStore, self).delete(key))


def export(
    database_url: str,
    url: str,
    *,
    now: datetime | None = None,
    delay: timedelta = timedelta(0),
    store: Store | None = None,
    endpoint: str | None = None,
) -> Passed:
    """One exporter pass to ``url`` (at S3 ``endpoint``, for s3://), as of ``now``; through
    ``store`` if given (a CrashingStore). No other exporter runs in the tests, but a pass
    that crashed may still hold the exporters' lock for a moment: PostgreSQL lets a
    session's locks go as its backend exits, after the connection closed. A pass it skipped
    would leave its work to the next (CI saw a last pass skipped so)."""
    store = store or Store(parse(url, endpoint))
    clock = (lambda: now) if now else (lambda: datetime.now(UTC))

    async def run(conn):
        return await export_once(conn, database_url, store, delay=delay, clock=clock)

    deadline = time.monotonic() + _LOCK_LET_GO_SECONDS
    while (passed := with_connection(database_url, run)) is None:
        assert time.monotonic() < deadline, "another exporter held the lock"
        time.sleep(0.02)
    return passed


_LOCK_LET_GO_SECONDS = 30.0


def download(endpoint: S3Endpoint, bucket: str, into: Path) -> Path:
    """Everything in the bucket, copied to ``into`` (DuckDB has no S3 reader here: its
    httpfs extension is not installed, and nothing can be downloaded)."""
    fs.copy_files(
        bucket,
        str(into),
        source_filesystem=endpoint.filesystem(),
        destination_filesystem=fs.LocalFileSystem(),
    )
    return into


def _files(root: Path, dataset: str) -> list[str]:
    """The files a partition's manifest lists, every partition of ``dataset``."""
    listed = []
    for manifest in sorted((root / dataset).glob("date=*/_manifest.json")):
        for file in json.loads(manifest.read_text())["files"]:
            listed.append(str(manifest.parent / file["name"]))
    return listed


def read(root: Path, dataset: str) -> list[dict[str, Any]]:
    """Every row of ``dataset`` the manifests list, read with DuckDB; also checks that the
    folder holds exactly the files its manifests list (no stray or half-written file)."""
    listed = _files(root, dataset)
    on_disk = sorted(str(path) for path in (root / dataset).glob("date=*/*.parquet"))
    assert sorted(listed) == on_disk
    if not listed:
        return []
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    result = connection.execute("SELECT * FROM read_parquet(?, hive_partitioning = true)", [listed])
    names = [column[0] for column in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def check_events(root: Path, stored: list[dict]) -> None:
    """Every stored event is in exactly one file, with the fields it was stored with, in the
    partition of its UTC date."""
    wanted: dict[str, dict[tuple, dict]] = {dataset: {} for dataset in EVENT_DATASETS}
    for event in oracle.unique_events(stored):
        key = (event["subject"], event["source"], event["id"])
        wanted[DATASET_OF_TYPE[event["type"]]][key] = event
    for dataset, events in wanted.items():
        rows = read(root, dataset)
        keys = Counter((row["org"], row["source"], row["id"]) for row in rows)
        assert [key for key, count in keys.items() if count > 1] == [], dataset
        assert set(keys) == set(events), dataset
        for row in rows:
            expected = exported_row(events[(row["org"], row["source"], row["id"])])
            assert {name: row[name] for name in expected} == expected, dataset
            assert row["date"] == row["time"].date(), dataset


def exported_row(event: dict) -> dict[str, Any]:
    """The columns of an event's row in its dataset (DESIGN §11), but the names and
    ``stored_at``, which the event does not say."""
    data, kind = event["data"], event["type"]
    row: dict[str, Any] = {
        "org": event["subject"],
        "source": event["source"],
        "id": event["id"],
        "time": datetime.fromisoformat(event["time"]),
    }
    if "identity" in data:
        row |= {"identity_kind": data["identity"]["kind"], "identity_id": data["identity"]["id"]}
    if kind == "llm.call":
        counted = ("model", "input_tokens", "cached_tokens", "output_tokens", "succeeded")
        return row | {name: data[name] for name in counted}
    if kind in ("thread.created", "message.sent"):
        return row | {"thread_id": data["thread_id"]}
    workload = kind.startswith("workload.")
    sizes = ("cpu_cores", "memory_bytes") if workload else ("size_bytes",)
    object_id = "workload_id" if workload else "volume_id"
    agent = data.get("agent")
    return row | {
        "type": kind,
        object_id: data[object_id],
        "agent_id": agent["id"] if agent else None,
        **{name: data.get(name) for name in sizes},
    }


def check_hourly(root: Path, stored: list[dict], days: list[date]) -> None:
    """Summed over each UTC day of ``days``, ``usage_hourly`` gives the oracle's figures of
    that day, per organization, section and key (and no figures where the oracle has none)."""
    rows = [row for row in read(root, "usage_hourly") if row["date"] in set(days)]
    exported: dict[tuple, dict[str, float]] = {}
    for row in rows:
        key = (row["date"], row["org"], row["section"], _key(row))
        sums = exported.setdefault(key, {})
        for name, value in row.items():
            if name in oracle.FIGURE_NAMES and value is not None:
                sums[name] = sums.get(name, 0) + value
    events = oracle.unique_events(stored)
    expected = {}
    for day in days:
        start = datetime.combine(day, datetime.min.time(), UTC)
        window = oracle.OracleWindow.custom(start, start + timedelta(days=1), "1d")
        for org in sorted({event["subject"] for event in events}):
            for section, keys in oracle.usage_keys(events, org).items():
                for key in keys:
                    summary = oracle.SECTIONS[section](
                        events, window, 1, org, filters=oracle.key_filters(section, key)
                    )["summary"]
                    if oracle.used(section, summary):
                        expected[(day, org, section, key)] = summary
    assert set(exported) == set(expected)
    for key, summary in expected.items():
        for name, value in summary.items():
            assert exported[key].get(name, 0) == _approx(value), (key, name)


def _key(row: dict) -> tuple:
    if row["section"] == "llm":
        return (row["identity_kind"], row["identity_id"], row["model"])
    if row["section"] == "platform":
        return (row["identity_kind"], row["identity_id"])
    return (row["agent_id"],)


class _approx(float):
    """Equal within 1e-9 relative (compute and storage are sums of floats, DESIGN §11)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, int | float) and abs(other - self) <= 1e-9 * max(
            abs(self), abs(other), 1e-12
        )

    __hash__ = float.__hash__
