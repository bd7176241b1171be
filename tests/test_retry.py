"""The retry policy on a fake clock: what is retried, how long it waits, and what a paid submit
never repeats. Nothing here really sleeps: ``sleep`` records the wait and moves the clock.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from suno_mcp.domain.errors import (
    MAX_RETRY_AFTER_S,
    AuthenticationError,
    ConfigurationError,
    InsufficientBalanceError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    SunoError,
    UpstreamConnectionError,
    UpstreamTimeoutError,
    error_from_response,
)
from suno_mcp.domain.models import MusicRequest, Status
from suno_mcp.upstream.families import TaskApi
from suno_mcp.upstream.retry import NO_RETRY, RetryPolicy, call_with_retry
from suno_mcp.upstream.transport import Upstream

pytestmark = pytest.mark.anyio

TASK_ID = "task-1"


class CeilingRng(random.Random):
    """Jitter that always picks the top of its range, so waits are exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


class FakeTime:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Attempts:
    """An attempt function that raises the given errors in order, then answers "ok"."""

    def __init__(self, *errors: SunoError) -> None:
        self._errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self._errors:
            raise self._errors.pop(0)
        return "ok"


class Always:
    """An attempt function that fails the same way every time."""

    def __init__(self, make: Callable[[], SunoError]) -> None:
        self._make = make
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        raise self._make()


async def run(
    attempt: Callable[[], Any],
    policy: RetryPolicy,
    time: FakeTime,
    *,
    idempotent: bool = True,
    deadline: float | None = None,
) -> Any:
    return await call_with_retry(
        attempt, policy=policy, idempotent=idempotent, deadline=deadline, clock=time.clock, sleep=time.sleep
    )


def policy(**kwargs: Any) -> RetryPolicy:
    kwargs.setdefault("rng", CeilingRng())
    return RetryPolicy(**kwargs)


def http_error(status: int, message: str = "upstream said no", retry_after: str | None = None) -> SunoError:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    return error_from_response(status, {"code": "error", "data": None, "message": message}, headers)


RETRYABLE_FOR_READS = [
    pytest.param(lambda: UpstreamConnectionError("refused", request_sent=False), id="connect-refused"),
    pytest.param(lambda: UpstreamConnectionError("dropped", request_sent=True), id="connection-dropped"),
    pytest.param(lambda: UpstreamTimeoutError("slow", request_sent=True), id="read-timeout"),
    pytest.param(lambda: http_error(408, "request timeout"), id="408"),
    pytest.param(lambda: http_error(429, "slow down"), id="429"),
    pytest.param(lambda: http_error(500), id="500"),
    pytest.param(lambda: http_error(502), id="502"),
    pytest.param(lambda: http_error(503), id="503"),
    pytest.param(lambda: http_error(504), id="504"),
    pytest.param(lambda: MalformedResponseError("not JSON"), id="malformed"),
]

NEVER_RETRIED = [
    pytest.param(lambda: http_error(400, "Invalid prompt"), id="400"),
    pytest.param(lambda: http_error(401, "invalid token"), id="401"),
    pytest.param(lambda: http_error(403, "insufficient balance"), id="403"),
    pytest.param(lambda: http_error(404, "Task not found"), id="404"),
    pytest.param(lambda: http_error(200, "Invalid prompt: prompt cannot be empty"), id="200-code-error"),
    pytest.param(lambda: ConfigurationError("no key"), id="no-key"),
]


# ---------------------------------------------------------------- reads


@pytest.mark.parametrize("make", RETRYABLE_FOR_READS)
async def test_read_is_retried_after_a_transient_failure(make: Callable[[], SunoError]) -> None:
    time = FakeTime()
    attempt = Attempts(make())

    assert await run(attempt, policy(max_attempts=3, base_delay=0.5), time) == "ok"
    assert attempt.calls == 2
    assert len(time.sleeps) == 1


