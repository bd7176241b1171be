"""The ledger contract's fault cases, on a real database: what a caller sees when the database fails
under it (LedgerUnavailableError, never a driver error), that nothing committed is lost, and that the
next call once the database answers again works. And shutdown: closing while the database is stopped
or hung returns within its bound.

The PostgreSQL cases stop, restart and freeze the session's server (tests.support.postgres), so they
run one after another in the worker that owns it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import anyio
import psycopg
import pytest
from mcp import Client

from suno_mcp.database import Limits
from suno_mcp.domain.errors import LedgerUnavailableError
from suno_mcp.domain.models import Status, Task, TaskRef
from suno_mcp.engine.coordination_pg import PostgresCoordinator
from suno_mcp.server.app import build_server
from suno_mcp.service.backends import SandboxOptions, sandbox_backend
from suno_mcp.settings import load_settings
from suno_mcp.store.base import LedgerStore
from suno_mcp.store.postgres import _LOCK_RESERVE as LOCK_RESERVE
from suno_mcp.store.postgres import PostgresLedger
from suno_mcp.store.sqlite import SqliteLedger
from tests.support.ledgers import PATIENT, QUICK, Held
from tests.support.postgres import PostgresServer, hung, stopped

# Every wait of a test is bounded by this; the bounds under test are tighter and named where used.
BOUND_S = 30.0
# A caller hears "unavailable" within this (issue 21), and a shutdown takes at most SHUTDOWN_S.
ANSWER_S = 15.0
SHUTDOWN_S = 10.0
APP = "suno-mcp ledger"  # the ledger's connections in pg_stat_activity
FP = "fp-held"


def _task(task_id: str) -> Task:
    return Task(task_id=task_id, api="task", status=Status.RUNNING, clips=[])


async def _committed(ledger: LedgerStore, task_id: str) -> str:
    local = await ledger.record_intent(api="task", kind="music", request={"n": task_id}, fingerprint=None)
    await ledger.record_submitted(local, _task(task_id))
    return local


async def _reserve(ledger: LedgerStore) -> tuple[str, object]:
    return await ledger.reserve(api="task", kind="music", request={}, fingerprint=FP, window_s=60.0)


@asynccontextmanager
async def pg_ledger(url: str, limits: Limits) -> AsyncIterator[PostgresLedger]:
    ledger = await PostgresLedger.open(url, limits=limits)
    try:
        yield ledger
    finally:
        await ledger.close()


@contextmanager
def reservation_held(url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """Another replica in the middle of reserving the same request: it holds its advisory lock."""
    with psycopg.connect(url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (LOCK_RESERVE, f":{FP}"))
        yield other


async def _backend_waiting_for_a_lock(url: str) -> int:
    """The pid of the ledger's backend once it waits for a lock (a bounded wait: the caller's scope)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        while True:
            cur = await admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
                (APP,),
            )
            row = await cur.fetchone()
            if row is not None:
                return int(row[0])


async def _rows(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url) as db:
        row = await (await db.execute("SELECT count(*) FROM tasks")).fetchone()
        assert row is not None
        return int(row[0])


async def test_a_call_whose_backend_is_terminated_hears_the_ledger_is_unavailable_and_the_next_call_works(
    database: str,
) -> None:
    async with pg_ledger(database, PATIENT) as ledger:
        kept = await _committed(ledger, "t-kept")
        outcome: list[BaseException] = []

        async def reserve() -> None:
            with pytest.raises(LedgerUnavailableError) as caught:
                await _reserve(ledger)
            outcome.append(caught.value)

        with anyio.fail_after(BOUND_S), reservation_held(database):
            async with anyio.create_task_group() as tg:
                tg.start_soon(reserve)
                pid = await _backend_waiting_for_a_lock(database)
                async with await psycopg.AsyncConnection.connect(database, autocommit=True) as admin:
                    await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert isinstance(outcome[0].__cause__, psycopg.OperationalError)  # kept as the cause, not shown
        assert await _rows(database) == 1  # the terminated reservation wrote nothing
        local, duplicate = await _reserve(ledger)  # the next call works, on a new connection
        assert local
        assert duplicate is None
        assert (await ledger.get(kept)) is not None


