"""What a pass does around the work of others: events that keep arriving while it writes,
and a backfill asked for while one is under way."""

import itertools
from datetime import UTC, datetime, timedelta

from api.core.destinations import parse
from api.export.store import Store
from api.storage import exports
from testkit.database import import_batch, with_connection
from testkit.exported import check_events, export
from testkit.factories import BASE_TIME, llm_call

_NOW = datetime(2026, 11, 4, tzinfo=UTC)


class _Busy(Store):
    """A store whose every write comes with more events stored meanwhile: the queue is
    never empty while the pass runs."""

    def __init__(self, url: str, database_url: str, sent: list[dict]) -> None:
        super().__init__(parse(url))
        self._database_url = database_url
        self._sent = sent
        self._ids = itertools.count()

    def put(self, key, data):
        super().put(key, data)
        event = llm_call(id=f"meanwhile-{next(self._ids)}", time=BASE_TIME)
        import_batch(self._database_url, [event])
        self._sent.append(event)


def test_a_pass_ends_while_events_keep_arriving(db, tmp_path):
    url = f"file://{tmp_path}/export"
    export(db, url, now=_NOW)  # registered
    sent = [llm_call(time=BASE_TIME + timedelta(minutes=n)) for n in range(3)]
    import_batch(db, sent)
    passed = export(db, url, now=_NOW, store=_Busy(url, db, sent))
    # It wrote what was queued when it began, and the hourly figures after.
    assert passed.events >= 3 and passed.hourly_dates
    while export(db, url, now=_NOW).events:
        pass
    check_events(tmp_path / "export", sent)


def test_a_backfill_asked_for_during_one_is_not_lost(db, tmp_path):
    url = f"file://{tmp_path}/export"
    import_batch(db, [llm_call(time=BASE_TIME)])

    async def steps(conn):
        registered = await exports.register(conn, url, _NOW.date())
        assert registered.backfill_next == BASE_TIME.date()
        later = BASE_TIME.date() + timedelta(days=2)
        assert await exports.backfill_done(conn, registered.backfill_next, later)
        # `usage-api export --since` meanwhile, from the first date again.
        await exports.backfill_from(conn, BASE_TIME.date())
        # The pass, done with `later`, must not move the backfill past the date asked for.
        assert not await exports.backfill_done(conn, later, later + timedelta(days=1))
        return (await exports.state(conn)).backfill_next

    assert with_connection(db, steps) == BASE_TIME.date()


def test_a_change_marks_its_dates_whatever_the_clock():
    today = BASE_TIME.date()
    late = [BASE_TIME - timedelta(days=2), BASE_TIME + timedelta(hours=1)]
    assert exports.changed_dates("llm_calls", late, today) == {
        today - timedelta(days=2),
        today,
    }
    # An allocation's change reaches every date after its own, today's included.
    assert exports.changed_dates("workload_events", late[:1], today) == {
        today - timedelta(days=n) for n in range(3)
    }
    # An exporter whose clock is behind still marks a date another may have written.
    assert exports.changed_dates("threads", [BASE_TIME], today - timedelta(days=1)) == {today}