@pytest.mark.parametrize("make", NEVER_RETRIED)
async def test_read_is_not_retried_after_a_permanent_failure(make: Callable[[], SunoError]) -> None:
    time = FakeTime()
    first = make()
    attempt = Attempts(first)

    with pytest.raises(SunoError) as caught:
        await run(attempt, policy(max_attempts=5), time)

    assert caught.value is first
    assert attempt.calls == 1
    assert time.sleeps == []


async def test_read_gives_up_after_max_attempts_with_the_last_error() -> None:
    time = FakeTime()
    attempt = Always(lambda: http_error(500, "still broken"))

    with pytest.raises(ServerError, match="still broken"):
        await run(attempt, policy(max_attempts=4, base_delay=0.1), time)

    assert attempt.calls == 4
    assert len(time.sleeps) == 3


async def test_no_retry_policy_makes_exactly_one_attempt() -> None:
    time = FakeTime()
    attempt = Always(lambda: http_error(503))

    with pytest.raises(ServerError):
        await run(attempt, NO_RETRY, time)

    assert attempt.calls == 1
    assert time.sleeps == []


# ---------------------------------------------------------------- waits


async def test_retry_after_is_the_wait() -> None:
    time = FakeTime()
    attempt = Attempts(http_error(429, "slow down", retry_after="7"))

    await run(attempt, policy(max_attempts=2, base_delay=0.1, max_delay=0.2), time)

    assert time.sleeps == [7.0]


async def test_retry_after_longer_than_the_policy_cap_is_capped() -> None:
    time = FakeTime()
    attempt = Attempts(RateLimitedError("slow down", retry_after=100.0))

    await run(attempt, policy(max_attempts=2, max_retry_after=30.0), time)

    assert time.sleeps == [30.0]


def test_retry_after_header_is_capped_when_parsed() -> None:
    error = http_error(429, retry_after="86400")

    assert isinstance(error, RateLimitedError)
    assert error.retry_after == MAX_RETRY_AFTER_S


@pytest.mark.parametrize("header", ["soon", "-5", "nan", "Wed, 21 Oct 2015 07:28:00 GMT"])
async def test_unusable_retry_after_falls_back_to_backoff(header: str) -> None:
    time = FakeTime()
    attempt = Attempts(http_error(429, retry_after=header))

    await run(attempt, policy(max_attempts=2, base_delay=0.25, max_delay=1.0), time)

    assert time.sleeps == [0.25]


async def test_backoff_doubles_up_to_max_delay() -> None:
    time = FakeTime()
    attempt = Attempts(*(http_error(502) for _ in range(6)))

    await run(attempt, policy(max_attempts=7, base_delay=0.5, max_delay=4.0), time)

    assert time.sleeps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


async def test_jittered_backoff_stays_between_half_and_all_of_each_step() -> None:
    time = FakeTime()
    attempt = Attempts(*(http_error(500) for _ in range(9)))
    jittered = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=8.0, rng=random.Random(7))

    await run(attempt, jittered, time)

    ceilings = [min(8.0, 1.0 * 2**i) for i in range(9)]
    assert len(time.sleeps) == 9
    for wait, ceiling in zip(time.sleeps, ceilings, strict=True):
        assert ceiling / 2 <= wait <= ceiling
    assert max(time.sleeps) <= 8.0


def test_jitter_spreads_waits_rather_than_repeating_one_value() -> None:
    jittered = RetryPolicy(base_delay=1.0, max_delay=8.0, rng=random.Random(3))
    waits = {jittered.delay(4, ServerError("x", status_code=500)) for _ in range(50)}

    assert len(waits) > 10
    assert all(4.0 <= w <= 8.0 for w in waits)


# ---------------------------------------------------------------- deadline


async def test_deadline_stops_a_retry_whose_wait_would_pass_it() -> None:
    time = FakeTime(now=100.0)
    attempt = Always(lambda: http_error(500, "down"))

    with pytest.raises(ServerError, match="down"):
        await run(attempt, policy(max_attempts=10, base_delay=4.0, max_delay=4.0), time, deadline=110.0)

    # Waits of 4 s: 100 -> 104 -> 108; a third wait would end at 112, past the deadline.
    assert time.sleeps == [4.0, 4.0]
    assert attempt.calls == 3