@pytest.mark.slow  # stops or restarts the PostgreSQL server with pg_ctl
async def test_a_database_restart_costs_the_calls_made_while_it_is_down_and_the_next_call_works(
    database: str, postgres_server: PostgresServer
) -> None:
    async with pg_ledger(database, QUICK) as ledger:
        kept = await _committed(ledger, "t-kept")
        with stopped(postgres_server), anyio.fail_after(ANSWER_S):
            with pytest.raises(LedgerUnavailableError):
                await ledger.record_intent(api="task", kind="music", request={}, fingerprint=None)
            with pytest.raises(LedgerUnavailableError):
                await ledger.get(kept)
        # Restarted: the very next call is served, and everything committed before is there.
        record = await ledger.get(kept)
        assert record is not None
        assert record.task_id == "t-kept"
        await _committed(ledger, "t-after")
        assert len(await ledger.recent()) == 2


@pytest.mark.slow  # stops or restarts the PostgreSQL server with pg_ctl
async def test_a_server_stopped_during_a_call_fails_that_call_and_commits_none_of_it(
    database: str, postgres_server: PostgresServer
) -> None:
    async with pg_ledger(database, PATIENT) as ledger:
        kept = await _committed(ledger, "t-kept")
        with anyio.fail_after(BOUND_S), reservation_held(database):
            async with anyio.create_task_group() as tg:
                failed = anyio.Event()

                async def reserve() -> None:
                    with pytest.raises(LedgerUnavailableError):
                        await _reserve(ledger)
                    failed.set()

                tg.start_soon(reserve)
                await _backend_waiting_for_a_lock(database)
                with stopped(postgres_server):
                    await failed.wait()
        assert await _rows(database) == 1  # the interrupted reservation left nothing behind
        assert (await ledger.get(kept)) is not None
        local, _ = await _reserve(ledger)
        assert local


async def test_after_a_failover_to_a_read_only_server_the_write_is_unavailable_and_the_next_one_reconnects(
    database: str,
) -> None:
    name = database.rsplit("/", 1)[1]
    async with pg_ledger(database, QUICK) as ledger:
        kept = await _committed(ledger, "t-kept")
        with psycopg.connect(database, autocommit=True) as admin:
            # The address now leads to a standby: the connections made meanwhile cannot write.
            admin.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on".encode())
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (APP,)
            )
            with pytest.raises(LedgerUnavailableError, match="ReadOnlySqlTransaction"):
                await ledger.record_intent(api="task", kind="music", request={}, fingerprint=None)
            # The failover ends: the address leads to a primary again. The connection made before
            # is still a read-only session; the ledger must not keep it.
            admin.execute(f"ALTER DATABASE {name} RESET default_transaction_read_only".encode())
        await _committed(ledger, "t-after")
        assert len(await ledger.recent()) == 2
        assert (await ledger.get(kept)) is not None


