"""Fixtures of the usage routes' tests."""

import pytest

from testkit.factories import llm_call, one_of_each, post_events


@pytest.fixture
def usage(client, db, ingest_key):
    """acme and globex with one event of each type; a GET helper with a key."""
    assert post_events(client, ingest_key, one_of_each()).status_code == 200
    assert post_events(client, ingest_key, [llm_call(org="globex")]).status_code == 200

    def get(path: str, key: str, **params):
        return client.get(path, params=params, headers={"Authorization": f"Bearer {key}"})

    return get