async def test_deadline_stops_a_long_retry_after() -> None:
    time = FakeTime(now=0.0)
    attempt = Attempts(RateLimitedError("slow down", retry_after=20.0))

    with pytest.raises(RateLimitedError):
        await run(attempt, policy(max_attempts=3), time, deadline=10.0)

    assert time.sleeps == []
    assert attempt.calls == 1


async def test_wait_ending_exactly_at_the_deadline_is_still_made() -> None:
    time = FakeTime(now=0.0)
    attempt = Attempts(http_error(500))

    assert await run(attempt, policy(max_attempts=2, base_delay=2.0), time, deadline=2.0) == "ok"
    assert time.sleeps == [2.0]


# ---------------------------------------------------------------- submits (idempotent=False)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: UpstreamConnectionError("dropped", request_sent=True), id="dropped"),
        pytest.param(lambda: UpstreamTimeoutError("no answer", request_sent=True), id="read-timeout"),
        pytest.param(lambda: http_error(500), id="500"),
        pytest.param(lambda: http_error(502), id="502"),
        pytest.param(lambda: http_error(503), id="503"),
        pytest.param(lambda: http_error(408), id="408"),
        pytest.param(lambda: http_error(429, retry_after="1"), id="429"),
    ],
)
async def test_submit_is_not_retried_once_it_may_have_reached_the_upstream(
    make: Callable[[], SunoError],
) -> None:
    time = FakeTime()
    first = make()
    attempt = Attempts(first)

    with pytest.raises(SunoError) as caught:
        await run(attempt, policy(max_attempts=5), time, idempotent=False)

    assert caught.value is first
    assert attempt.calls == 1
    assert time.sleeps == []


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: UpstreamConnectionError("refused", request_sent=False), id="connect-refused"),
        pytest.param(
            lambda: UpstreamTimeoutError("connect timeout", request_sent=False), id="connect-timeout"
        ),
    ],
)
async def test_submit_is_retried_when_the_request_never_left(make: Callable[[], SunoError]) -> None:
    time = FakeTime()
    attempt = Attempts(make(), make())

    assert await run(attempt, policy(max_attempts=3), time, idempotent=False) == "ok"
    assert attempt.calls == 3


def test_should_retry_reads_the_request_sent_flag_only_for_submits() -> None:
    rules = RetryPolicy()
    sent = UpstreamConnectionError("dropped", request_sent=True)
    unsent = UpstreamConnectionError("refused", request_sent=False)

    assert rules.should_retry(sent, idempotent=True)
    assert not rules.should_retry(sent, idempotent=False)
    assert rules.should_retry(unsent, idempotent=False)


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("x", status_code=401),
        InsufficientBalanceError("x", status_code=403),
        NotFoundError("x", status_code=404),
        InvalidRequestError("x", status_code=400),
    ],
    ids=lambda e: type(e).__name__,
)
def test_refusals_are_never_worth_another_try(error: SunoError) -> None:
    rules = RetryPolicy()

    assert not rules.should_retry(error, idempotent=True)
    assert not rules.should_retry(error, idempotent=False)


def test_an_unreadable_answer_is_read_again_but_never_submitted_again() -> None:
    rules = RetryPolicy()

    assert rules.should_retry(MalformedResponseError("x"), idempotent=True)
    assert not rules.should_retry(MalformedResponseError("x"), idempotent=False)


# ---------------------------------------------------------------- through the real Upstream


Reply = Callable[[httpx.Request], httpx.Response]


class Script:
    """Answers requests with the given replies in order (the last repeats); records requests."""

    def __init__(self, *replies: Reply) -> None:
        self._replies = replies
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._replies[min(len(self.requests), len(self._replies)) - 1](request)


def status(code: int, body: Any) -> Reply:
    return lambda request: httpx.Response(code, json=body)


def raising(exc_type: type[httpx.TransportError]) -> Reply:
    def reply(request: httpx.Request) -> httpx.Response:
        raise exc_type("simulated", request=request)

    return reply


