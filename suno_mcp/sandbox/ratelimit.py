"""A rate limit of the sandbox's own: a token bucket over API requests, shared or per key.

The vendor publishes no numbers, so nothing here imitates a known limit; it exists so a load
benchmark can meet 429s that come from load rather than from a fault draw. Rates are per second
of the sandbox's clock (real time unless a test passes a fake clock) and are not scaled by the
sandbox speed: a limit is about how hard the client hits the server, not about render time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

# Per-key buckets are forgotten beyond this many keys (oldest first), so a client that invents
# a key per request cannot grow the sandbox without bound.
MAX_KEYS = 10_000


@dataclass
class TokenBucket:
    """``burst`` tokens that refill at ``rate`` per second; one request takes one token."""

    rate: float
    burst: float
    tokens: float
    stamp: float

    def take(self, now: float) -> float:
        """0.0 when a token was taken; otherwise the seconds until one will be there."""
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


def default_burst(rps: float) -> int:
    """The burst a limit gets when none is given: one second's worth, at least one request."""
    return max(1, math.ceil(rps))


def check_rate_limit(rps: float | None, burst: int | None) -> None:
    """Raise ValueError on a limit that cannot work."""
    if rps is None:
        if burst is not None:
            raise ValueError("rate_burst needs rate_limit_rps")
        return
    if not (rps > 0 and math.isfinite(rps)):
        raise ValueError("rate_limit_rps must be a positive number of requests per second")
    if burst is not None and burst < 1:
        raise ValueError("rate_burst must be at least 1")


class RateLimiter:
    """Admits or refuses requests; ``per_key`` gives every API key its own bucket."""

    def __init__(self, rps: float, burst: int | None, *, per_key: bool, clock: Callable[[], float]) -> None:
        check_rate_limit(rps, burst)
        self.rps = rps
        self.burst = burst if burst is not None else default_burst(rps)
        self.per_key = per_key
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def admit(self, key: str) -> float | None:
        """None when the request may go on; else the seconds until the next token."""
        name = key if self.per_key else ""
        bucket = self._buckets.get(name)
        now = self._clock()
        if bucket is None:
            if len(self._buckets) >= MAX_KEYS:
                del self._buckets[next(iter(self._buckets))]
            bucket = self._buckets[name] = TokenBucket(self.rps, float(self.burst), float(self.burst), now)
        wait = bucket.take(now)
        return None if wait == 0.0 else wait

    def describe(self) -> dict[str, object]:
        """The limit's settings as JSON (never the keys)."""
        return {"rps": self.rps, "burst": self.burst, "per_key": self.per_key}


def retry_after_header(wait_s: float) -> str:
    """Retry-After in whole seconds (the header has no fractions), never 0."""
    return str(max(1, math.ceil(wait_s)))
