"""The poller's schedule, batching, sharing and limits, on a fake clock and a fake upstream.

Tests drive the poller through its public surface: ``step(now)`` polls whatever is due at ``now`` on
the fake clock, ``next_due()`` says when that is, ``waiting(ref)`` stands for someone waiting on a
task, and ``followed(task_id)`` reads what the poller knows of it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import anyio
import anyio.abc
import pytest
from pydantic import SecretStr

from suno_mcp.domain.errors import (
    LedgerUnavailableError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    SunoError,
)
from suno_mcp.domain.latency import LatencyModel, Milestone
from suno_mcp.domain.models import ApiFamily, Clip, Status, Task, TaskRef
from suno_mcp.engine.coordination import LocalCoordinator
from suno_mcp.engine.host import NoHost
from suno_mcp.engine.limiter import CUT_EVERY_S, IDLE, READ, WAITED, AdaptiveLimiter
from suno_mcp.engine.poller import NoKeyError, Poller, Timing, reached

BOUND_S = 10.0  # the longest any test here waits for something (real seconds)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeApi:
    """Answers every known task with its current status; records each fetch's refs and key."""

    def __init__(self, family: ApiFamily) -> None:
        self.family: ApiFamily = family
        self.calls: list[list[str]] = []
        self.keys: list[str | None] = []  # the key each fetch was sent with (None: the server's own)
        self.status: dict[str, Status] = {}
        self.fail_with: SunoError | None = None
        self.fail_for_key: dict[str, SunoError] = {}
        self._called = anyio.Event()

    def with_key(self, api_key: SecretStr | None) -> KeyedApi:
        return KeyedApi(self, None if api_key is None else api_key.get_secret_value())

    async def submit_music(self, request: object) -> Task:
        raise AssertionError("the poller never submits")

    async def calls_reach(self, count: int) -> None:
        while len(self.calls) < count:
            await self._called.wait()

    async def fetch(self, refs: Sequence[TaskRef], *, deadline: float | None = None) -> dict[str, Task]:
        return await self.fetch_as(None, refs)

    async def fetch_as(self, key: str | None, refs: Sequence[TaskRef]) -> dict[str, Task]:
        self.calls.append([r.task_id for r in refs])
        self.keys.append(key)
        called, self._called = self._called, anyio.Event()
        called.set()
        if self.fail_with is not None:
            raise self.fail_with
        if key in self.fail_for_key:
            raise self.fail_for_key[key]
        return {
            r.task_id: Task(
                task_id=r.task_id,
                api=self.family,
                status=self.status[r.task_id],
                clips=[Clip(id=f"{r.task_id}-c", status=self.status[r.task_id])],
            )
            for r in refs
            if r.task_id in self.status
        }


class KeyedApi:
    """The fake upstream spoken to with one tenant's key."""

    def __init__(self, api: FakeApi, key: str | None) -> None:
        self.api, self.key = api, key
        self.family = api.family

    async def fetch(self, refs: Sequence[TaskRef], *, deadline: float | None = None) -> dict[str, Task]:
        return await self.api.fetch_as(self.key, refs)


class CountingCoordinator(LocalCoordinator):
    """Grants every lease, as a lone process does, and counts them."""

    def __init__(self) -> None:
        self.leases: list[TaskRef] = []

    async def take_lease(
        self, ref: TaskRef, *, read: bool, fresh_s: float, lease_s: float, stale_s: float | None = None
    ) -> bool:
        self.leases.append(ref)
        return True

    async def close(self) -> None:
        return None


class Host(NoHost):
    """The service's side of the poller, recorded: the tenants' keys it holds (the dict is read live,
    so a test can hand a key over later) and the milestones and stalls it was told of."""

    def __init__(self, keys: Mapping[str, SecretStr] | None = None) -> None:
        self.keys: Mapping[str, SecretStr] = keys if keys is not None else {}
        self.milestones: list[tuple[str, Milestone, float]] = []
        self.stalled: list[str] = []

    def tenant_key(self, tenant: str) -> SecretStr | None:
        return self.keys.get(tenant)

    async def milestone_reached(self, ref: TaskRef, milestone: Milestone, seconds: float) -> None:
        self.milestones.append((ref.task_id, milestone, seconds))

    async def task_stalled(self, ref: TaskRef, task: Task) -> None:
        assert ref.task_id == task.task_id
        self.stalled.append(task.task_id)


