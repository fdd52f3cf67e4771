"""Events in ``time`` order become Parquet files per UTC date of at most MAX_ROWS rows, every
row once, in order, whatever the batches the CSV reader happens to cut."""

import io
import itertools
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.export import parquet

_START = datetime(2026, 11, 1, 22, tzinfo=UTC)
_SCHEMA = pa.schema([("time", pa.timestamp("us", tz="UTC")), ("n", pa.int64())])


def _batches(offsets: list[int], cuts: list[int]) -> list[pa.RecordBatch]:
    """Rows at ``offsets`` seconds from _START, numbered, cut in batches of ``cuts`` rows."""
    times = [_START + timedelta(seconds=offset) for offset in offsets]
    table = pa.table({"time": times, "n": list(range(len(times)))}, _SCHEMA)
    batches, at = [], 0
    for cut in cuts * len(times):
        if at >= len(times):
            break
        batches.append(table.slice(at, cut).to_batches()[0])
        at += cut
    return batches


@settings(deadline=None)  # the first example pays for pyarrow's imports
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=3 * 86_400), max_size=60).map(sorted),
    cuts=st.lists(st.integers(min_value=1, max_value=9), min_size=1),
    most=st.integers(min_value=1, max_value=7),
)
def test_files_hold_one_date_each_and_at_most_max_rows(offsets, cuts, most):
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(parquet, "MAX_ROWS", most)
        patched.setattr(parquet, "ROW_GROUP_ROWS", 2)
        files = list(parquet.files_by_date(iter(_batches(offsets, cuts))))
    read = []
    for day, built in files:
        rows = pq.read_table(io.BytesIO(built.data.to_pybytes())).to_pylist()
        assert 0 < len(rows) == built.rows <= most
        assert {row["time"].astimezone(UTC).date() for row in rows} == {day}
        read += rows
    assert [row["n"] for row in read] == list(range(len(offsets)))
    # A date's files follow one another, and only a full file is followed by another.
    for (day, built), (next_day, _) in itertools.pairwise(files):
        assert next_day > day or (next_day == day and built.rows == most)
