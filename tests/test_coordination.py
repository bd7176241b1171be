"""Replicas sharing one PostgreSQL database share their polling: one upstream fetch per tick in all,
the others' waiters served from the ledger and woken by notices, and a dead holder's tasks taken over.

Every replica here is a real Poller with its own ledger connection and PostgresCoordinator on one
real database; the upstream is one fake that counts every fetch. The pollers run on fake clocks and
their ticks are driven by hand (each replica's ``step`` in a fixed order, while ``listen`` takes in the
others' notices), so counts are exact. Lease times are the database's own clock: where a test needs time to pass there, it moves
the lease rows back (what ``lease_s`` seconds of waiting would do), instead of sleeping.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import psycopg
import pytest
from pydantic import SecretStr

from suno_mcp.domain.errors import RateLimitedError, SunoError
from suno_mcp.domain.models import ApiFamily, Clip, MusicRequest, Status, Task, TaskRef
from suno_mcp.engine.coordination import LocalCoordinator
from suno_mcp.engine.coordination_pg import CHANNEL, OUTAGE_RETRY_S, PRUNE_EVERY_S, PostgresCoordinator
from suno_mcp.engine.host import NoHost
from suno_mcp.engine.poller import Followed, Goal, NoKeyError, Poller, Timing
from suno_mcp.sandbox.runner import run_sandbox
from suno_mcp.sandbox.state import SandboxConfig
from suno_mcp.service.core import SunoService
from suno_mcp.service.wiring import open_service
from suno_mcp.settings import load_settings
from suno_mcp.store.postgres import PostgresLedger
from tests.support.postgres import PostgresServer, fresh_database, stopped

# Database seconds: a fetch is "fresh" for the whole of a test, and a lease never runs out by itself.
TIMING = Timing(fresh_s=30.0, lease_s=600.0)
BOUND_S = 20.0
REF = TaskRef("t1", "task", model="m")


@pytest.fixture
def database(postgres_server: PostgresServer) -> Iterator[str]:
    with fresh_database(postgres_server) as url:
        yield url


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Upstream:
    """The one upstream behind every replica: each task's current state, and every fetch counted."""

    def __init__(self) -> None:
        self.states: dict[str, tuple[Status, str]] = {}
        self.calls: list[tuple[str | None, list[str]]] = []  # (key, task ids) per request
        self.refusals: list[SunoError] = []  # the next fetches fail with these, in order

    @property
    def fetches(self) -> int:
        return len(self.calls)

    def set(self, task_id: str, status: Status, raw: str) -> None:
        self.states[task_id] = (status, raw)

    def api(self, family: ApiFamily, key: str | None = None) -> FakeApi:
        return FakeApi(self, family, key)


class FakeApi:
    def __init__(self, upstream: Upstream, family: ApiFamily, key: str | None) -> None:
        self.upstream, self.family, self.key = upstream, family, key

    def with_key(self, api_key: SecretStr | None) -> FakeApi:
        return FakeApi(self.upstream, self.family, None if api_key is None else api_key.get_secret_value())

    async def fetch(self, refs: Sequence[TaskRef], *, deadline: float | None = None) -> dict[str, Task]:
        self.upstream.calls.append((self.key, [r.task_id for r in refs]))
        if self.upstream.refusals:
            raise self.upstream.refusals.pop(0)
        answer = {}
        for ref in refs:
            if ref.task_id in self.upstream.states:
                status, raw = self.upstream.states[ref.task_id]
                clip = Clip(id=f"{ref.task_id}-c", status=status)
                answer[ref.task_id] = Task(
                    task_id=ref.task_id, api=self.family, status=status, raw_status=raw, clips=[clip]
                )
        return answer


@dataclass
class Replica:
    name: str
    poller: Poller
    clock: Clock
    coordinator: PostgresCoordinator
    ledger: PostgresLedger
    listening: anyio.CancelScope

    def followed(self, ref: TaskRef) -> Followed:
        followed = self.poller.followed(ref.task_id, tenant=ref.tenant)
        assert followed is not None, f"{self.name} does not follow {ref.task_id}"
        return followed

    def die(self) -> None:
        """The process is gone: no more polls, no notices heard, no lease released."""
        self.listening.cancel()


