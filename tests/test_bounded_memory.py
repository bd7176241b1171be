"""Bounded memory under long uptime: what is kept per tenant or per task is dropped when idle, and
auto-downloads run a few at a time.

Time is a fake clock moved by the test; concurrency is observed with events and
``anyio.wait_all_tasks_blocked``, never with sleeps.
"""

from __future__ import annotations

import math
from pathlib import Path

import anyio
import httpx
from pydantic import SecretStr

from suno_mcp.domain.expiry import IdleMap
from suno_mcp.domain.models import Clip, Status, Task, TaskRef
from suno_mcp.domain.tenancy import Caller, KeyRing
from suno_mcp.engine.limiter import TenantLimiters
from suno_mcp.service.wiring import open_service
from suno_mcp.store.rules import WrittenStates
from tests.support.clock import FakeClock
from tests.support.helpers_upstream import AUDIO_BYTES, CDN, FakeUpstream, make_settings

IDLE_S = 100.0
ALICE = Caller(tenant="t-" + "a" * 32, key=SecretStr("gp-alice-key"))
BOB = Caller(tenant="t-" + "b" * 32, key=SecretStr("gp-bob-key"))


def _task(task_id: str, status: Status = Status.RUNNING) -> Task:
    return Task(task_id=task_id, api="task", kind="music", status=status)


# ---------------------------------------------------------------- the key ring


def test_a_key_unused_for_the_idle_time_is_dropped_and_the_next_call_brings_it_back() -> None:
    clock = FakeClock(1000.0)
    ring = KeyRing(idle_s=IDLE_S, clock=clock)
    ring.remember(ALICE)
    clock.now += IDLE_S - 1
    assert ring.get(ALICE.tenant) == ALICE.key  # still held; and this use restarts its idle time
    clock.now += IDLE_S - 1
    assert ring.get(ALICE.tenant) == ALICE.key
    clock.now += IDLE_S
    assert ring.get(ALICE.tenant) is None
    assert len(ring) == 0
    ring.remember(ALICE)  # the tenant's next call
    assert ring.get(ALICE.tenant) == ALICE.key


def test_the_key_ring_drops_idle_keys_as_new_ones_arrive_and_keeps_at_most_its_size() -> None:
    clock = FakeClock()
    ring = KeyRing(idle_s=IDLE_S, max_size=2, clock=clock)
    ring.remember(ALICE)
    clock.now += IDLE_S
    ring.remember(BOB)  # ALICE idle long enough: gone without being asked for
    assert len(ring) == 1
    for i in range(5):
        ring.remember(Caller(tenant=f"t-{i:032d}", key=SecretStr(f"gp-{i}")))
    assert len(ring) == 2
    assert ring.get(f"t-{4:032d}") is not None
    assert ring.get(BOB.tenant) is None  # the least recently used went first


# ---------------------------------------------------------------- per-tenant limiters


async def test_an_idle_tenants_limiter_is_dropped_and_its_next_request_gets_a_fresh_one() -> None:
    clock = FakeClock(1000.0)
    limiters = TenantLimiters(math.inf, 10.0, clock=clock, idle_s=IDLE_S)
    assert await limiters.acquire(ALICE.tenant)
    limiters.rate_limited(ALICE.tenant, None)
    assert limiters.of(ALICE.tenant).rate == 5.0  # halved by the 429
    clock.now += IDLE_S
    assert await limiters.acquire(BOB.tenant)  # a new tenant's request sweeps the idle one out
    assert limiters.tenants == 1
    assert await limiters.acquire(ALICE.tenant)  # the next request works, from the ceiling again
    assert limiters.of(ALICE.tenant).rate == 10.0
    assert limiters.tenants == 2