TIMING = Timing(preview_s=30.0, complete_s=120.0, min_gap_s=1.0, max_gap_s=15.0)


def make(
    clock: Clock, *, max_requests_per_second: float = math.inf, **kwargs: object
) -> tuple[Poller, FakeApi, FakeApi]:
    """A poller on the fake clock; by default its requests are not paced at all."""
    task_api, clip_api = FakeApi("task"), FakeApi("clip")
    poller = Poller(
        {"task": task_api, "clip": clip_api},
        timing=TIMING,
        clock=clock,
        max_requests_per_second=max_requests_per_second,
        **kwargs,  # type: ignore[arg-type]
    )
    return poller, task_api, clip_api


async def advance(poller: Poller, clock: Clock) -> list[TaskRef]:
    """Move the clock to the next poll due and run it: the tasks polled."""
    clock.now = poller.next_due()
    return await poller.step(clock.now)


async def first_playable(
    poller: Poller, api: FakeApi, clock: Clock, playable_at: float, name: str = "t"
) -> tuple[float, int]:
    """Drive one task's schedule on the fake clock; when it was seen playable and how many polls it took."""
    ref = TaskRef(name, "task", model="m")
    started, polls = clock.now, 0
    with poller.waiting(ref, started=started):  # someone waits, as a generate_music call does
        while True:
            clock.now = poller.next_due()
            api.status[name] = Status.STREAMING if clock.now - started >= playable_at else Status.RUNNING
            assert await poller.step(clock.now) == [ref]
            polls += 1
            followed = poller.followed(name)
            assert followed is not None
            if reached(followed.task, "playable"):
                break
    poller.forget(name)  # it plays: the next task has the poller to itself
    return clock.now - started, polls


def test_polls_start_within_a_few_seconds_of_the_submit() -> None:
    clock = Clock()
    poller, _, _ = make(clock)
    poller.watch(TaskRef("t1", "task"), started=0.0)
    assert poller.next_due() == pytest.approx(TIMING.first_poll_s)


@pytest.mark.parametrize("latency", [4.0, 9.0, 30.0, 75.0, 400.0])
async def test_with_nothing_learned_the_overshoot_is_a_bounded_share_of_any_latency(latency: float) -> None:
    # The server assumes nothing: 4 s and 400 s are found alike, within a fifth plus a poll gap.
    clock = Clock()
    poller, api, _ = make(clock)
    seen, polls = await first_playable(poller, api, clock, latency)
    assert latency <= seen <= 1.2 * latency + TIMING.min_gap_s
    assert polls <= 6 + 14 * (latency / 30) ** 0.5


async def test_a_learned_window_polls_sparsely_before_it_and_densely_inside_it() -> None:
    clock = Clock()
    latency = LatencyModel(prior_playable_s=30.0, prior_complete_s=120.0, prior_lyrics_s=10.0)
    for seconds in (29.0, 30.0, 31.0, 30.5, 29.5, 30.2):
        latency.observe(("task", "music", "m"), "playable", seconds)
    poller, api, _ = make(clock, latency=latency)
    seen, polls = await first_playable(poller, api, clock, 30.0)
    assert seen <= 30.0 * 1.05
    assert polls <= 5
    cold_clock = Clock()
    cold_poller, cold_api, _ = make(cold_clock)
    _, cold_polls = await first_playable(cold_poller, cold_api, cold_clock, 30.0)
    assert polls < cold_polls


async def test_the_learned_window_follows_an_upstream_that_gets_faster_or_slower() -> None:
    clock = Clock()
    poller, api, _ = make(clock)
    for n in range(12):
        await first_playable(poller, api, clock, 30.0 + (n % 3), name=f"a{n}")
    window = poller.latency.window(("task", "music", "m"), "playable")
    assert window is not None
    assert 28 <= window.median <= 33
    for n in range(10):  # a faster model: playable after 8 s
        await first_playable(poller, api, clock, 8.0, name=f"b{n}")
    faster = poller.latency.window(("task", "music", "m"), "playable")
    assert faster is not None
    assert faster.median < 15
    seen, _ = await first_playable(poller, api, clock, 8.0, name="c")
    assert seen <= 8.0 * 1.15 + TIMING.min_gap_s
    for n in range(10):  # a slow evening: 90 s
        await first_playable(poller, api, clock, 90.0, name=f"d{n}")
    slower = poller.latency.window(("task", "music", "m"), "playable")
    assert slower is not None
    assert slower.median > 60


