"""Two server processes watching the same thresholds at once (§10): every crossing recorded
once and delivered once (the receiver always answers 200), whichever process saw it."""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx

from testkit.database import rows_as_they_are
from testkit.factories import BATCH, llm_call
from testkit.receiver import RECEIVER_HOSTS, receiver
from testkit.server import PATIENT_POOL, UNLIMITED, live_server

_THRESHOLDS = 15
_CALLS, _TOKENS = 40, 100  # input tokens per call
_LIMITS = [300 * number for number in range(1, _THRESHOLDS + 1)]


def test_two_watching_servers_record_and_deliver_each_crossing_once(
    client, db, admin_key, ingest_key
):
    watching = {
        "USAGE_WATCH_IN_SERVER": "1",
        "USAGE_WATCH_INTERVAL": "0.02",
        "USAGE_WEBHOOK_ALLOW_HOSTS": ",".join(RECEIVER_HOSTS),
        **UNLIMITED,
        **PATIENT_POOL,
    }
    with (
        receiver() as hook,
        live_server(db, **watching) as first,
        live_server(db, **watching) as second,
    ):
        # Limits of 300, 600, ... tokens: the calls' 4,000 cross all but the last few.
        for limit in _LIMITS:
            created = client.post(
                "/orgs/acme/thresholds",
                json={
                    "section": "llm",
                    "measure": "input_tokens",
                    "period": "day",
                    "limit": limit,
                    "url": hook.url,
                },
                headers={"Authorization": f"Bearer {admin_key}"},
            ).json()
            hook.secrets[created["id"]] = created["secret"]

        def send(numbered: tuple[int, str]) -> int:
            number, server = numbered
            call = llm_call(time=datetime.now(UTC), input_tokens=_TOKENS, cached_tokens=0)
            answer = httpx.post(
                f"{server}/events",
                json=[call],
                headers={"Authorization": f"Bearer {ingest_key}", "Content-Type": BATCH},
            )
            time.sleep(0.01 * (number % 3))  # spread over several passes of each watcher
            return answer.status_code

        with ThreadPoolExecutor(4) as pool:
            sent = list(pool.map(send, enumerate([first, second] * (_CALLS // 2))))
        assert sent == [200] * _CALLS
        crossed = sum(limit < _CALLS * _TOKENS for limit in _LIMITS)
        deadline = time.monotonic() + 30
        while len(hook.delivered()) < crossed and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # a second delivery of any crossing would come by now
    crossings = rows_as_they_are(db, "threshold_crossings")
    assert len(crossings) == crossed
    ids = [received.webhook_id for received in hook.received]
    assert sorted(ids) == sorted(row[6] for row in crossings)  # each delivered once
    assert all(received.verified and received.answered == 200 for received in hook.received)
