from datetime import UTC, datetime, timedelta

from testkit.exported import check_events, check_hourly, export
from testkit.factories import BASE_TIME, llm_call, one_of_each, post_events


def test_a_pass_writes_every_event_once_and_every_ended_day(client, db, ingest_key, target):
    def export_now(now=None):
        return export(db, target.url, endpoint=target.endpoint, now=now)

    assert export_now() is not None  # registers: events from now on are queued
    sent = [*one_of_each(BASE_TIME), *one_of_each(BASE_TIME + timedelta(days=1, hours=23))]
    sent.append(llm_call(time=BASE_TIME + timedelta(hours=5)))
    assert post_events(client, ingest_key, sent).status_code == 200
    passed = export_now(datetime(2026, 11, 5, 12, tzinfo=UTC))
    assert passed.events == len(sent)
    root = target.local()
    check_events(root, sent)
    check_hourly(root, sent, [BASE_TIME.date() + timedelta(days=n) for n in range(3)])