async def test_a_limiter_held_back_by_retry_after_is_kept_until_it_has_passed() -> None:
    clock = FakeClock(1000.0)
    limiters = TenantLimiters(math.inf, 10.0, clock=clock, idle_s=IDLE_S)
    limiters.rate_limited(ALICE.tenant, 3 * IDLE_S, "task")
    clock.now += 2 * IDLE_S
    assert await limiters.acquire(BOB.tenant)
    assert limiters.tenants == 2  # still paused: dropping it would forget the Retry-After
    assert limiters.paused_until(ALICE.tenant, "task") == 1000.0 + 3 * IDLE_S
    clock.now += 2 * IDLE_S  # past the Retry-After, and idle again
    assert await limiters.acquire(BOB.tenant)
    assert limiters.tenants == 1
    assert limiters.paused_until(ALICE.tenant, "task") == 0.0


def test_limiters_keep_at_most_their_size_of_tenants() -> None:
    limiters = TenantLimiters(math.inf, 10.0, clock=FakeClock(), max_tenants=3)
    for i in range(10):
        limiters.of(f"t-{i:032d}")
    assert limiters.tenants == 3


# ---------------------------------------------------------------- the ledger's written-states cache


def test_the_written_states_cache_forgets_an_idle_task_and_writes_it_again() -> None:
    clock = FakeClock(1000.0)
    written = WrittenStates(idle_s=IDLE_S, clock=clock)
    task = _task("task-1")
    written.remember(task, "")
    assert written.unchanged(task, "")
    clock.now += IDLE_S
    assert not written.unchanged(task, "")  # forgotten: the next poll writes (once)
    assert len(written) == 0
    written.remember(task, "")
    assert written.unchanged(task, "")


def test_the_written_states_cache_does_not_keep_a_finished_task() -> None:
    written = WrittenStates(clock=FakeClock())
    written.remember(_task("task-1"), "")
    done = _task("task-1", Status.COMPLETE)
    written.remember(done, "")
    assert len(written) == 0
    assert not written.unchanged(done, "")  # should it come again, it is written again


def test_the_written_states_cache_keeps_at_most_its_size() -> None:
    written = WrittenStates(max_size=50, clock=FakeClock())
    for i in range(500):
        written.remember(_task(f"task-{i}"), "")
    assert len(written) == 50
    assert written.unchanged(_task("task-499"), "")
    assert not written.unchanged(_task("task-0"), "")


def test_an_idle_map_passes_over_busy_entries_when_it_sweeps() -> None:
    clock = FakeClock()
    held: IdleMap[str, int] = IdleMap(idle_s=IDLE_S, max_size=10, clock=clock, busy=lambda v: v < 0)
    held.put("busy", -1)
    held.put("idle", 1)
    clock.now += IDLE_S
    held.put("new", 2)
    assert "busy" in held
    assert "idle" not in held
    assert held.get("busy") == -1


# ---------------------------------------------------------------- auto-downloads


async def test_auto_downloads_run_at_most_the_set_number_at_once_and_the_rest_follow(tmp_path: Path) -> None:
    limit, tasks = 2, 7
    upstream = FakeUpstream()
    gate = anyio.Event()
    all_started = anyio.Event()
    active = started = most = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal active, started, most
        if not str(request.url).startswith(CDN):
            return upstream(request)
        active += 1
        started += 1
        most = max(most, active)
        if started == tasks:
            all_started.set()
        try:
            await gate.wait()
        finally:
            active -= 1
        return httpx.Response(200, content=AUDIO_BYTES, headers={"content-type": "audio/mpeg"})

    settings = make_settings(tmp_path, auto_download=True, auto_download_concurrency=limit)
    async with open_service(settings, transport=httpx.MockTransport(handler)) as service:
        for i in range(tasks):
            clip = Clip(id=f"clip-{i}", status=Status.COMPLETE, audio_url=f"{CDN}/audio/clip-{i}.mp3")
            task = Task(task_id=f"task-{i}", api="task", kind="music", status=Status.COMPLETE, clips=[clip])
            await service.ledger.adopt("task", task)
            await service.task_fetched(TaskRef(task_id=task.task_id, api="task"), task)
        await anyio.wait_all_tasks_blocked()
        assert (active, started) == (limit, limit)  # the others wait their turn
        gate.set()
        with anyio.fail_after(10):
            await all_started.wait()
        assert most == limit
