"""`usage-api export` killed (SIGKILL) again and again in the middle of its work, wherever
that lands (a file half made, a file uploaded and not listed, a manifest written and not
recorded), then run to the end: every event is exported exactly once, and every day's
figures are the oracle's."""

import os
import signal
import subprocess
import time
from datetime import timedelta

from testkit.exported import check_events, check_hourly
from testkit.factories import BASE_TIME, llm_call, post_events, workload_allocated
from testkit.server import USAGE_API, usage_api


def _calls(count: int, first: int) -> list[dict]:
    return [
        llm_call(
            id=f"call-{n}",
            org=("acme", "globex")[n % 2],
            time=BASE_TIME + timedelta(seconds=17 * n),
            input_tokens=100 + n % 1000,
            cached_tokens=n % 7,
        )
        for n in range(first, first + count)
    ]


def test_killed_at_any_moment_it_exports_every_event_once(client, db, ingest_key, tmp_path):
    url = f"file://{tmp_path}/export"
    env = {"DATABASE_URL": db, "USAGE_EXPORT_URL": url}
    sent = [*_calls(20_000, 0), workload_allocated(time=BASE_TIME + timedelta(hours=30))]
    for start in range(0, len(sent), 5_000):
        assert post_events(client, ingest_key, sent[start : start + 5_000]).status_code == 200
    killed = 0
    for moment in (0.5, 1.0, 1.5, 2.0, 3.0, 4.0):
        exporter = subprocess.Popen(
            [USAGE_API, "export", "--once"],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(moment)
        if exporter.poll() is None:
            exporter.send_signal(signal.SIGKILL)
            killed += 1
        exporter.wait()
        # Events stored between the kills: queued for export once the destination is known.
        more = _calls(500, len(sent))
        assert post_events(client, ingest_key, more).status_code == 200
        sent += more
    assert killed, "no run was killed: each finished in under half a second"
    finished = usage_api(db, "export", "--once", USAGE_EXPORT_URL=url, timeout=600)
    assert finished.returncode == 0, finished.stderr
    root = tmp_path / "export"
    check_events(root, sent)
    check_hourly(root, sent, [BASE_TIME.date() + timedelta(days=n) for n in range(5)])
