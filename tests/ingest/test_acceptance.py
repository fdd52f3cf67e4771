"""The acceptance window of POST /events (§5.1): the last USAGE_ACCEPT_DAYS days, older
events refused with the way to load them, nothing stored."""

from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import TestClient

from api.settings import Settings, ages
from api.web.app import create_app
from testkit.database import rows
from testkit.factories import llm_call, post_events


@pytest.fixture
def default_window(database_url) -> TestClient:
    """The app as configured by default: events up to 35 days old."""
    settings = Settings(database_url=database_url, rate_limit=0, auth_failure_rate=0)
    with TestClient(app=create_app(settings)) as client:
        yield client


def test_an_event_older_than_35_days_is_refused_and_names_import(db, default_window, ingest_key):
    now = datetime.now(UTC)
    batch = [llm_call(time=now - timedelta(days=34)), llm_call(time=now - timedelta(days=36))]
    refused = post_events(default_window, ingest_key, batch)
    assert refused.status_code == 422
    (error,) = refused.json()["errors"]
    assert error["index"] == 1 and error["field"] == "time"
    assert "more than 35 days old" in error["message"]
    assert "usage-api import" in error["message"]
    assert rows(db, "event_receipts") == [] and rows(db, "llm_calls") == []  # nothing stored

    assert post_events(default_window, ingest_key, batch[:1]).status_code == 200


def test_the_window_is_configurable(db, database_url, ingest_key):
    settings = Settings(database_url=database_url, rate_limit=0, accept_days=2)
    with TestClient(app=create_app(settings)) as client:
        now = datetime.now(UTC)
        kept = post_events(client, ingest_key, [llm_call(time=now - timedelta(days=1))])
        assert kept.status_code == 200
        old = post_events(client, ingest_key, [llm_call(time=now - timedelta(days=3))])
        assert old.status_code == 422
        assert "more than 2 days old" in old.json()["errors"][0]["message"]


def test_the_window_may_not_outlast_the_raw_retention(monkeypatch):
    monkeypatch.setenv("USAGE_ACCEPT_DAYS", "500")
    monkeypatch.setenv("USAGE_RAW_RETENTION_DAYS", "400")
    with pytest.raises(SystemExit, match="must not exceed USAGE_RAW_RETENTION_DAYS"):
        ages()
    monkeypatch.setenv("USAGE_ACCEPT_DAYS", "0")
    with pytest.raises(SystemExit, match="USAGE_ACCEPT_DAYS must be a number from 1"):
        ages()
    monkeypatch.delenv("USAGE_ACCEPT_DAYS")
    monkeypatch.delenv("USAGE_RAW_RETENTION_DAYS")
    assert ages() == {"accept_days": 35, "raw_retention_days": 400}
