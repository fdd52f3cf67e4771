"""Bulk import (`usage-api import`): CloudEvents of any age within the raw retention, from
JSON lines (each line an event, or an array of events) or one JSON array, with the
validation and exactly-once dedupe of POST /events, in batches of one transaction each.

An invalid event is reported (where, field, message) and skipped; the others of its batch
are stored. So is a line that is no event at all, whatever its bytes: not JSON, not UTF-8,
nested past any depth. Run again over the same file, an import adds nothing: every event it
stored is a duplicate by its receipt.
"""

import io
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
        # What is wrong at each place of the batch, reported in the file's order: that no
        # event is there is known as the file is read, an event's errors only once the
        # batch is validated.
        wrong: dict[int, list[str]] = {}
        places, raws = [], []
        for n, (_, found) in enumerate(batch):
            if isinstance(found, str):
                wrong[n] = [found]
            else:
                places.append(n)
                raws.append(found)
        events, errors = validate(raws, accepting)
        for error in errors:
            field = f"{error.field}: " if error.field else ""
            wrong.setdefault(places[error.index], []).append(f"{field}{error.message}")
        if wrong:
            progress.clear()
        for n in sorted(wrong):
            for message in wrong[n]:
                print(f"{batch[n][0]}: {message}", file=report)
        invalid += len(wrong)
        if events:
            result = await ingest(conn, events)
            accepted += result.accepted
            duplicates += result.duplicates
            # An import may be millions of events: folded as it goes, it leaves no queue
            # for the servers' folders (nor past their bound) whether or not one runs.
            await fold_all(conn)
        batch.clear()

    for found in _events(source, report):
        batch.append(found)
        if len(batch) == BATCH_SIZE:
            await store()
            progress.update(source.tell() if size else 0, _counts(accepted, duplicates, invalid))
    await store()
    progress.finish(size or 0, _counts(accepted, duplicates, invalid))
    return ImportResult(accepted=accepted, duplicates=duplicates, invalid=invalid)


def _counts(accepted: int, duplicates: int, invalid: int) -> str:
    return f"{accepted:,} accepted, {duplicates:,} duplicates, {invalid:,} invalid"


def _events(source: BinaryIO, report: TextIO) -> Iterator[_Found]:
    """Each event of the file and where it is. The file is one JSON array (pretty-printed,
    say) if it parses as one; any other file is JSON lines, each line on its own, so that a
    broken line, the first one included, costs that line alone."""
    first = source.readline()
    lines: BinaryIO = source
    if first.lstrip().startswith(b"[") and not _is_json(first):
        array = _as_array(source, first, report)
        if isinstance(array, list):
            for index, item in enumerate(array, start=1):
                yield f"item {index}", item
            return
        lines = array
    number = 1
    line = first
    while line:
        yield from _line(number, line)
        number += 1
        line = lines.readline()


def _is_json(line: bytes) -> bool:
    try:
        _raw.decode(line)
    except (msgspec.DecodeError, RecursionError):
        return False
    return True


def _as_array(source: BinaryIO, first: bytes, report: TextIO) -> list[msgspec.Raw] | BinaryIO:
    """The items of the file, if it is one JSON array; else (said on ``report``) where to
    read its lines after the first: the file itself where it can go back (the progress bar
    follows it), else what was read of it."""
    rest = source.read()
    try:
        return _items.decode(first + rest)
    except (msgspec.DecodeError, RecursionError) as error:
        reason = _TOO_DEEP if isinstance(error, RecursionError) else str(error)
        print(f"the file: is not one JSON array ({reason}); read as JSON lines", file=report)
    if source.seekable():
        source.seek(len(first))
        return source
    return io.BytesIO(rest)


_TOO_DEEP = "nested too deeply to be CloudEvents"


def _line(number: int, line: bytes) -> Iterator[_Found]:
    if not line.strip():
        return
    where = f"line {number}"
    try:
        value = _raw.decode(line)
    except msgspec.DecodeError as error:
        yield where, f"is not JSON: {error}"
        return
    except RecursionError:
        yield where, f"is {_TOO_DEEP}"
        return
    if bytes(value).lstrip().startswith(b"["):
        # An array that decoded as a value decodes as a list of values.
        for index, item in enumerate(_items.decode(bytes(value)), start=1):
            yield f"{where}, item {index}", item
    else:
        yield where, value
