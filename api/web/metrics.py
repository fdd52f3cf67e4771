"""Prometheus metrics at /metrics: every answer by route template (never a path, so no
organization appears in a label) and status, whatever answered it (a route, the key check,
the router's 404 and 405, the HTTP server's own refusals), and requests refused by the rate
limits. The write path counts what it stores in ``api.storage.counters``; the same registry
serves both."""

import time

from litestar.plugins.prometheus import PrometheusController
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter, Gauge, Histogram

from api.web.logs import ANSWERED_BY_SERVER_KEY

_ANSWER_LABELS = ["method", "path", "status_code"]
REQUESTS = Counter("usage_requests_total", "Answers, by method, route and status", _ANSWER_LABELS)
DURATION = Histogram(
    "usage_request_duration_seconds", "Time to answer, by method, route and status", _ANSWER_LABELS
)
IN_PROGRESS = Gauge("usage_requests_in_progress", "Requests being answered, by method", ["method"])
# The label of a request no route matched (no such path, or no such method on it): its
# path is the client's text, not ours to keep.
UNMATCHED = "(unmatched)"

RATE_LIMITED = Counter("usage_rate_limited_total", "Requests refused by the per-key rate limit")
AUTH_FAILURES_LIMITED = Counter(
    "usage_auth_failures_limited_total",
    "Requests refused because their address sent too many unknown keys",
)


class Metrics(PrometheusController):
    path = "/metrics"
    include_in_schema = False


def count_requests(app: ASGIApp) -> ASGIApp:
    """ASGI wrapper: each answer counted and timed by route template and status."""

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        method = scope["method"]
        started = time.perf_counter()
        status = 500

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        in_progress = IN_PROGRESS.labels(method=method)
        in_progress.inc()
        try:
            await app(scope, receive, send_counted)
        finally:
            in_progress.dec()
            status = scope.get(ANSWERED_BY_SERVER_KEY, status)
            count_answer(method, scope.get("path_template") or UNMATCHED, status, started)

    return counting


def count_answer(method: str, path: str, status: int, started: float) -> None:
    """One answer (``started``: its request's ``time.perf_counter()``), whoever gave it: the
    application or the HTTP server (api.web.http_server)."""
    labels = {"method": method, "path": path, "status_code": str(status)}
    REQUESTS.labels(**labels).inc()
    DURATION.labels(**labels).observe(time.perf_counter() - started)
