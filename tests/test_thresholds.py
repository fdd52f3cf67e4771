"""Thresholds as stored (§10): created with a new secret each, listed per organization in
creation order, found and deleted by id within their organization only."""

from api.storage.thresholds import (
    create_threshold,
    delete_threshold,
    find_threshold,
    list_thresholds,
)
from testkit.database import rows, with_connection

_SPEC = {
    "section": "llm",
    "measure": "input_tokens",
    "period": "day",
    "tz": "Europe/Berlin",
    "limit": 1_000_000.0,
    "filters": {"model": ["gpt-5"]},
    "url": "https://hooks.example.com/usage",
}


def test_a_threshold_is_kept_per_organization(db):
    async def scenario(conn):
        first, first_secret = await create_threshold(conn, "acme", **_SPEC)
        second, second_secret = await create_threshold(conn, "acme", **{**_SPEC, "limit": 5.0})
        other, _ = await create_threshold(conn, "globex", **_SPEC)
        assert first_secret != second_secret and first.threshold_id != second.threshold_id
        assert first.filters == {"model": ["gpt-5"]} and first.limit == 1_000_000.0
        listed = await list_thresholds(conn, "acme")
        assert [t.threshold_id for t in listed] == [first.threshold_id, second.threshold_id]
        assert await find_threshold(conn, "acme", other.threshold_id) is None
        assert await find_threshold(conn, "globex", other.threshold_id) == other
        assert not await delete_threshold(conn, "acme", other.threshold_id)
        assert await delete_threshold(conn, "acme", first.threshold_id)
        assert not await delete_threshold(conn, "acme", first.threshold_id)
        return [t.threshold_id for t in await list_thresholds(conn, "acme")], second

    remaining, second = with_connection(db, scenario)
    assert remaining == [second.threshold_id]
    assert ("globex",) in rows(db, "orgs")
