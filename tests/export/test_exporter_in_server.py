"""The exporter of a running server (`usage-api serve` with USAGE_EXPORT_URL): a destination
that refuses every write fails its passes, which /readyz and /metrics report and which are
tried again, never skipped; once the destination takes writes, everything stored is there,
exactly once."""

import time
from collections.abc import Callable
from datetime import timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families

from testkit.exported import check_events, check_hourly
from testkit.factories import BASE_TIME, llm_call, one_of_each
from testkit.server import UNLIMITED, live_server

# Seconds: what a loaded machine may take; each wait ends as soon as its condition holds.
WAIT = 90


def _until(condition: Callable[[], object], what: str) -> object:
    deadline = time.monotonic() + WAIT
    while not (found := condition()):
        assert time.monotonic() < deadline, f"waited {WAIT} s for {what}"
        time.sleep(0.1)
    return found


def _metrics(base_url: str) -> dict[tuple[str, tuple], float]:
    text = httpx.get(f"{base_url}/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _exporter(base_url: str) -> dict:
    response = httpx.get(f"{base_url}/readyz")
    assert response.status_code == 200, response.text
    return response.json()["exporter"]


def test_a_refusing_destination_is_retried_until_it_takes_everything(db, ingest_key, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the export's folder must be: every write fails")
    sent = [
        *one_of_each(BASE_TIME),
        *(llm_call(time=BASE_TIME + timedelta(hours=n)) for n in range(30)),
    ]
    with live_server(
        db,
        USAGE_EXPORT_URL=f"file://{blocked}/usage",
        USAGE_EXPORT_INTERVAL="0.2",
        USAGE_FOLD_IN_SERVER="0",
        **UNLIMITED,
    ) as base_url:
        headers = {"Authorization": f"Bearer {ingest_key}"}
        assert httpx.post(f"{base_url}/events", json=sent, headers=headers).status_code == 200
        failing = _until(lambda: (e := _exporter(base_url))["failures"] >= 2 and e, "failures")
        assert "Not a directory" in failing["error"] and failing["exporting"]
        metrics = _metrics(base_url)
        assert metrics[("usage_export_failures_total", ())] >= 2
        assert metrics[("usage_export_lag_seconds", ())] > 0

        blocked.unlink()
        _until(lambda: _exporter(base_url)["failures"] == 0, "a pass that succeeds")
        assert _exporter(base_url)["error"] is None
        metrics = _metrics(base_url)
        assert metrics[("usage_export_rows_total", (("dataset", "llm_calls"),))] == 31
        assert metrics[("usage_export_lag_seconds", ())] == 0
    root = blocked / "usage"
    check_events(root, sent)
    check_hourly(root, sent, [BASE_TIME.date() + timedelta(days=n) for n in range(3)])
