"""Per-key rate limit: a token bucket per API key, in the server process (pure, no I/O).

A key may send ``burst`` requests at once and ``rate`` per second sustained; beyond that it
is told how long to wait (429 with Retry-After). Buckets are per process: with several
server processes behind a balancer, each allows the rate.
"""

import math
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(slots=True)
class RateLimiter:
    rate: float  # requests per second; 0 turns the limit off
    burst: int
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def wait(self, key_id: str, now: float) -> int:
        """Seconds to wait before ``key_id`` may send again; 0 lets this request through
        (and counts it)."""
        if self.rate <= 0:
            return 0
        bucket = self._buckets.setdefault(key_id, _Bucket(tokens=self.burst, updated=now))
        elapsed = max(now - bucket.updated, 0.0)
        bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
        bucket.updated = max(now, bucket.updated)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0
        return max(1, math.ceil((1 - bucket.tokens) / self.rate))