class LedgerHost(NoHost):
    """A replica's service, as far as its poller sees it: keys, and its ledger to store and read states."""

    def __init__(self, ledger: PostgresLedger, keys: Callable[[str], SecretStr | None] | None) -> None:
        self.ledger, self.keys = ledger, keys

    def tenant_key(self, tenant: str) -> SecretStr | None:
        return None if self.keys is None else self.keys(tenant)

    async def stored_state(self, ref: TaskRef) -> Task | None:
        record = await self.ledger.get(ref.task_id)
        return None if record is None else record.as_task()

    async def task_fetched(self, ref: TaskRef, task: Task) -> None:
        await self.ledger.update(task)


def _poller(
    upstream: Upstream,
    ledger: PostgresLedger,
    coordinator: PostgresCoordinator,
    clock: Clock,
    timing: Timing,
    keys: Callable[[str], SecretStr | None] | None,
) -> Poller:
    return Poller(
        {"task": upstream.api("task"), "clip": upstream.api("clip")},  # type: ignore[dict-item]
        host=LedgerHost(ledger, keys),
        timing=timing,
        clock=clock,
        max_requests_per_second=math.inf,  # never makes anyone wait
        coordinator=coordinator,
    )


@asynccontextmanager
async def replicas(
    url: str,
    upstream: Upstream,
    count: int,
    *,
    timing: Timing = TIMING,
    keys: Sequence[Callable[[str], SecretStr | None] | None] | None = None,
) -> AsyncIterator[list[Replica]]:
    """``count`` replicas on one database, each listening for the others' notices."""
    async with AsyncExitStack() as stack:
        made: list[Replica] = []
        for n in range(count):
            ledger = await PostgresLedger.open(url)  # the first one runs the migrations
            stack.push_async_callback(ledger.close)
            coordinator = await PostgresCoordinator.open(url, f"replica-{n}")
            stack.push_async_callback(coordinator.close)
            clock = Clock()
            poller = _poller(upstream, ledger, coordinator, clock, timing, keys[n] if keys else None)
            made.append(Replica(f"replica-{n}", poller, clock, coordinator, ledger, anyio.CancelScope()))
        async with anyio.create_task_group() as tg:
            for replica in made:
                tg.start_soon(_listen, replica)
            with anyio.fail_after(BOUND_S):
                for replica in made:
                    await replica.coordinator.listening()
            yield made
            tg.cancel_scope.cancel()


async def _listen(replica: Replica) -> None:
    with replica.listening:
        await replica.poller.listen()


async def submitted(ledger: PostgresLedger, task_id: str) -> None:
    """The ledger row a submit leaves behind (the poller only ever updates rows)."""
    local = await ledger.record_intent(api="task", kind="music", request={"mv": "m"}, fingerprint=None)
    await ledger.record_submitted(local, Task(task_id=task_id, api="task", status=Status.PENDING))


async def tick(group: Sequence[Replica], ref: TaskRef = REF) -> None:
    """One tick: every replica's clock moves to the task's poll due last among them, and each replica
    polls what is due then, in order (a replica that an earlier one's notice let go of the task polls
    nothing)."""
    followed = [r.poller.followed(ref.task_id, tenant=ref.tenant) for r in group]
    due = max(f.next_poll_at for f in followed if f is not None)
    for replica in group:
        replica.clock.now = max(replica.clock.now, due)
        await replica.poller.step(replica.clock.now)


async def lease_row(url: str, ref: TaskRef = REF) -> tuple[str, bool] | None:
    """The task's lease: (holder, whether it still holds), or None when there is no row."""
    async with await psycopg.AsyncConnection.connect(url) as db:
        cur = await db.execute(
            "SELECT holder, lease_until > clock_timestamp() FROM poll_leases WHERE tenant = %s AND task_id = %s",
            (ref.tenant, ref.task_id),
        )
        return await cur.fetchone()


