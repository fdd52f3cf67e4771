"""Bulk import (`usage-api import`): CloudEvents of any age within the raw retention, from
JSON lines (each line an event, or an array of events) or one JSON array, with the
validation and exactly-once dedupe of POST /events, in batches of one transaction each.

An invalid event is reported (where, field, message) and skipped; the others of its batch
are stored. Run again over the same file, an import adds nothing: every event it stored is
a duplicate by its receipt.
"""

from collections.abc import Iterator
from typing import BinaryIO, TextIO

import msgspec
import psycopg

from api.core.parsing import Accepting, validate
from api.progress import Progress
from api.storage.folding import fold_all
from api.storage.ingest import ingest

BATCH_SIZE = 1_000


class ImportResult(msgspec.Struct, frozen=True, kw_only=True):
    accepted: int
    duplicates: int
    invalid: int


# Where an event is in the file ("line 12", "line 3, item 4", "item 7"), and the event, or
# why there is none there.
_Found = tuple[str, msgspec.Raw | str]

_raw = msgspec.json.Decoder(msgspec.Raw)
_items = msgspec.json.Decoder(list[msgspec.Raw])


async def import_events(
    conn: psycopg.AsyncConnection,
    source: BinaryIO,
    accepting: Accepting,
    *,
    size: int | None = None,
    report: TextIO,
) -> ImportResult:
    """Every event of ``source`` (``size`` bytes, if known, for the progress bar) into the
    database; invalid ones listed on ``report``."""
    progress = Progress("Importing", size)
    accepted = duplicates = invalid = 0
    batch: list[_Found] = []

    async def store() -> None:
        nonlocal accepted, duplicates, invalid
        wheres, raws = [], []
        for where, found in batch:
            if isinstance(found, str):
                print(f"{where}: {found}", file=report)
                invalid += 1
            else:
                wheres.append(where)
                raws.append(found)
        events, errors = validate(raws, accepting)
        for error in errors:
            field = f"{error.field}: " if error.field else ""
            print(f"{wheres[error.index]}: {field}{error.message}", file=report)
        invalid += len({error.index for error in errors})
        if events:
            result = await ingest(conn, events)
            accepted += result.accepted
            duplicates += result.duplicates
            # An import may be millions of events: folded as it goes, it leaves no queue
            # for the servers' folders (nor past their bound) whether or not one runs.
            await fold_all(conn)
        batch.clear()

    for found in _events(source):
        batch.append(found)
        if len(batch) == BATCH_SIZE:
            await store()
            progress.update(source.tell() if size else 0, _counts(accepted, duplicates, invalid))
    await store()
    progress.finish(size or 0, _counts(accepted, duplicates, invalid))
    return ImportResult(accepted=accepted, duplicates=duplicates, invalid=invalid)


def _counts(accepted: int, duplicates: int, invalid: int) -> str:
    return f"{accepted:,} accepted, {duplicates:,} duplicates, {invalid:,} invalid"


def _events(source: BinaryIO) -> Iterator[_Found]:
    """Each event of the file and where it is. A file whose first line is the start of a
    JSON array but not all of it is one (pretty-printed) array; otherwise JSON lines."""
    first = source.readline()
    if first.lstrip().startswith(b"[") and not _is_json(first):
        yield from _array(first + source.read())
        return
    number = 1
    line = first
    while line:
        yield from _line(number, line)
        number += 1
        line = source.readline()


def _is_json(line: bytes) -> bool:
    try:
        _raw.decode(line)
    except msgspec.DecodeError:
        return False
    return True


def _array(text: bytes) -> Iterator[_Found]:
    try:
        items = _items.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        yield "the file", f"is not a JSON array of events: {error}"
        return
    for index, item in enumerate(items, start=1):
        yield f"item {index}", item


def _line(number: int, line: bytes) -> Iterator[_Found]:
    if not line.strip():
        return
    where = f"line {number}"
    try:
        value = _raw.decode(line)
    except msgspec.DecodeError as error:
        yield where, f"is not JSON: {error}"
        return
    if bytes(value).lstrip().startswith(b"["):
        for index, item in enumerate(_items.decode(bytes(value)), start=1):
            yield f"{where}, item {index}", item
    else:
        yield where, value