FAILING = status(500, {"code": "error", "data": None, "message": "internal error"})
FETCHED = status(200, {"code": "success", "data": [{"id": TASK_ID, "status": "queued"}]})
SUBMITTED = status(200, {"code": "success", "data": TASK_ID, "message": ""})
MUSIC = MusicRequest(prompt="a tense pre-battle anthem", mv="chirp-v3-5")


@asynccontextmanager
async def task_api(script: Script, *, max_attempts: int = 4) -> AsyncIterator[TaskApi]:
    # base_delay 0: the real sleep between attempts is a zero-length checkpoint.
    retry = RetryPolicy(max_attempts=max_attempts, base_delay=0.0, max_delay=0.0)
    async with httpx.AsyncClient(transport=httpx.MockTransport(script)) as http:
        yield TaskApi(Upstream(http, base_url="https://upstream.test", api_key="k-123", retry=retry))


async def test_fetch_that_fails_twice_then_answers_succeeds_on_the_third_request() -> None:
    script = Script(FAILING, FAILING, FETCHED)
    async with task_api(script) as api:
        task = await api.fetch_one(TASK_ID)

    assert task.status is Status.PENDING
    assert len(script.requests) == 3


async def test_fetch_that_keeps_failing_stops_at_max_attempts() -> None:
    script = Script(FAILING)
    async with task_api(script, max_attempts=3) as api:
        with pytest.raises(ServerError):
            await api.fetch_one(TASK_ID)

    assert len(script.requests) == 3


async def test_fetch_dropped_mid_request_is_retried() -> None:
    script = Script(raising(httpx.RemoteProtocolError), FETCHED)
    async with task_api(script) as api:
        await api.fetch_one(TASK_ID)

    assert len(script.requests) == 2


async def test_fetch_past_its_deadline_is_not_retried() -> None:
    time = FakeTime(now=50.0)
    script = Script(FAILING, FETCHED)
    retry = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=1.0, rng=CeilingRng())
    async with httpx.AsyncClient(transport=httpx.MockTransport(script)) as http:
        up = Upstream(http, base_url="https://upstream.test", api_key="k-123", retry=retry, clock=time.clock)
        with pytest.raises(ServerError):
            await TaskApi(up).fetch_one(TASK_ID, deadline=50.5)

    assert len(script.requests) == 1


async def test_submit_answered_with_500_is_sent_exactly_once() -> None:
    script = Script(FAILING, SUBMITTED)
    async with task_api(script) as api:
        with pytest.raises(ServerError):
            await api.submit_music(MUSIC)

    assert len(script.requests) == 1


@pytest.mark.parametrize("exc_type", [httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout])
async def test_submit_lost_after_sending_is_sent_exactly_once(exc_type: type[httpx.TransportError]) -> None:
    script = Script(raising(exc_type), SUBMITTED)
    async with task_api(script) as api:
        with pytest.raises((UpstreamConnectionError, UpstreamTimeoutError)) as caught:
            await api.submit_music(MUSIC)

    assert caught.value.request_sent is True
    assert len(script.requests) == 1


@pytest.mark.parametrize("exc_type", [httpx.ConnectError, httpx.ConnectTimeout])
async def test_submit_whose_first_attempt_never_connected_is_sent_again(
    exc_type: type[httpx.TransportError],
) -> None:
    script = Script(raising(exc_type), SUBMITTED)
    async with task_api(script) as api:
        task = await api.submit_music(MUSIC)

    assert task.task_id == TASK_ID
    assert len(script.requests) == 2
    assert json.loads(script.requests[0].content) == json.loads(script.requests[1].content)


async def test_submit_rate_limited_is_not_repeated_automatically() -> None:
    script = Script(status(429, {"code": "error", "message": "slow down"}), SUBMITTED)
    async with task_api(script) as api:
        with pytest.raises(RateLimitedError):
            await api.submit_music(MUSIC)

    assert len(script.requests) == 1
