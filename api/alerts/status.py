"""Where each threshold stands: its current period and the figure so far, read as the
evaluator reads it (api.reads.spans), one round trip per section and filters."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg

from api.core.filters import Filters, parse_filters
from api.core.periods import period_holding
from api.core.windows import parse_zone
from api.reads.sections import SECTION_NAMED
from api.reads.spans import Span, read_spans
from api.storage.thresholds import Threshold


@dataclass(frozen=True, slots=True)
class Standing:
    start: datetime
    end: datetime
    value: float  # the period's figure from its start to now


async def standings(
    conn: psycopg.AsyncConnection, org: str, found: Sequence[Threshold], now: datetime
) -> list[Standing]:
    """Each threshold's current period and figure, in the order given."""
    periods = [period_holding(now, t.period, parse_zone(t.tz)) for t in found]
    keys = [(t.section, parse_filters(t.filters, SECTION_NAMED[t.section].filters)) for t in found]
    asked: dict[tuple[str, Filters], set[Span]] = defaultdict(set)
    for key, (start, _) in zip(keys, periods, strict=True):
        asked[key].add((start, now))
    figures = await read_spans(conn, org, asked)
    return [
        Standing(start, end, figures[(*key, (start, now))][t.measure])
        for t, key, (start, end) in zip(found, keys, periods, strict=True)
    ]
