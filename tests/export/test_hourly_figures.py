"""usage_hourly reads each section's figures from its keyed series as they are: that holds
only if one bucket's summary, as the reads compute it (``section.bucket`` then
``section.summary``), is the row's figures under the summary's names."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.core.windows import Bucket
from api.export.hourly import FIGURES, summary_figures
from api.reads.sections import SECTIONS

_START = datetime(2026, 11, 2, 5, tzinfo=UTC)
_BUCKET = Bucket(start=_START, end=_START + timedelta(hours=1), partial=False)
_COUNTS = st.integers(min_value=0, max_value=2**53)
# A float figure arrives as PostgreSQL's numeric (a Decimal through psycopg, text in a COPY),
# or null for a key with nothing in the bucket.
_AMOUNTS = st.none() | st.decimals(
    min_value=0, max_value=10**9, allow_nan=False, allow_infinity=False, places=12
)


@pytest.mark.parametrize("section", SECTIONS, ids=lambda section: section.name)
@given(data=st.data())
def test_one_buckets_summary_is_the_rows_figures(section, data):
    names = summary_figures(section)
    drawn = {
        name: data.draw(_COUNTS if FIGURES[name].equals(FIGURES["input_tokens"]) else _AMOUNTS)
        for name in names
    }
    # Only the summary's names: a bucket that read another column would fail here.
    row = SimpleNamespace(bucket=_START, **drawn)
    summary = section.summary([section.bucket(_BUCKET, row)])
    expected = {
        name: 0 if value is None else (float(value) if isinstance(value, Decimal) else value)
        for name, value in drawn.items()
    }
    assert msgspec.structs.asdict(summary) == expected