async def database_clock_moves_on(url: str, seconds: float) -> None:
    """What waiting ``seconds`` would do to every lease and fetch time (the database's clock)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as db:
        await db.execute(
            "UPDATE poll_leases SET lease_until = lease_until - make_interval(secs => %s),"
            " fetched_at = fetched_at - make_interval(secs => %s)",
            (seconds, seconds),
        )


class Waiter:
    """A waited call on one replica, run in the background; ``read`` is set once its first read is in."""

    def __init__(self, replica: Replica, ref: TaskRef = REF, *, goal: Goal = "complete") -> None:
        self.replica, self.ref, self.goal = replica, ref, goal
        self.read, self.done = anyio.Event(), anyio.Event()
        self.result: Task | None = None

    async def __call__(self) -> None:
        async def progress(*_: object) -> None:
            self.read.set()

        self.result = await self.replica.poller.wait(
            self.ref, goal=self.goal, wait_s=BOUND_S, started=0.0, progress=progress
        )
        self.done.set()


# ------------------------------------------------------------ replicas sharing the polling


async def test_waiters_on_two_replicas_see_every_new_state_for_one_fetch_per_tick(database: str) -> None:
    upstream = Upstream()
    upstream.set("t1", Status.RUNNING, "queued")
    async with replicas(database, upstream, 2) as (a, b):
        await submitted(a.ledger, "t1")
        on_a, on_b = Waiter(a), Waiter(b)
        with anyio.fail_after(BOUND_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(on_a)
                await on_a.read.wait()  # a's first read fetched: a holds the lease
                tg.start_soon(on_b)
                await on_b.read.wait()  # b's came within fresh_s: the ledger answered it
                assert upstream.fetches == 1
                assert b.followed(REF).task.raw_status == "queued"
                for n, (status, raw) in enumerate(
                    [(Status.RUNNING, "step 1"), (Status.RUNNING, "step 2"), (Status.STREAMING, "playable")]
                ):
                    upstream.set("t1", status, raw)
                    await tick([a, b])
                    assert upstream.fetches == 2 + n  # one per tick, however many replicas wait
                    assert a.followed(REF).task.raw_status == raw
                    assert b.followed(REF).task.raw_status == raw
                upstream.set("t1", Status.COMPLETE, "done")
                await tick([a, b])
        assert upstream.fetches == 5
        assert b.poller.fetches == 0
        assert on_a.result is not None
        assert on_a.result.status is Status.COMPLETE
        assert on_b.result is not None
        assert on_b.result.status is Status.COMPLETE
        assert a.poller.watching == b.poller.watching == 0
        assert await lease_row(database) == ("replica-0", False)  # finished: the holder let go of it


async def test_three_replicas_with_waiters_cost_one_fetch_per_tick(database: str) -> None:
    upstream = Upstream()
    upstream.set("t1", Status.RUNNING, "queued")
    async with replicas(database, upstream, 3) as group:
        await submitted(group[0].ledger, "t1")
        waiters = [Waiter(r) for r in group for _ in range(3)]
        with anyio.fail_after(BOUND_S):
            async with anyio.create_task_group() as tg:
                for waiter in waiters:
                    tg.start_soon(waiter)
                    await waiter.read.wait()
                first_reads = upstream.fetches
                for n in range(6):
                    upstream.set("t1", Status.RUNNING, f"step {n}")
                    await tick(group)
                upstream.set("t1", Status.COMPLETE, "done")
                await tick(group)
        assert first_reads == 1  # nine first reads, one fetch: the rest came within fresh_s
        assert upstream.fetches - first_reads == 7  # 7 ticks
        assert all(w.result is not None and w.result.status is Status.COMPLETE for w in waiters)


async def test_a_read_on_a_replica_without_the_lease_within_fresh_s_is_answered_from_the_ledger(
    database: str,
) -> None:
    upstream = Upstream()
    async with replicas(database, upstream, 2) as (a, b):
        await submitted(a.ledger, "t1")
        upstream.set("t1", Status.RUNNING, "what a fetched")
        seen_by_a = await a.poller.wait(REF, goal="playable", wait_s=0, started=0.0)
        upstream.set("t1", Status.STREAMING, "newer, fetched by nobody")
        seen_by_b = await b.poller.wait(REF, goal="playable", wait_s=0, started=0.0)
        assert upstream.fetches == 1
        assert seen_by_a is not None
        assert seen_by_b is not None
        assert seen_by_b.raw_status == seen_by_a.raw_status == "what a fetched"
        assert b.poller.checked_at("t1") is not None  # someone's fetch just now: fresh here too
        assert await lease_row(database) == ("replica-0", True)  # a read leaves a lease that is held alone


async def test_a_read_once_the_last_fetch_is_stale_fetches_even_without_the_lease(database: str) -> None:
    upstream = Upstream()
    async with replicas(database, upstream, 2, timing=Timing(fresh_s=0.0, lease_s=600.0)) as (a, b):
        await submitted(a.ledger, "t1")
        upstream.set("t1", Status.RUNNING, "first")
        await a.poller.wait(REF, goal="playable", wait_s=0, started=0.0)
        upstream.set("t1", Status.STREAMING, "second")
        seen = await b.poller.wait(REF, goal="playable", wait_s=0, started=0.0)
        assert upstream.fetches == 2
        assert seen is not None
        assert seen.raw_status == "second"
        assert await lease_row(database) == (
            "replica-0",
            True,
        )  # anyone may read; the lease stays where it was


async def test_a_notice_from_the_replica_that_fetched_wakes_a_waiter_on_another(database: str) -> None:
    upstream = Upstream()
    upstream.set("t1", Status.RUNNING, "queued")
    async with replicas(database, upstream, 2) as (a, b):
        await submitted(a.ledger, "t1")
        await a.poller.wait(REF, goal="complete", wait_s=0, started=0.0)
        on_b = Waiter(b)
        with anyio.fail_after(BOUND_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(on_b)
                await on_b.read.wait()
                upstream.set("t1", Status.COMPLETE, "done")
                await tick([a])  # nobody polls on b: only a's notice can reach its waiter
                await on_b.done.wait()
        assert on_b.result is not None
        assert on_b.result.status is Status.COMPLETE
        assert b.poller.fetches == 0
        assert upstream.fetches == 2


async def test_when_the_holder_dies_another_replica_takes_over_once_the_lease_expires(database: str) -> None:
    upstream = Upstream()
    upstream.set("t1", Status.RUNNING, "queued")
    async with replicas(database, upstream, 2) as (a, b):
        await submitted(a.ledger, "t1")
        with ExitStack() as waiting:
            for replica in (a, b):
                waiting.enter_context(replica.poller.waiting(REF, started=0.0))  # someone waits on each
            await tick([a, b])
            assert (a.poller.fetches, b.poller.fetches) == (1, 0)
            a.die()
            upstream.set("t1", Status.RUNNING, "still going")
            await tick([b])
            await tick([b])
            assert b.poller.fetches == 0  # the lease still holds: b waits for it to run out
            assert b.followed(REF).task.raw_status == "queued"  # what the ledger knows
            await database_clock_moves_on(database, TIMING.lease_s)
            for n in range(3):
                await tick([b])
                assert b.poller.fetches == n + 1  # b polls now, and keeps polling
            assert b.followed(REF).task.raw_status == "still going"
            assert await lease_row(database) == ("replica-1", True)
            assert upstream.fetches == 4


async def test_a_replica_without_the_tenants_key_takes_no_lease_and_hears_from_one_that_has_it(
    database: str,
) -> None:
    upstream = Upstream()
    upstream.set("t1", Status.RUNNING, "queued")
    keys = {"t-a": SecretStr("key-of-a")}
    none: dict[str, SecretStr] = {}
    ref = TaskRef("t1", "task", model="m", tenant="t-a")
    async with replicas(database, upstream, 2, keys=[none.get, keys.get]) as (keyless, keyed):
        await submitted(keyless.ledger, "t1")
        on_keyless = Waiter(keyless, ref)
        with anyio.fail_after(BOUND_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(on_keyless)
                await on_keyless.read.wait()
                assert upstream.fetches == 0
                assert await lease_row(database, ref) is None
                assert isinstance(keyless.poller.last_error("t1", tenant="t-a"), NoKeyError)
                await tick([keyless], ref)  # its schedule comes round: still nothing sent
                assert upstream.fetches == 0
                upstream.set("t1", Status.COMPLETE, "done")
                await keyed.poller.wait(ref, goal="complete", wait_s=0, started=0.0)
                await on_keyless.done.wait()  # the keyed replica's notice
        assert upstream.calls == [("key-of-a", ["t1"])]
        assert on_keyless.result is not None
        assert on_keyless.result.status is Status.COMPLETE


async def test_a_429_on_one_replica_holds_that_tenants_requests_back_on_the_others(database: str) -> None:
    # The vendor limits the key: b must not go on fetching with it while a waits out Retry-After.
    upstream = Upstream()
    for task_id in ("t1", "t2", "t3"):
        upstream.set(task_id, Status.RUNNING, "queued")
    keys = {"t-a": SecretStr("key-of-a"), "t-b": SecretStr("key-of-b")}
    limited = TaskRef("t1", "task", model="m", tenant="t-a")
    other, another = (TaskRef(t, "task", model="m", tenant="t-b") for t in ("t2", "t3"))
    timing = Timing(fresh_s=0.0, lease_s=600.0)  # every read may fetch: only the pause holds one back
    async with replicas(database, upstream, 2, timing=timing, keys=[keys.get, keys.get]) as (a, b):
        for ref in (limited, other, another):
            await submitted(a.ledger, ref.task_id)
        on_b = Waiter(b, other)
        with anyio.fail_after(BOUND_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(on_b)
                await on_b.read.wait()
                upstream.refusals.append(RateLimitedError("slow down", retry_after=30.0))
                await a.poller.wait(limited, goal="complete", wait_s=0, started=0.0)  # the 429
                upstream.set("t2", Status.COMPLETE, "done")
                await a.poller.wait(other, goal="complete", wait_s=0, started=0.0)
                # a's notices reach b in the order sent: once this one has woken b's waiter, b has
                # taken in the pause too.
                await on_b.done.wait()
        sent = upstream.fetches
        await b.poller.wait(limited, goal="complete", wait_s=0, started=0.0)
        assert upstream.fetches == sent  # held back: answered from what is known
        assert b.followed(limited).next_poll_at >= b.clock.now + 30.0  # its schedule waits the pause out
        b.clock.now += 1.0  # past t-b's own spacing since b's first read (well inside the pause)
        await b.poller.wait(another, goal="complete", wait_s=0, started=0.0)
        assert upstream.calls[-1] == ("key-of-b", ["t3"])  # another tenant's key is not held back
        b.clock.now += 29.0
        await b.poller.wait(limited, goal="complete", wait_s=0, started=0.0)
        assert upstream.calls[-1] == ("key-of-a", ["t1"])  # Retry-After has passed


# ------------------------------------------------------------ the coordinator itself


@asynccontextmanager
async def coordinators(
    url: str, count: int, clock: Clock | None = None
) -> AsyncIterator[list[PostgresCoordinator]]:
    ledger = await PostgresLedger.open(url)  # its migrations make the lease table
    await ledger.close()
    async with AsyncExitStack() as stack:
        made = []
        for n in range(count):
            coordinator = await PostgresCoordinator.open(url, f"c{n}", clock=clock or Clock())
            stack.push_async_callback(coordinator.close)
            made.append(coordinator)
        yield made


async def test_leases_follow_the_holder_the_last_fetch_and_the_databases_clock(database: str) -> None:
    clock = Clock()
    async with coordinators(database, 2, clock) as (a, b):
        rules = {"fresh_s": 30.0, "lease_s": 600.0}
        assert await a.take_lease(REF, read=False, **rules)  # nobody held it: a takes the lease
        assert not await b.take_lease(REF, read=False, **rules)  # held
        assert await a.take_lease(REF, read=False, **rules)  # a's own last fetch does not hold a back
        assert not await b.take_lease(REF, read=True, **rules)  # fetched just now: the ledger answers
        assert await b.take_lease(REF, read=True, fresh_s=0.0, lease_s=600.0)  # stale news: anyone may read
        assert await lease_row(database) == ("c0", True)  # a read takes no lease that still holds
        assert not await a.take_lease(REF, read=False, **rules)  # b fetched just now
        # b's waiters want news more often than a fetches: b takes the polling over.
        assert await b.take_lease(REF, read=False, fresh_s=30.0, lease_s=600.0, stale_s=0.0)
        assert await lease_row(database) == ("c1", True)
        await a.release(REF)  # not a's lease: it stays
        assert await lease_row(database) == ("c1", True)
        await database_clock_moves_on(database, 601.0)
        assert await a.take_lease(REF, read=False, **rules)  # expired: a takes over
        assert await lease_row(database) == ("c0", True)
        await a.release(REF)
        assert await lease_row(database) == ("c0", False)
        assert not await b.take_lease(REF, read=False, **rules)  # a fetched just now, even though it let go
        await database_clock_moves_on(database, 2 * 3600.0)
        clock.now += PRUNE_EVERY_S
        await a.release(TaskRef("another", "task"))  # now and then a release clears long-expired rows
        assert await lease_row(database) is None


async def test_the_listener_reconnects_after_its_connection_drops_and_skips_its_own_notices(
    database: str,
) -> None:
    async with coordinators(database, 2) as (a, b):
        send, receive = anyio.create_memory_object_stream[tuple[str, str]](10)

        async def on_change(tenant: str, task_id: str) -> None:
            await send.send((tenant, task_id))

        with anyio.fail_after(BOUND_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(a.run, on_change)
                await a.listening(1)
                await a.changed(TaskRef("own", "task"))  # sent first: were it heard, it would come first
                await b.changed(TaskRef("t1", "task", tenant="t-x"))
                assert await receive.receive() == ("t-x", "t1")
                async with await psycopg.AsyncConnection.connect(database, autocommit=True) as admin:
                    await admin.execute("SELECT pg_terminate_backend(%s)", (a.listener_pid,))
                await a.listening(2)
                await b.changed(TaskRef("t2", "task"))
                assert await receive.receive() == ("", "t2")
                tg.cancel_scope.cancel()
        assert a.connections == 2
        send.close()
        receive.close()


async def test_pause_notices_reach_the_other_replicas_and_unreadable_ones_are_skipped(
    database: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with coordinators(database, 2) as (a, b):
        send, receive = anyio.create_memory_object_stream[tuple[str, ApiFamily | None, float | None]](10)

        async def on_change(tenant: str, task_id: str) -> None:
            raise AssertionError(f"an unreadable or pause notice was taken for a change of {task_id}")

        async def on_pause(tenant: str, family: ApiFamily | None, retry_after: float | None) -> None:
            await send.send((tenant, family, retry_after))

        with anyio.fail_after(BOUND_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(a.run, on_change, on_pause)
                await a.listening(1)
                await a.paused("t-own", "task", 5.0)  # its own: not heard
                async with await psycopg.AsyncConnection.connect(database, autocommit=True) as admin:
                    for bad in (
                        '{"replica":"x","tenant":"t","kind":"paused","api":"ftp","retry_after":1}',
                        '{"replica":"x","tenant":"t","kind":"paused","api":"task","retry_after":-1}',
                        '{"replica":"x","tenant":"t","kind":"paused"}',
                        '{"replica":"x","tenant":7,"kind":"paused","api":"task","retry_after":1}',
                        '{"replica":"x","tenant":"t","task_id":5}',
                    ):
                        await admin.execute("SELECT pg_notify(%s, %s)", (CHANNEL, bad))
                await b.paused("t-x", "clip", 2.5)
                await b.paused("", None, None)  # a submit's 429 without Retry-After
                assert await receive.receive() == ("t-x", "clip", 2.5)
                assert await receive.receive() == ("", None, None)
                tg.cancel_scope.cancel()
        assert [r.message for r in caplog.records].count("ignored an unreadable poll notice") == 5
        send.close()
        receive.close()


@pytest.mark.slow  # stops or restarts the PostgreSQL server with pg_ctl
async def test_while_the_database_cannot_be_asked_leases_are_granted_and_it_is_asked_again_later(
    database: str, postgres_server: PostgresServer
) -> None:
    clock = Clock()
    async with coordinators(database, 2, clock) as (a, b):
        rules = {"fresh_s": 30.0, "lease_s": 600.0}
        assert await b.take_lease(REF, read=False, **rules)  # b holds the lease
        assert not await a.take_lease(REF, read=False, **rules)
        async with await psycopg.AsyncConnection.connect(database, autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                ("suno-mcp leases c0",),
            )
        # A dropped connection is found by the pool's check and made again: b's lease still counts.
        assert not await a.take_lease(REF, read=False, **rules)
        with anyio.fail_after(BOUND_S), stopped(postgres_server):
            assert await a.take_lease(REF, read=False, **rules)  # cannot ask: polls as a lone process would
            assert await a.take_lease(REF, read=False, **rules)  # and does not try again at once
        clock.now += OUTAGE_RETRY_S
        # The database is back: b's lease counts again.
        assert not await a.take_lease(REF, read=False, **rules)


async def test_a_coordinator_refuses_to_open_on_a_database_without_the_lease_table(database: str) -> None:
    with pytest.raises(RuntimeError, match="poll_leases"):
        await PostgresCoordinator.open(database, "early")


async def test_a_lone_process_is_granted_every_lease() -> None:
    local = LocalCoordinator()
    assert await local.take_lease(REF, read=False, fresh_s=1e9, lease_s=0.0)
    assert await local.take_lease(REF, read=True, fresh_s=1e9, lease_s=0.0)


# ------------------------------------------------------------ the whole server, three replicas


SPEED = 200.0


async def fetches_following_one_task(url: str, tmp_path: Path, replica_count: int, waiters_each: int) -> int:
    """Upstream fetches while ``replica_count`` servers (one sandbox, one database) follow one task."""
    config = SandboxConfig(speed=SPEED, clip_seconds=4.0)
    timing = Timing(
        preview_s=config.preview_after_s, complete_s=config.complete_after_s, lyrics_s=config.lyrics_after_s
    ).scaled(config.speed)
    async with run_sandbox(config) as sandbox, AsyncExitStack() as stack:
        settings = load_settings(
            environ={"SUNO_MCP_DATABASE_URL": url},
            api_key="test-key",
            base_url=sandbox.url,
            data_dir=tmp_path / f"data-{replica_count}",
            api="task",
            max_requests_per_second=1000.0,  # the schedule sets the pace, not each replica's own limiter
        )
        services: list[SunoService] = [
            await stack.enter_async_context(open_service(settings, timing=timing, sandbox=True))
            for _ in range(replica_count)
        ]
        outcome = await services[0].submit_music(
            MusicRequest(gpt_description_prompt=f"{replica_count} replicas", mv=settings.default_model)
        )
        task_id = outcome.record.task_id
        assert task_id is not None
        before = sandbox.state.stats.requests.get("fetch", 0)

        async def follow(service: SunoService) -> None:
            status = Status.PENDING
            while not status.finished:
                status = (await service.status(task_id, wait_s=5)).record.status
            assert status is Status.COMPLETE

        with anyio.fail_after(BOUND_S):
            async with anyio.create_task_group() as tg:
                for service in services:
                    for _ in range(waiters_each):
                        tg.start_soon(follow, service)
        return sandbox.state.stats.requests.get("fetch", 0) - before


@pytest.mark.slow
@pytest.mark.timed  # how many fetches a schedule makes depends on the polls coming on time
async def test_three_server_replicas_following_one_task_cost_about_what_one_does(
    database: str, tmp_path: Path
) -> None:
    alone = await fetches_following_one_task(database, tmp_path, 1, 6)
    three = await fetches_following_one_task(database, tmp_path, 3, 2)
    print(f"fetches following one task to complete: 1 replica {alone}, 3 replicas {three}")
    assert three <= 1.2 * alone + 2  # measured: the same, give or take a fetch (uncoordinated: 3x)
