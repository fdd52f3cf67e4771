"""Where each object goes under the destination, and what a partition's manifest says
(DESIGN §11): ``{dataset}/date=YYYY-MM-DD/`` holds the partition's Parquet files and its
``_manifest.json``, written after them, listing them with their rows, bytes and SHA-256, the
partition's total rows and a generation that grows on every rewrite."""

from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol

import msgspec

MANIFEST = "_manifest.json"


class ManifestFile(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    rows: int
    bytes: int
    sha256: str


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    dataset: str
    date: date
    generation: int
    written_at: datetime
    rows: int
    files: tuple[ManifestFile, ...]


def folder(dataset: str, day: date) -> str:
    return f"{dataset}/date={day.isoformat()}"


def file_key(dataset: str, day: date, name: str) -> str:
    return f"{folder(dataset, day)}/{name}"


def manifest_key(dataset: str, day: date) -> str:
    return file_key(dataset, day, MANIFEST)


def events_file_name(job: int, sequence: int) -> str:
    """The ``sequence``-th file of a job in a partition: the same name when a crashed job is
    written again."""
    return f"part-{job:010d}-{sequence:04d}.parquet"


def hourly_part_name(part: int) -> str:
    return f"part-{part:04d}.parquet"


class Listed(Protocol):
    name: str
    rows: int
    bytes: int
    sha256: str


def manifest(
    dataset: str, day: date, generation: int, written_at: datetime, files: Sequence[Listed]
) -> bytes:
    ordered = tuple(
        ManifestFile(name=file.name, rows=file.rows, bytes=file.bytes, sha256=file.sha256)
        for file in sorted(files, key=lambda file: file.name)
    )
    document = Manifest(
        dataset=dataset,
        date=day,
        generation=generation,
        written_at=written_at,
        rows=sum(file.rows for file in ordered),
        files=ordered,
    )
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"


def read_manifest(data: bytes) -> Manifest:
    return msgspec.json.decode(data, type=Manifest)