async def test_learned_milestones_are_reported_for_the_ledger() -> None:
    clock = Clock()
    host = Host()
    poller, api, _ = make(clock, host=host)
    await first_playable(poller, api, clock, 20.0, name="t1")
    ((task_id, milestone, seconds),) = host.milestones
    assert (task_id, milestone) == ("t1", "playable")
    assert 20.0 * 0.8 <= seconds <= 20.0 * 1.2


async def test_clip_api_tasks_due_together_are_fetched_in_one_request() -> None:
    clock = Clock()
    poller, _, clip_api = make(clock)
    for name in ("a", "b", "c"):
        clip_api.status[name] = Status.RUNNING
        poller.watch(TaskRef(name, "clip", clip_ids=(name,)), started=0.0)
    assert len(await advance(poller, clock)) == 3
    assert clip_api.calls == [["a", "b", "c"]]
    assert poller.fetches == 1


def test_many_watchers_of_one_task_share_one_watch() -> None:
    clock = Clock()
    poller, _, _ = make(clock)
    ref = TaskRef("t1", "task")
    for _ in range(20):
        poller.watch(ref, started=0.0)
    with poller.waiting(ref), poller.waiting(ref):
        assert poller.watching == 1
        followed = poller.followed("t1")
        assert followed is not None
        assert followed.waiters == 2  # both wait on the one watch
    followed = poller.followed("t1")
    assert followed is not None
    assert followed.waiters == 0


async def test_retry_after_pushes_back_every_task_of_that_family_and_is_not_a_task_error() -> None:
    clock = Clock()
    poller, task_api, _ = make(clock)
    task_api.fail_with = RateLimitedError("slow down", retry_after=40.0)
    task_api.status.update({"t1": Status.RUNNING, "t2": Status.RUNNING})
    first = TaskRef("t1", "task")
    poller.watch(first, started=0.0)
    clock.now = 27.0
    assert await poller.step(clock.now) == [first]
    followed = poller.followed("t1")
    assert followed is not None
    assert followed.next_poll_at >= 67.0
    assert poller.last_error("t1") is None  # our own pacing: nothing for a tool result to report
    poller.watch(TaskRef("t2", "task"), started=0.0)  # another task of the family, scheduled now
    second = poller.followed("t2")
    assert second is not None
    assert second.next_poll_at >= 67.0
    # A read in the meantime gives up at its deadline instead of waiting out the pause.
    assert await poller.limiter.acquire(READ, deadline=clock.now) is False


