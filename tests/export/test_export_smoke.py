from datetime import UTC, datetime, timedelta

from testkit.exported import check_events, check_hourly, export
from testkit.factories import BASE_TIME, llm_call, one_of_each, post_events


def test_a_pass_writes_every_event_once_and_every_ended_day(client, db, ingest_key, tmp_path):
    url = f"file://{tmp_path}/export"
    assert export(db, url) is not None  # registers: events from now on are queued
    sent = [*one_of_each(BASE_TIME), *one_of_each(BASE_TIME + timedelta(days=1, hours=23))]
    sent.append(llm_call(time=BASE_TIME + timedelta(hours=5)))
    assert post_events(client, ingest_key, sent).status_code == 200
    now = datetime(2026, 11, 5, 12, tzinfo=UTC)
    passed = export(db, url, now=now)
    assert passed.events == len(sent)
    check_events(tmp_path / "export", sent)
    days = [BASE_TIME.date() + timedelta(days=n) for n in range(3)]
    check_hourly(tmp_path / "export", sent, days)
