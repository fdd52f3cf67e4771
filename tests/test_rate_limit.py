"""The per-key rate limit: a token bucket (pure), and the 429 it gives over HTTP."""

import ipaddress
from fractions import Fraction

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import TestClient

from api.core.rate_limit import RateLimiter, client_address
from api.settings import Settings
from api.storage.keys import Scope
from api.web.app import create_app
from testkit.database import rows
from testkit.factories import llm_call, post_events
from testkit.faults import wait_for
from testkit.server import ANY_AGE, live_server

_gaps = st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=60)


@given(
    rate=st.sampled_from([0.5, 1.0, 2.0, 10.0]),
    burst=st.integers(min_value=1, max_value=5),
    gaps_ms=_gaps,
)
def test_no_span_lets_through_more_than_burst_plus_rate_times_its_length(rate, burst, gaps_ms):
    limiter = RateLimiter(rate, burst)
    times, now = [], 0
    for gap in gaps_ms:
        now += gap
        if limiter.wait("k", now / 1000) == 0:
            times.append(Fraction(now, 1000))
    for first in range(len(times)):
        for last in range(first, len(times)):
            span = times[last] - times[first]
            assert last - first + 1 <= burst + Fraction(rate) * span + Fraction(1, 10**9)


@given(rate=st.sampled_from([0.5, 1.0, 3.0]), burst=st.integers(min_value=1, max_value=5))
def test_a_refused_key_is_let_through_once_it_waited_as_told(rate, burst):
    limiter = RateLimiter(rate, burst)
    now = 100.0
    for _ in range(burst):
        assert limiter.wait("k", now) == 0
    wait = limiter.wait("k", now)
    assert wait >= 1
    assert limiter.wait("other", now) == 0  # keys do not share a bucket
    assert limiter.wait("k", now + wait) == 0


def test_a_rate_of_zero_never_limits():
    limiter = RateLimiter(0, 1)
    assert all(limiter.wait("k", 0.0) == 0 for _ in range(1000))


def test_over_the_limit_is_429_with_retry_after_and_changes_nothing(
    database_url, db, ingest_key, read_key
):
    settings = Settings(database_url=database_url, rate_limit=0.2, rate_burst=2, **ANY_AGE)
    with TestClient(app=create_app(settings)) as client:
        assert [
            post_events(client, ingest_key, [llm_call(id=f"r{n}")]).status_code for n in range(2)
        ] == [200, 200]
        refused = post_events(client, ingest_key, [llm_call(id="r-refused")])
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["status"] == 429
        # another key has its own allowance
        answer = client.get("/orgs/acme/usage/llm", headers={"Authorization": f"Bearer {read_key}"})
        assert answer.status_code == 200
    assert sorted(row[2] for row in rows(db, "event_receipts")) == ["r0", "r1"]


def test_unknown_keys_from_one_address_are_slowed_to_the_rate(database_url, db, read_key):
    settings = Settings(
        database_url=database_url, rate_limit=0, auth_failure_rate=0.01, auth_failure_burst=3
    )
    with TestClient(app=create_app(settings)) as client:
        guesses = [
            client.get("/orgs/acme/usage/llm", headers={"Authorization": f"Bearer guess-{n}"})
            for n in range(5)
        ]
        assert [guess.status_code for guess in guesses] == [401, 401, 401, 429, 429]
        assert int(guesses[-1].headers["retry-after"]) >= 1
        assert guesses[-1].headers["content-type"] == "application/problem+json"
        metrics = client.get("/metrics").text
        assert "usage_auth_failures_limited_total 2.0" in metrics


def test_valid_keys_spend_nothing_of_the_failure_allowance(database_url, db, read_key, ingest_key):
    settings = Settings(
        database_url=database_url,
        rate_limit=0,
        auth_failure_rate=0.01,
        auth_failure_burst=1,
        **ANY_AGE,
    )
    with TestClient(app=create_app(settings)) as client:
        assert post_events(client, ingest_key, [llm_call()]).status_code == 200
        for _ in range(20):
            answer = client.get(
                "/orgs/acme/usage/llm", headers={"Authorization": f"Bearer {read_key}"}
            )
            assert answer.status_code == 200
        assert (
            client.get(
                "/orgs/acme/usage/llm", headers={"Authorization": "Bearer guess"}
            ).status_code
            == 401
        )


PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")]


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("203.0.113.9", None, "203.0.113.9"),
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not a trusted proxy: its word is ignored
        ("10.1.2.3", "198.51.100.1", "198.51.100.1"),
        ("10.1.2.3", "6.6.6.6, 198.51.100.1, 10.0.0.5", "198.51.100.1"),  # 6.6.6.6 may be forged
        ("::1", "198.51.100.1", "198.51.100.1"),
        ("10.1.2.3", None, "10.1.2.3"),
        ("10.1.2.3", "10.0.0.1, 10.0.0.2", "10.0.0.1"),
        ("10.1.2.3", "not-an-address", "not-an-address"),
        (None, None, "unknown"),
    ],
)
def test_the_client_is_the_nearest_untrusted_hop(peer, forwarded_for, client):
    assert client_address(peer, forwarded_for, PROXIES) == client


@pytest.mark.parametrize(
    ("trusted_proxies", "statuses"),
    [("", [401] * 3 + [429] * 5), ("127.0.0.1", [401] * 8)],
    ids=["no trusted proxy", "the peer a trusted proxy"],
)
def test_x_forwarded_for_is_believed_from_trusted_proxies_only(
    database_url, trusted_proxies, statuses
):
    """Over the real server: unknown keys, each with another forged X-Forwarded-For, from
    127.0.0.1. uvicorn's proxy headers, on by default, trusted 127.0.0.1 and replaced the
    peer with the forged address before the limit saw it: 30 guesses got 30 x 401."""
    with live_server(
        database_url,
        USAGE_RATE_LIMIT="0",
        USAGE_AUTH_FAILURE_RATE="0.01",
        USAGE_AUTH_FAILURE_BURST="3",
        USAGE_TRUSTED_PROXIES=trusted_proxies,
    ) as url:
        answers = [
            httpx.get(
                f"{url}/orgs/acme/usage/llm",
                headers={
                    "Authorization": f"Bearer guess-{n}",
                    "X-Forwarded-For": f"198.51.100.{n}",
                },
                timeout=30,
            )
            for n in range(8)
        ]
    assert [answer.status_code for answer in answers] == statuses


@given(keys=st.lists(st.integers(0, 10**6), min_size=1, max_size=300))
def test_full_buckets_are_forgotten_without_changing_any_answer(keys):
    remembering, forgetting = RateLimiter(1.0, 2), RateLimiter(1.0, 2)
    for step, key in enumerate(keys):
        now = step * 0.1
        assert remembering.refusal(str(key), now) == forgetting.refusal(str(key), now)
        remembering.spend(str(key), now)
        forgetting.spend(str(key), now)
        forgetting._forget_full(now)


def test_a_live_key_is_served_from_an_address_slowed_for_guessing(
    database_url, db, read_key, ingest_key, new_key, revoke
):
    """Behind a shared NAT, a neighbour's guesses do not lock a tenant out: the key known
    when the server started, one created while it runs (never used before), and one already
    used are all served; the guesses stay slowed, and a revoked key counts as a guess."""
    settings = Settings(
        database_url=database_url,
        rate_limit=0,
        auth_failure_rate=0.01,
        auth_failure_burst=2,
        **ANY_AGE,
    )

    def read(client: TestClient, key: str) -> int:
        answer = client.get("/orgs/acme/usage/llm", headers={"Authorization": f"Bearer {key}"})
        return answer.status_code

    with TestClient(app=create_app(settings)) as client:
        key_cache = client.app.state.key_cache
        wait_for(lambda: key_cache.listening, 10, "the key listener")
        assert post_events(client, ingest_key, [llm_call()]).status_code == 200
        assert [read(client, f"guess-{n}") for n in range(4)] == [401, 401, 429, 429]
        assert read(client, read_key) == 200
        created = new_key(Scope.READ, "acme")
        wait_for(lambda: key_cache.is_live(created.key), 10, "the new key heard")
        assert read(client, created.key) == 200
        assert read(client, created.key) == 200
        assert read(client, "guess-after") == 429
        assert revoke(created.key_id)
        wait_for(lambda: read(client, created.key) != 200, 10, "the revocation heard")
        assert read(client, created.key) == 429
