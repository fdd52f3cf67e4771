"""Rate limits in the server process (pure, no I/O): a token bucket per API key, and one per
client address for failed authentications.

A key may send ``burst`` requests at once and ``rate`` per second sustained; beyond that it
is told how long to wait (429 with Retry-After). The same buckets count an address's
unknown keys, so guessing keys (each guess a database lookup) is slowed to the rate; a live
key is served whatever its address sent (api.web.auth). Buckets are per process: with
several server processes behind a balancer, each allows the rate.
"""

import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Buckets kept before the full ones (that tell nothing) are forgotten: an address space
# cannot fill memory.
_MAX_BUCKETS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(slots=True)
class RateLimiter:
    rate: float  # requests per second; 0 turns the limit off
    burst: int
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    # The size that next sets off forgetting: twice what was left the last time, so that
    # many buckets still refilling cost one pass per doubling, not one per request.
    _forget_at: int = _MAX_BUCKETS

    def wait(self, key: str, now: float) -> int:
        """Seconds to wait before ``key`` may send again; 0 lets this request through
        (and counts it)."""
        seconds = self.refusal(key, now)
        if seconds == 0:
            self.spend(key, now)
        return seconds

    def refusal(self, key: str, now: float) -> int:
        """Seconds until ``key`` may spend again (0: now), spending nothing."""
        if self.rate <= 0:
            return 0
        tokens = self._refilled(key, now).tokens
        return 0 if tokens >= 1 else max(1, math.ceil((1 - tokens) / self.rate))

    def spend(self, key: str, now: float) -> None:
        if self.rate <= 0:
            return
        bucket = self._refilled(key, now)
        bucket.tokens = max(bucket.tokens - 1, 0.0)
        if len(self._buckets) > self._forget_at:
            self._forget_full(now)
            self._forget_at = max(_MAX_BUCKETS, 2 * len(self._buckets))

    def _refilled(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.setdefault(key, _Bucket(tokens=self.burst, updated=now))
        elapsed = max(now - bucket.updated, 0.0)
        bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
        bucket.updated = max(now, bucket.updated)
        return bucket

    def _forget_full(self, now: float) -> None:
        self._buckets = {
            key: bucket
            for key, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.updated) * self.rate < self.burst
        }


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[IpNetwork]
) -> str:
    """Who sent the request: the peer, unless the peer is a proxy the operator trusts; then
    the nearest address in X-Forwarded-For that is not one of those proxies (what the
    farthest trusted proxy saw; every address left of it may be forged by the client)."""
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    address = peer or "unknown"
    while _is_trusted(address, trusted) and hops:
        address = hops.pop()
    return address


def _is_trusted(address: str, trusted: Sequence[IpNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)