async def test_a_finished_task_is_no_longer_watched_and_a_waiter_sees_it() -> None:
    clock = Clock()
    poller, task_api, _ = make(clock)
    ref = TaskRef("t1", "task")
    task_api.status["t1"] = Status.RUNNING
    seen: list[Task | None] = []

    async def waiter() -> None:
        seen.append(await poller.wait(ref, goal="complete", wait_s=BOUND_S, started=0.0))

    with anyio.fail_after(BOUND_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()  # its first read is in: it waits for news
            task_api.status["t1"] = Status.COMPLETE
            assert await advance(poller, clock) == [ref]
    assert poller.watching == 0
    (task,) = seen
    assert task is not None
    assert reached(task, "complete")


async def test_a_task_the_upstream_never_heard_of_becomes_not_found_after_a_grace_period() -> None:
    clock = Clock()
    poller, _, _ = make(clock)
    ref = TaskRef("ghost", "task")
    with poller.waiting(ref, started=0.0):  # a waiter's dense schedule: a poll at each of these times
        for now in (30.0, 40.0, 50.0):  # three misses, all within a minute of the submit
            clock.now = now
            assert await poller.step(now) == [ref]
        assert poller.last_error("ghost") is None
        clock.now = 70.0
        assert await poller.step(clock.now) == [ref]
    assert isinstance(poller.last_error("ghost"), NotFoundError)


async def test_a_task_whose_status_never_moves_is_reported_stalled_and_no_longer_polled() -> None:
    clock = Clock()
    host = Host()
    poller, task_api, _ = make(clock, host=host)
    task_api.status["t1"] = Status.RUNNING
    seen: list[Task | None] = []

    async def waiter() -> None:
        seen.append(await poller.wait(TaskRef("t1", "task"), goal="complete", wait_s=BOUND_S, started=0.0))

    with anyio.fail_after(BOUND_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            while poller.watching and clock.now < 2 * TIMING.stall_s:
                await advance(poller, clock)
    assert host.stalled == ["t1"]
    assert poller.watching == 0
    (task,) = seen
    assert reached(task, "complete")  # its waiter stopped waiting: nothing more will come
    assert TIMING.stall_s <= clock.now <= TIMING.stall_s + TIMING.first_poll_s + TIMING.max_gap_s


async def test_the_limiter_serves_a_waiting_read_before_a_poll_nobody_waits_for() -> None:
    limiter = AdaptiveLimiter(20.0, start=20.0)  # 50 ms apart, in real time
    order: list[str] = []
    assert await limiter.acquire(IDLE)  # the first goes at once; the next two must queue

    async def take(name: str, priority: int) -> None:
        await limiter.acquire(priority)
        order.append(name)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(take, "idle poll", IDLE)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(take, "read", READ)
    assert order == ["read", "idle poll"]


async def test_the_limiter_halves_its_rate_on_a_429_and_creeps_back_up_on_clean_answers() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(10.0, start=8.0, clock=clock)
    limiter.rate_limited(retry_after=None)
    assert limiter.rate == pytest.approx(4.0)
    for _ in range(100):
        limiter.succeeded()
    assert limiter.rate == pytest.approx(10.0)  # never past the ceiling


async def test_a_burst_of_429s_halves_the_rate_once_and_a_later_429_halves_it_again() -> None:
    # Requests in flight together met one limit: six 429s for them are one signal, not six.
    clock = Clock()
    limiter = AdaptiveLimiter(10.0, start=8.0, clock=clock)
    for _ in range(6):
        limiter.rate_limited(retry_after=None)
    assert limiter.rate == pytest.approx(4.0)
    clock.now += CUT_EVERY_S / 2
    limiter.rate_limited(retry_after=2.0)
    assert limiter.rate == pytest.approx(4.0)
    assert await limiter.acquire(READ, deadline=clock.now + 1.0) is False  # yet its Retry-After holds
    clock.now += CUT_EVERY_S / 2
    limiter.rate_limited(retry_after=None)
    assert limiter.rate == pytest.approx(2.0)


async def test_a_read_that_cannot_get_a_turn_in_time_gives_up_instead_of_waiting() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(1.0, start=1.0, clock=clock)
    limiter.rate_limited(retry_after=30.0)  # nothing may go for 30 s
    assert await limiter.acquire(READ, deadline=clock.now) is False


class Turns:
    """Requests queued on one limiter in the background, each in a cancel scope of its own.

    ``answers`` holds (name, granted) in the order the limiter answered them. The limiter's clock is
    fake: nobody's turn comes until the test moves it.
    """

    def __init__(self, limiter: AdaptiveLimiter, tg: anyio.abc.TaskGroup) -> None:
        self.limiter, self._tg = limiter, tg
        self.answers: list[tuple[str, bool]] = []
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._answered = anyio.Event()

    @property
    def granted(self) -> list[str]:
        return [name for name, granted in self.answers if granted]

    async def ask(
        self, name: str, priority: int = WAITED, *, due: float = 0.0, deadline: float | None = None
    ) -> None:
        """Queue one request; return once it waits (or has its answer)."""
        scope = self._scopes[name] = anyio.CancelScope()

        async def request() -> None:
            with scope:
                granted = await self.limiter.acquire(priority, due=due, deadline=deadline)
                self.answers.append((name, granted))
                answered, self._answered = self._answered, anyio.Event()
                answered.set()

        self._tg.start_soon(request)
        await anyio.wait_all_tasks_blocked()

    async def cancel(self, name: str) -> None:
        self._scopes[name].cancel()
        await anyio.wait_all_tasks_blocked()

    async def until(self, count: int) -> None:
        while len(self.answers) < count:
            await self._answered.wait()


async def test_the_limiter_grants_turns_by_priority_then_due_then_arrival() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(1000.0, clock=clock)  # turns 1 ms apart on the fake clock
    assert await limiter.acquire()  # the first goes at once; the next turn is at 1 ms
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            turns = Turns(limiter, tg)
            await turns.ask("idle", IDLE)
            await turns.ask("waited 1", WAITED)
            await turns.ask("read due 5", READ, due=5.0)
            await turns.ask("read due 2", READ, due=2.0)
            await turns.ask("waited 2", WAITED)
            assert turns.answers == []  # the clock has not moved: nobody's turn has come
            assert limiter.queued == 5
            for n in range(1, 6):
                clock.now += 0.001
                await turns.until(n)
    assert turns.granted == ["read due 2", "read due 5", "waited 1", "waited 2", "idle"]
    assert limiter.queued == 0


async def test_a_cancelled_request_leaves_the_queue_and_the_others_keep_their_order() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(1000.0, clock=clock)
    assert await limiter.acquire()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            turns = Turns(limiter, tg)
            for name in ("a", "b", "c", "d"):
                await turns.ask(name)
            await turns.cancel("b")  # one in the middle of the queue
            assert limiter.queued == 3
            await turns.cancel("a")  # the head: the turn it slept towards is c's now
            assert limiter.queued == 2
            clock.now += 0.001
            await turns.until(1)
            clock.now += 0.001
            await turns.until(2)
    assert turns.answers == [("c", True), ("d", True)]
    assert limiter.queued == 0
    assert not await limiter.acquire(deadline=clock.now)  # the next turn is 1 ms on, as the rate says
    clock.now += 0.001
    assert await limiter.acquire(deadline=clock.now)


async def test_a_request_whose_turn_cannot_come_before_its_deadline_is_refused_at_once() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(1.0, clock=clock)  # one turn a second
    assert await limiter.acquire()  # the next turn is at 1 s
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            turns = Turns(limiter, tg)
            await turns.ask("poll 1")
            await turns.ask("poll 2")  # turns at 1 s and 2 s
            # Behind both, its turn would be at 3 s: refused now, not once 2.5 s have passed.
            assert await limiter.acquire(WAITED, deadline=2.5) is False
            await turns.ask("read", deadline=3.5)  # its turn, at 3 s, comes in time: it waits
            assert turns.answers == []
            await turns.ask("urgent", READ)  # ahead of all three: the read's turn moves to 4 s
            assert turns.answers == [("read", False)]  # it gives up at once
            assert limiter.queued == 3
            tg.cancel_scope.cancel()


async def test_retry_after_holds_every_turn_back_until_it_has_passed() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(1000.0, clock=clock)
    # Short holds: the fake clock decides who goes, but a queued request naps (for real) until the
    # time its turn is due, then looks at the clock again.
    limiter.rate_limited(retry_after=0.02)  # at 0: nothing may go before 20 ms
    assert await limiter.acquire(READ, deadline=0.01) is False  # the hold outlasts its deadline
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            turns = Turns(limiter, tg)
            await turns.ask("poll")
            await turns.ask("read", READ, deadline=0.05)
            limiter.rate_limited(retry_after=0.07)  # another 429: the read cannot make it any more
            await anyio.wait_all_tasks_blocked()
            assert turns.answers == [("read", False)]
            clock.now = 0.069
            await anyio.wait_all_tasks_blocked()
            assert turns.answers == [("read", False)]
            clock.now = 0.07
            await turns.until(2)
    assert turns.answers == [("read", False), ("poll", True)]


# ------------------------------------------------------------ tenants


KEYS = {"t-a": SecretStr("key-of-a"), "t-b": SecretStr("key-of-b")}


async def test_a_tenants_tasks_are_fetched_with_that_tenants_key_and_the_servers_with_its_own() -> None:
    clock = Clock()
    poller, task_api, _ = make(clock, host=Host(KEYS))
    task_api.status.update({"mine": Status.RUNNING, "theirs": Status.RUNNING})
    poller.watch(TaskRef("theirs", "task", tenant="t-a"), started=0.0)
    poller.watch(TaskRef("mine", "task"), started=0.0)
    assert len(await advance(poller, clock)) == 2
    keys_by_task = {tuple(ids): key for ids, key in zip(task_api.calls, task_api.keys, strict=True)}
    assert keys_by_task == {("theirs",): "key-of-a", ("mine",): None}
    assert poller.checked_at("theirs", tenant="t-a") == clock.now
    assert poller.checked_at("theirs") is None  # another tenant's task of the same id is another watch


async def test_one_task_id_under_two_tenants_is_two_watches() -> None:
    poller, _, _ = make(Clock(), host=Host(KEYS))
    poller.watch(TaskRef("same", "task", tenant="t-a"), started=0.0)
    poller.watch(TaskRef("same", "task", tenant="t-b"), started=0.0)
    assert poller.watching == 2
    poller.forget("same", tenant="t-a")
    assert poller.watching == 1
    assert poller.followed("same", tenant="t-a") is None
    poller.watch(TaskRef("same", "task", tenant="t-b"))
    assert poller.watching == 1
    followed = poller.followed("same", tenant="t-b")
    assert followed is not None
    assert followed.ref.tenant == "t-b"


async def test_a_tenant_without_a_key_here_is_not_polled_until_its_next_call_brings_the_key() -> None:
    clock = Clock()
    held: dict[str, SecretStr] = {}  # this process restarted: it has seen nobody's key yet
    coordinator = CountingCoordinator()
    poller, task_api, _ = make(clock, host=Host(held), coordinator=coordinator)
    task_api.status["t1"] = Status.RUNNING
    ref = TaskRef("t1", "task", tenant="t-a")
    poller.watch(ref, started=0.0)
    assert await advance(poller, clock) == [ref]
    assert task_api.calls == []
    assert coordinator.leases == []  # no lease either: a replica that holds the key polls it
    error = poller.last_error("t1", tenant="t-a")
    assert isinstance(error, NoKeyError)
    assert "next call" in error.message
    assert poller.next_due() > clock.now  # still scheduled, not dropped

    held["t-a"] = KEYS["t-a"]  # the tenant calls again
    poller.watch(ref)
    assert poller.watching == 1
    assert poller.last_error("t1", tenant="t-a") is None
    assert await advance(poller, clock) == [ref]
    assert task_api.keys == ["key-of-a"]
    assert coordinator.leases == [ref]
    followed = poller.followed("t1", tenant="t-a")
    assert followed is not None
    assert followed.task is not None
    assert followed.task.status is Status.RUNNING


async def test_clip_feed_batches_hold_one_tenant_each() -> None:
    clock = Clock()
    poller, _, clip_api = make(clock, host=Host(KEYS))
    for name, tenant in (("a1", "t-a"), ("a2", "t-a"), ("b1", "t-b"), ("s1", "")):
        clip_api.status[name] = Status.RUNNING
        poller.watch(TaskRef(name, "clip", clip_ids=(name,), tenant=tenant), started=0.0)
    clock.now = 10.0  # every one of them is due
    assert len(await poller.step(clock.now)) == 4
    batches = sorted(zip(clip_api.keys, clip_api.calls, strict=True), key=lambda kc: str(kc[0]))
    assert batches == [(None, ["s1"]), ("key-of-a", ["a1", "a2"]), ("key-of-b", ["b1"])]


async def test_a_busy_tenants_queue_does_not_delay_another_tenants_request() -> None:
    clock = Clock()
    poller, _, _ = make(clock, host=Host(KEYS), tenant_max_rps=0.01)
    served: list[str] = []
    assert await poller.acquire("t-a", READ)  # its next request is due 100 s later

    async def busy(n: int) -> None:
        await poller.acquire("t-a", READ)
        served.append(f"busy {n}")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for n in range(5):
                tg.start_soon(busy, n)
            await anyio.wait_all_tasks_blocked()
            clock.now = 1.0  # the shared limiter's next turn; t-a's is 99 s away
            assert await poller.acquire("t-b", READ, deadline=clock.now)  # at once, though five of t-a's wait
            served.append("other tenant")
            clock.now = 2.0
            assert await poller.acquire("", READ, deadline=clock.now)  # the server's own key too
            served.append("server")
            tg.cancel_scope.cancel()
    assert served == ["other tenant", "server"]


class PauseRecorder(LocalCoordinator):
    """A lone replica's coordinator that records the 429s it passes on, each once ``release`` is set."""

    def __init__(self) -> None:
        self.pauses: list[tuple[str, ApiFamily | None, float | None]] = []
        self.release, self.told = anyio.Event(), anyio.Event()

    async def paused(self, tenant: str, family: ApiFamily | None, retry_after: float | None) -> None:
        await self.release.wait()
        self.pauses.append((tenant, family, retry_after))
        self.told.set()


async def test_a_running_poller_passes_a_429_on_to_the_other_replicas_beside_its_answer() -> None:
    clock = Clock()
    recorder = PauseRecorder()
    poller, task_api, _ = make(clock, host=Host(KEYS), coordinator=recorder)
    task_api.fail_for_key["key-of-a"] = RateLimitedError("slow down", retry_after=40.0)
    task_api.status["a1"] = Status.RUNNING
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(poller.run)
            await anyio.wait_all_tasks_blocked()
            # The read is answered while the notice is still held back: it does not wait for it.
            await poller.wait(TaskRef("a1", "task", tenant="t-a"), goal="complete", wait_s=0, started=0.0)
            assert recorder.pauses == []
            recorder.release.set()
            await recorder.told.wait()
            tg.cancel_scope.cancel()
    assert recorder.pauses == [("t-a", "task", 40.0)]


async def test_a_429_on_one_tenants_request_slows_that_tenant_alone() -> None:
    clock = Clock()
    # Paced (very fast) so that the test can see the shared limiter does not halve.
    poller, task_api, _ = make(clock, host=Host(KEYS), max_requests_per_second=1e9, tenant_max_rps=10.0)
    task_api.fail_for_key["key-of-a"] = RateLimitedError("slow down", retry_after=40.0)
    task_api.status.update({"a1": Status.RUNNING, "b1": Status.RUNNING})
    of_a, of_b = TaskRef("a1", "task", tenant="t-a"), TaskRef("b1", "task", tenant="t-b")
    poller.watch(of_a, started=0.0)
    poller.watch(of_b, started=1.0)  # its first poll comes a second after a's
    assert await advance(poller, clock) == [of_a]
    followed_a = poller.followed("a1", tenant="t-a")
    assert followed_a is not None
    assert followed_a.next_poll_at >= clock.now + 40.0  # its key's Retry-After
    assert await advance(poller, clock) == [of_b]
    followed_b = poller.followed("b1", tenant="t-b")
    assert followed_b is not None
    assert followed_b.task is not None
    assert followed_b.next_poll_at < followed_a.next_poll_at
    clock.now += 1.0
    assert await poller.acquire("t-a", READ, deadline=clock.now) is False
    assert await poller.acquire("t-b", READ, deadline=clock.now) is True
    clock.now += 1.0
    assert await poller.acquire("", READ, deadline=clock.now) is True
    assert poller.limiter.rate == pytest.approx(1e9)  # the shared limiter did not halve


class LedgerDown(Host):
    """A host whose ledger does not answer: every state a poll brings fails to be stored."""

    async def task_fetched(self, ref: TaskRef, task: Task) -> None:
        raise LedgerUnavailableError("the ledger did not answer (test)")


async def test_a_poll_during_a_ledger_outage_says_so_in_one_line_and_the_tasks_error_names_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    poller, api, _ = make(clock)
    poller.host = LedgerDown()
    api.status["t1"] = Status.RUNNING
    poller.watch(TaskRef("t1", "task"), started=0.0)
    with caplog.at_level(logging.WARNING, logger="suno_mcp.engine.poller"):
        await advance(poller, clock)
    error = poller.last_error("t1")
    assert isinstance(error, LedgerUnavailableError)  # not "failed unexpectedly": the person hears why
    (record,) = [r for r in caplog.records if r.name == "suno_mcp.engine.poller"]
    assert record.levelno == logging.WARNING
    assert not record.exc_info  # no traceback for an outage
    assert "the ledger did not answer" in record.getMessage()
    # The poller carries on: the next poll, with the ledger back, stores the state.
    poller.host = Host()
    await advance(poller, clock)
    assert poller.last_error("t1") is None


async def test_failed_polls_count_against_the_fixed_loops_budget_too() -> None:
    # Learned: previews at 5-8 s, finals at 18 s or later, so the 5 s loop makes at least 4 fetches.
    latency = LatencyModel(prior_playable_s=30.0, prior_complete_s=120.0, prior_lyrics_s=10.0)
    for playable, complete in ((5.0, 18.0), (6.0, 20.0), (7.0, 22.0), (8.0, 25.0)):
        latency.observe_task(("task", "music", "m"), playable, complete)
    clock = Clock()
    poller, api, _ = make(clock, latency=latency)
    api.fail_with = ServerError("the upstream is having a bad minute", status_code=503)
    ref = TaskRef("t", "task", model="m")
    with poller.waiting(ref, started=clock.now):
        while clock.now < 60.0:
            await advance(poller, clock)
    # Every request the upstream saw counts, answered or not: no more than the loop's by then.
    assert len(api.calls) <= math.ceil(clock.now / 5.0)
