"""The one retry policy: which failures are worth another try, and how long to wait.

Reads (fetch, feed, downloads) are safe to repeat. A submit costs money, so it is
repeated only when the failed attempt provably never left this machine.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import anyio

from suno_mcp.domain.errors import (
    MAX_RETRY_AFTER_S,
    ContentPolicyError,
    MalformedResponseError,
    RateLimitedError,
    ServerError,
    SunoError,
    TransportError,
)

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with equal jitter that honours Retry-After up to a cap."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = MAX_RETRY_AFTER_S
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def should_retry(self, error: SunoError, *, idempotent: bool) -> bool:
        """True when another attempt is safe and may succeed."""
        if isinstance(error, TransportError):
            # A request that never left can always be sent again; one that may have
            # reached the upstream only when repeating it cannot charge twice.
            return idempotent or not error.request_sent
        if not idempotent or isinstance(error, ContentPolicyError):
            return False  # a refusal of the content will not change on a second try
        if isinstance(error, RateLimitedError | ServerError | MalformedResponseError):
            return True  # a garbled read (a proxy hiccup, a cut body) is worth reading again
        return error.status_code in RETRYABLE_STATUS

    def delay(self, attempt: int, error: SunoError) -> float:
        """Seconds to wait before attempt number ``attempt + 1`` (attempt counts from 1)."""
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            return min(error.retry_after, self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        # Equal jitter (half fixed, half random) spreads out clients that failed at the same moment.
        return self.rng.uniform(ceiling / 2, ceiling)


NO_RETRY = RetryPolicy(max_attempts=1)


async def call_with_retry(
    attempt_fn: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    idempotent: bool,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
) -> T:
    """Run ``attempt_fn`` until it succeeds, the policy gives up, or the deadline would pass.

    ``deadline`` is a ``clock()`` value; a retry whose wait would end after it is not made
    and the last error is raised instead.
    """
    attempt = 1
    while True:
        try:
            return await attempt_fn()
        except SunoError as error:
            if attempt >= policy.max_attempts or not policy.should_retry(error, idempotent=idempotent):
                raise
            wait = policy.delay(attempt, error)
            if deadline is not None and clock() + wait > deadline:
                raise
            await sleep(wait)
            attempt += 1
