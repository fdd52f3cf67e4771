"""Prometheus metrics at /metrics: request latency by route (Litestar's middleware, by path
template, so no organization appears in a label), events stored by type, duplicates, and
requests refused by the rate limit."""

from collections import Counter as Tally
from collections.abc import Iterable

from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from prometheus_client import Counter

from api.events import Event

PROMETHEUS = PrometheusConfig(app_name="usage", prefix="usage", group_path=True)

EVENTS_STORED = Counter("usage_events_stored_total", "Events stored, by CloudEvents type", ["type"])
EVENTS_DUPLICATE = Counter(
    "usage_events_duplicate_total", "Events received again and not stored a second time"
)
RATE_LIMITED = Counter("usage_rate_limited_total", "Requests refused by the per-key rate limit")


class Metrics(PrometheusController):
    path = "/metrics"
    include_in_schema = False


def count_ingested(stored: Iterable[Event], duplicates: int) -> None:
    for event_type, count in Tally(type(e).__struct_config__.tag for e in stored).items():
        EVENTS_STORED.labels(type=event_type).inc(count)
    EVENTS_DUPLICATE.inc(duplicates)
