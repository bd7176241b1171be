"""The poller in team mode: each tenant's tasks are fetched with that tenant's own key, batches
never mix keys, a tenant whose key this process lacks is not fetched, and one tenant's queue of
requests or 429s does not hold up another's."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest
from pydantic import SecretStr

from suno_mcp.client import TaskRef
from suno_mcp.models import ApiFamily, Clip, Status, Task
from suno_mcp.poller import NO_KEY_YET, READ, AdaptiveLimiter, Poller, Timing

TIMING = Timing(preview_s=30.0, complete_s=120.0, min_gap_s=1.0, max_gap_s=15.0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class KeyedApi:
    """A fake family that records, for every fetch, the key it was sent with and the ids asked for."""

    def __init__(
        self, family: ApiFamily, log: list[tuple[str | None, list[str]]], key: str | None = None
    ) -> None:
        self.family: ApiFamily = family
        self.log = log
        self.key = key

    def with_key(self, api_key: SecretStr | None) -> KeyedApi:
        return KeyedApi(self.family, self.log, api_key.get_secret_value() if api_key else None)

    async def submit_music(self, request: object) -> Task:
        raise AssertionError("the poller never submits")

    async def fetch(self, refs: Sequence[TaskRef], *, deadline: float | None = None) -> dict[str, Task]:
        self.log.append((self.key, [r.task_id for r in refs]))
        # The status says whose key asked, so a test can tell which answer reached which watch.
        return {
            r.task_id: Task(
                task_id=r.task_id,
                api=self.family,
                status=Status.RUNNING,
                raw_status=f"asked-with-{self.key}",
                clips=[Clip(id=f"{r.task_id}-c", status=Status.RUNNING)],
            )
            for r in refs
        }


def make(clock: Clock, keys: dict[str, str]) -> tuple[Poller, list[tuple[str | None, list[str]]]]:
    log: list[tuple[str | None, list[str]]] = []
    poller = Poller(
        {"task": KeyedApi("task", log, "server-key"), "clip": KeyedApi("clip", log, "server-key")},
        timing=TIMING,
        clock=clock,
        limiter=AdaptiveLimiter(1e9, start=1e9),  # on the real clock: never makes anyone wait
        keys=lambda tenant: SecretStr(keys[tenant]) if tenant in keys else None,
        tenant_max_rps=1.0,
    )
    return poller, log


async def test_each_tenants_task_is_fetched_with_that_tenants_key_even_for_the_same_task_id() -> None:
    clock = Clock()
    poller, log = make(clock, {"t-a": "key-a", "t-b": "key-b"})
    a = poller.watch(TaskRef("same", "task", tenant="t-a"), started=0.0)
    b = poller.watch(TaskRef("same", "task", tenant="t-b"), started=0.0)
    assert a is not b
    await poller._poll_batch("task", [a])
    await poller._poll_batch("task", [b])
    assert log == [("key-a", ["same"]), ("key-b", ["same"])]
    assert a.task is not None
    assert a.task.raw_status == "asked-with-key-a"
    assert b.task is not None
    assert b.task.raw_status == "asked-with-key-b"


async def test_a_tenant_whose_key_this_process_lacks_is_not_fetched_until_the_key_comes() -> None:
    clock = Clock()
    keys: dict[str, str] = {}
    poller, log = make(clock, keys)
    watch = poller.watch(TaskRef("t1", "task", tenant="t-a"), started=0.0)
    await poller._poll_batch("task", [watch])
    assert log == []
    error = poller.last_error("t1", tenant="t-a")
    assert error is not None
    assert error.message == NO_KEY_YET
    assert poller.last_error("t1") is None  # the server tenant's task of that id is another watch

    keys["t-a"] = "key-a"  # the tenant's next call brought it
    clock.now = 2.0  # past the tenant's next turn (1 request/s)
    await poller._poll_batch("task", [watch])
    assert log == [("key-a", ["t1"])]
    assert poller.last_error("t1", tenant="t-a") is None


async def test_clip_tasks_due_together_are_batched_per_tenant_never_across_keys() -> None:
    clock = Clock()
    poller, log = make(clock, {"t-a": "key-a", "t-b": "key-b"})
    for name, tenant in (("a1", "t-a"), ("b1", "t-b"), ("a2", "t-a"), ("s1", "")):
        watch = poller.watch(TaskRef(name, "clip", clip_ids=(name,), tenant=tenant), started=0.0)
        watch.waiters = 1
        watch.next_at = 0.0
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(poller.run)
            while sum(len(ids) for _, ids in log) < 4:
                await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
    by_key = {key: sorted(ids) for key, ids in log}
    assert len(log) == 3  # one feed request per key
    assert by_key == {"key-a": ["a1", "a2"], "key-b": ["b1"], "server-key": ["s1"]}


async def test_a_busy_tenants_queue_does_not_hold_up_another_tenants_request() -> None:
    clock = Clock()  # frozen: a request that has to wait for its turn never gets it
    poller, _ = make(clock, {})
    assert await poller.acquire("t-busy", READ)
    waiting = anyio.Event()

    async def queued() -> None:
        waiting.set()
        await poller.acquire("t-busy", READ)  # the busy tenant's 1 request/s is used up

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(queued)
            await waiting.wait()
            await anyio.wait_all_tasks_blocked()
            # Another tenant, and the server's own tasks, go at once all the same.
            assert await poller.acquire("t-other", READ)
            assert await poller.acquire("", READ)
            tg.cancel_scope.cancel()


async def test_a_429_on_one_tenants_key_slows_only_that_tenant() -> None:
    clock = Clock()
    poller, log = make(clock, {"t-a": "key-a", "t-b": "key-b"})
    poller.rate_limited("t-a", 40.0)
    with anyio.fail_after(5):
        assert not await poller.acquire("t-a", READ, deadline=clock.now)  # paused for its Retry-After
        assert await poller.acquire("t-b", READ, deadline=clock.now)
    assert poller.limiter.rate == pytest.approx(1e9)  # the process's own rate did not halve
    assert log == []
