"""What the write path stored, counted for Prometheus (``/metrics`` serves the same registry):
events by CloudEvents type, events received again, and the folder's queue."""

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import Counter, Gauge

from api.core.events import Event

EVENTS_STORED = Counter("usage_events_stored_total", "Events stored, by CloudEvents type", ["type"])
EVENTS_DUPLICATE = Counter(
    "usage_events_duplicate_total", "Events received again and not stored a second time"
)


def count_ingested(stored: Iterable[Event], duplicates: int) -> None:
    for event_type, count in Tally(type(e).__struct_config__.tag for e in stored).items():
        EVENTS_STORED.labels(type=event_type).inc(count)
    EVENTS_DUPLICATE.inc(duplicates)


PENDING_ROWS = Gauge(
    "usage_pending_rows", "Events stored and waiting to be folded into the rollups (all queues)"
)
PENDING_OLDEST_SECONDS = Gauge(
    "usage_pending_oldest_seconds", "How long the oldest event waiting to be folded has waited"
)
FOLDED_ROWS = Counter("usage_folded_rows_total", "Events this process folded into the rollups")
