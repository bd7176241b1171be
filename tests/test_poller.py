"""The poller's schedule, batching, sharing and limits, on a fake clock and a fake upstream."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest

from suno_mcp.client import TaskRef
from suno_mcp.errors import NotFoundError, RateLimitedError, SunoError
from suno_mcp.models import ApiFamily, Clip, Status, Task
from suno_mcp.poller import Poller, RateLimiter, Timing, reached


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeApi:
    """Answers every known task with its current status; records each fetch's refs."""

    def __init__(self, family: ApiFamily) -> None:
        self.family: ApiFamily = family
        self.calls: list[list[str]] = []
        self.status: dict[str, Status] = {}
        self.fail_with: SunoError | None = None

    async def submit_music(self, request: object) -> Task:
        raise AssertionError("the poller never submits")

    async def fetch(self, refs: Sequence[TaskRef], *, deadline: float | None = None) -> dict[str, Task]:
        self.calls.append([r.task_id for r in refs])
        if self.fail_with is not None:
            raise self.fail_with
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


class NoWait(RateLimiter):
    def __init__(self) -> None:
        super().__init__(1.0)

    async def acquire(self) -> None:
        return None


TIMING = Timing(preview_s=30.0, complete_s=120.0, min_gap_s=1.0, max_gap_s=15.0)


def make(clock: Clock) -> tuple[Poller, FakeApi, FakeApi]:
    task_api, clip_api = FakeApi("task"), FakeApi("clip")
    poller = Poller({"task": task_api, "clip": clip_api}, timing=TIMING, clock=clock, limiter=NoWait())
    return poller, task_api, clip_api


def test_the_first_poll_lands_just_before_the_usual_preview_time() -> None:
    clock = Clock()
    poller, _, _ = make(clock)
    watch = poller.watch(TaskRef("t1", "task"), started=0.0)
    assert watch.next_at == pytest.approx(0.9 * TIMING.preview_s)


async def test_polls_are_dense_in_the_expected_window_and_back_off_to_the_cap_after_it() -> None:
    clock = Clock()
    poller, task_api, _ = make(clock)
    task_api.status["t1"] = Status.PENDING
    watch = poller.watch(TaskRef("t1", "task"), started=0.0)
    gaps = []
    for _ in range(40):
        clock.now = watch.next_at
        before = watch.next_at
        await poller._poll_batch("task", [watch])
        gaps.append(watch.next_at - before)
    in_window = [g for g, t in zip(gaps, range(40), strict=True) if t < 5]
    assert max(in_window) == pytest.approx(0.04 * TIMING.preview_s)
    assert all(later >= earlier - 1e-9 for earlier, later in itertools.pairwise(gaps))  # never denser later
    assert gaps[-1] == pytest.approx(TIMING.max_gap_s)


async def test_a_playable_task_is_next_polled_near_the_usual_completion_time() -> None:
    clock = Clock()
    poller, task_api, _ = make(clock)
    task_api.status["t1"] = Status.STREAMING
    watch = poller.watch(TaskRef("t1", "task"), started=0.0)
    clock.now = 30.0
    await poller._poll_batch("task", [watch])
    assert watch.next_at == pytest.approx(0.9 * TIMING.complete_s)


async def test_clip_api_tasks_due_together_are_fetched_in_one_request() -> None:
    clock = Clock()
    poller, _, clip_api = make(clock)
    watches = []
    for name in ("a", "b", "c"):
        clip_api.status[name] = Status.RUNNING
        watches.append(poller.watch(TaskRef(name, "clip", clip_ids=(name,)), started=0.0))
    await poller._poll_batch("clip", watches)
    assert clip_api.calls == [["a", "b", "c"]]
    assert poller.fetches == 1


def test_many_watchers_of_one_task_share_one_watch() -> None:
    clock = Clock()
    poller, _, _ = make(clock)
    watches = {id(poller.watch(TaskRef("t1", "task"), started=0.0)) for _ in range(20)}
    assert len(watches) == 1
    assert poller.watching == 1


async def test_retry_after_pushes_back_every_task_of_that_family() -> None:
    clock = Clock()
    poller, task_api, _ = make(clock)
    task_api.fail_with = RateLimitedError("slow down", retry_after=40.0)
    task_api.status.update({"t1": Status.RUNNING, "t2": Status.RUNNING})
    first = poller.watch(TaskRef("t1", "task"), started=0.0)
    second = poller.watch(TaskRef("t2", "task"), started=0.0)
    clock.now = 27.0
    await poller._poll_batch("task", [first])
    assert first.next_at >= 67.0
    assert poller.last_error("t1") is task_api.fail_with
    task_api.fail_with = None
    await poller._poll_batch("task", [second])
    assert second.next_at >= 67.0


async def test_a_finished_task_is_no_longer_watched_and_a_waiter_sees_it() -> None:
    clock = Clock()
    poller, task_api, _ = make(clock)
    task_api.status["t1"] = Status.COMPLETE
    watch = poller.watch(TaskRef("t1", "task"), started=0.0)
    await poller._poll_batch("task", [watch])
    assert poller.watching == 0
    assert reached(watch.task, "complete")


async def test_a_task_the_upstream_never_heard_of_becomes_not_found_after_a_grace_period() -> None:
    clock = Clock()
    poller, _, _ = make(clock)
    watch = poller.watch(TaskRef("ghost", "task"), started=0.0)
    for now in (30.0, 40.0, 50.0):  # three misses, all within a minute of the submit
        clock.now = now
        await poller._poll_batch("task", [watch])
    assert watch.error is None
    clock.now = 70.0
    await poller._poll_batch("task", [watch])
    assert isinstance(watch.error, NotFoundError)


async def test_the_rate_limiter_spaces_requests_by_its_interval() -> None:
    clock = Clock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    limiter = RateLimiter(4.0, clock=clock, sleep=sleep)
    for _ in range(5):
        await limiter.acquire()
    assert slept == pytest.approx([0.25, 0.25, 0.25, 0.25])