async def test_a_write_held_by_another_writers_lock_past_the_timeout_is_unavailable_and_writes_nothing(
    held: Held,
) -> None:
    ledger = held.ledger
    kept = await _committed(ledger, "t-kept")
    with anyio.fail_after(BOUND_S):
        with held.hold():
            with pytest.raises(LedgerUnavailableError, match=held.message):
                await ledger.record_intent(api="task", kind="music", request={}, fingerprint=None)
            assert (await ledger.get(kept)) is not None  # reads still answer
        assert len(await ledger.recent()) == 1  # the refused write left nothing
        await _committed(ledger, "t-after")  # the lock is gone: writes work again
    assert len(await ledger.recent()) == 2


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["stopped", "hung"])
async def test_closing_the_ledger_and_the_coordinator_returns_within_the_bound_whatever_the_database_does(
    database: str, postgres_server: PostgresServer, fault: str
) -> None:
    ledger = await PostgresLedger.open(database)  # the default limits: what a server runs with
    coordinator = await PostgresCoordinator.open(database, "r1")
    broken = stopped(postgres_server) if fault == "stopped" else hung(postgres_server)

    async def on_change(tenant: str, task_id: str) -> None:
        pass

    async def write() -> None:
        # Under way when the shutdown begins: it ends with its own bound, not the cancellation.
        with pytest.raises(LedgerUnavailableError):
            await ledger.record_intent(api="task", kind="music", request={}, fingerprint=None)

    async def lease() -> None:
        assert await coordinator.take_lease(TaskRef("t1", "task"), read=False, fresh_s=1.0, lease_s=10.0)

    with broken:
        with anyio.fail_after(SHUTDOWN_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(coordinator.run, on_change)
                tg.start_soon(write)
                tg.start_soon(lease)
                await anyio.wait_all_tasks_blocked()
                tg.cancel_scope.cancel()
            await coordinator.close()
            await ledger.close()


@pytest.mark.slow
async def test_a_tool_call_while_the_database_is_down_says_nothing_was_sent_and_the_replica_serves_again_after(
    tmp_path: Path, postgres_server: PostgresServer, database: str
) -> None:
    settings = load_settings(environ={"SUNO_MCP_DATABASE_URL": database}, data_dir=tmp_path)
    server = build_server(settings, sandbox_backend(SandboxOptions(speed=100)))
    with anyio.fail_after(BOUND_S * 2):
        async with Client(server) as client:
            first = await client.call_tool("generate_music", {"description": "a waltz", "wait_seconds": 0})
            assert not first.is_error, first.content
            with stopped(postgres_server), anyio.fail_after(ANSWER_S):
                down = await client.call_tool("generate_music", {"description": "a march", "wait_seconds": 0})
            assert down.is_error
            text = down.content[0].text  # type: ignore[union-attr]
            assert "ledger is unavailable" in text
            assert "Nothing was sent" in text
            assert "nothing was charged" in text
            assert "again" in text
            assert "postgresql://" not in text
            assert "psycopg" not in text
            again = await client.call_tool("generate_music", {"description": "a march", "wait_seconds": 0})
            assert not again.is_error, again.content
    with psycopg.connect(database) as db:
        rows = db.execute("SELECT request->>'gpt_description_prompt' FROM tasks").fetchall()
    assert sorted(r[0] for r in rows) == ["a march", "a waltz"]  # the refused call left no row


@pytest.mark.slow  # ~5 s: the write under way waits out the default busy timeout
async def test_closing_the_sqlite_ledger_while_another_process_holds_its_lock_returns_within_the_bound(
    tmp_path: Path,
) -> None:
    # The default busy timeout, as a server runs with: the write under way when the shutdown begins
    # waits that long for the lock at most; the calls queued behind it leave with the cancellation.
    path = tmp_path / "l.sqlite3"
    ledger = await SqliteLedger.open(path)
    kept = await _committed(ledger, "t-kept")
    outcomes: list[str] = []

    async def write(n: int) -> None:
        try:
            await _committed(ledger, f"t-{n}")
            outcomes.append("written")
        except LedgerUnavailableError:
            outcomes.append("unavailable")  # the one under way: it ends with its own bound

    other = sqlite3.connect(path, isolation_level=None)  # as a second server process would
    try:
        other.execute("BEGIN IMMEDIATE")
        with anyio.fail_after(SHUTDOWN_S):
            async with anyio.create_task_group() as tg:
                for n in range(20):
                    tg.start_soon(write, n)
                await anyio.wait_all_tasks_blocked()
                tg.cancel_scope.cancel()
            await ledger.close()
    finally:
        other.execute("ROLLBACK")
        other.close()
    reopened = await SqliteLedger.open(path)
    try:
        assert outcomes == ["unavailable"]  # the 19 queued behind it left with the cancellation
        assert [r.local_id for r in await reopened.recent()] == [kept]  # nothing half-written
    finally:
        await reopened.close()
