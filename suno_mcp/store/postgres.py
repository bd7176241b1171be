"""The task ledger in PostgreSQL, for several server replicas sharing one record of what was paid for.

Chosen when ``SUNO_MCP_DATABASE_URL`` is set; otherwise the SQLite ledger (:mod:`suno_mcp.store.sqlite`)
is used. Both provide :class:`~suno_mcp.store.base.LedgerStore` with the rules of
:mod:`suno_mcp.store.rules`: the intent row is committed before a submit leaves the machine, and a
duplicate request within the window is answered from the ledger instead of paid for twice.

Across replicas the duplicate guard cannot be a lock in one process: :meth:`PostgresLedger.reserve`
takes a transaction-scoped advisory lock on the tenant and the request's fingerprint, so two replicas
reserving the same request for one tenant queue up in the database and the second sees the first one's
committed row. Every row carries its tenant ("" in the single-key modes); reads, counts and the
duplicate guard see one tenant's rows only.

The schema is versioned in a ``schema_version`` table; :data:`MIGRATIONS` holds each step, applied
under an advisory lock so replicas starting together do not run them twice.

The driver is psycopg 3 (its async connection). One connection per ledger, used by one call at a
time: every call is a short statement or transaction, and the order of writes stays the order
they were asked for, as with the SQLite ledger's one worker thread. When the database drops it (a
restart, a failover), the next call connects again.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb

from suno_mcp.domain.models import ApiFamily, SavedFile, Status, Task, TaskKind, TaskRecord, UsageLine
from suno_mcp.domain.spending import Budget
from suno_mcp.store import rules
from suno_mcp.store.base import Milestone

CONNECT_TIMEOUT_S = 10

# Advisory-lock namespaces (the first of the two-int form): one for migrations, one for reservations,
# one for adoptions, one for budgets. The numbers only have to differ from each other and from other
# users' locks.
_LOCK_MIGRATE = 0x53554E4F  # "SUNO"
_LOCK_RESERVE = 0x53554E31
_LOCK_ADOPT = 0x53554E32
_LOCK_BUDGET = 0x53554E33

_SQL = rules.POSTGRES

MIGRATIONS: tuple[str, ...] = (
    # 1: tasks and downloaded files, as the SQLite ledger's first two steps leave them
    """
    CREATE TABLE tasks (
        seq          BIGSERIAL UNIQUE,
        local_id     TEXT PRIMARY KEY,
        task_id      TEXT UNIQUE,
        api          TEXT NOT NULL,
        kind         TEXT NOT NULL,
        fingerprint  TEXT,
        request      JSONB NOT NULL,
        status       TEXT NOT NULL,
        raw_status   TEXT,
        error        TEXT,
        clips        JSONB NOT NULL DEFAULT '[]',
        lyrics_title TEXT,
        lyrics_text  TEXT,
        sandbox      BOOLEAN NOT NULL DEFAULT FALSE,
        model        TEXT,
        playable_s   DOUBLE PRECISION,
        complete_s   DOUBLE PRECISION,
        raw_answer   TEXT,
        created_at   DOUBLE PRECISION NOT NULL,
        updated_at   DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX tasks_fingerprint ON tasks (fingerprint, created_at);
    CREATE INDEX tasks_created ON tasks (created_at);
    CREATE INDEX tasks_clips ON tasks USING GIN (clips jsonb_path_ops);
    CREATE INDEX tasks_milestones ON tasks (api, kind, model, created_at);
    CREATE TABLE files (
        clip_id     TEXT PRIMARY KEY,
        task_id     TEXT,
        path        TEXT NOT NULL,
        url         TEXT NOT NULL,
        bytes       BIGINT NOT NULL,
        mime_type   TEXT NOT NULL,
        created_at  DOUBLE PRECISION NOT NULL
    )
    """,
    # 2: every row belongs to a tenant (team mode; '' is the server's own key, where earlier rows
    # land); a task id is unique per tenant only, and a downloaded file is keyed by tenant and clip
    """
    ALTER TABLE tasks ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
    ALTER TABLE tasks DROP CONSTRAINT tasks_task_id_key;
    ALTER TABLE tasks ADD CONSTRAINT tasks_tenant_task_id_key UNIQUE (tenant, task_id);
    DROP INDEX tasks_fingerprint;
    CREATE INDEX tasks_fingerprint ON tasks (tenant, fingerprint, created_at);
    CREATE INDEX tasks_tenant_created ON tasks (tenant, created_at);
    ALTER TABLE files ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
    ALTER TABLE files DROP CONSTRAINT files_pkey;
    ALTER TABLE files ADD CONSTRAINT files_pkey PRIMARY KEY (tenant, clip_id)
    """,
    # 3 (it follows the tenants' step 2 and needs nothing of it): who polls which task, until when,
    # and who fetched it last (suno_mcp.engine.coordination_pg). Times are the database's clock.
    """
    CREATE TABLE poll_leases (
        tenant      TEXT NOT NULL,
        task_id     TEXT NOT NULL,
        holder      TEXT NOT NULL,
        lease_until TIMESTAMPTZ NOT NULL,
        fetched_at  TIMESTAMPTZ,
        fetched_by  TEXT,
        PRIMARY KEY (tenant, task_id)
    );
    CREATE INDEX poll_leases_expiry ON poll_leases (lease_until)
    """,
)

_Conn = psycopg.AsyncConnection[DictRow]
T = TypeVar("T")


async def _connect(url: str) -> _Conn:
    return await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_S
    )


async def _finish(work: Awaitable[T]) -> T:
    """Run ``work`` to its end even when the caller is cancelled meanwhile (a write is never half-done)."""
    with anyio.CancelScope(shield=True):
        result = await work
    return result  # noqa: RET504 (outside the scope: its __exit__ may swallow, so mypy wants the return here)


class PostgresLedger:
    """The ledger in a PostgreSQL database; provides :class:`~suno_mcp.store.base.LedgerStore`.

    Open it with :meth:`open`. Writes run shielded from cancellation, so a write asked for
    (the intent before a paid submit above all) is finished, never half-done.
    """

    def __init__(self, conn: _Conn, url: str, *, clock: Callable[[], float] = time.time) -> None:
        self._conn = conn
        self._url = url  # to connect again when the database has dropped the connection
        self._clock = clock
        self._lock = anyio.Lock()
        self._written = rules.WrittenStates()

    @classmethod
    async def open(cls, url: str, *, clock: Callable[[], float] = time.time) -> PostgresLedger:
        """Connect to ``url`` (a libpq URL or key=value string) and bring the schema up to date."""
        conn = await _connect(url)
        ledger = cls(conn, url, clock=clock)
        try:
            await ledger._migrate()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await conn.close()
            raise
        return ledger

    @property
    def path(self) -> Path | None:
        """None: this ledger lives in a database server, not a file."""
        return None

    @asynccontextmanager
    async def _connected(self) -> AsyncIterator[None]:
        """Hold the ledger's one connection (one call at a time), made again first when the
        database dropped it: after a restart or a failover the next call connects instead of
        failing for the rest of the process's life. Raises the driver's error while it cannot."""
        async with self._lock:
            if self._conn.closed:
                self._conn = await _connect(self._url)
            yield

    async def close(self) -> None:
        """Close the connection once the call in progress has finished."""
        with anyio.CancelScope(shield=True):
            async with self._lock:  # closing needs no connection made again
                await self._conn.close()

    async def _migrate(self) -> None:
        async with self._connected(), self._conn.transaction():
            await self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_MIGRATE,))
            await self._conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = await (await self._conn.execute("SELECT max(version) AS v FROM schema_version")).fetchone()
            version = int(row["v"]) if row and row["v"] is not None else 0
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"the ledger database was written by a newer suno-mcp (schema {version}); upgrade suno-mcp"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        await self._conn.execute(statement.encode())
                await self._conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))

    async def ping(self) -> None:
        """A trivial statement on the ledger's connection; raises when the database does not answer it."""
        with anyio.CancelScope(shield=True):  # a cancelled statement would close the connection
            async with self._connected():
                await self._conn.execute("SELECT 1 FROM schema_version LIMIT 1")

    async def schema_version(self) -> int:
        """The schema step this database is at."""
        with anyio.CancelScope(shield=True):  # a cancelled statement would close the connection
            async with self._connected():
                cur = await self._conn.execute("SELECT max(version) AS v FROM schema_version")
                row = await cur.fetchone()
        return int(row["v"]) if row and row["v"] is not None else 0

    # ------------------------------------------------------------ writes

    async def _insert(self, row: rules.NewRow) -> str:
        await self._conn.execute(
            "INSERT INTO tasks (local_id, tenant, task_id, api, kind, fingerprint, request, status, sandbox,"
            " created_at, updated_at, model) VALUES (%(local_id)s, %(tenant)s, %(task_id)s, %(api)s, %(kind)s,"
            " %(fingerprint)s, %(request)s, %(status)s, %(sandbox)s, %(created_at)s, %(updated_at)s, %(model)s)",
            {**row.columns, "request": Jsonb(row.request)},
        )
        return row.local_id

    async def record_intent(
        self,
        *,
        api: ApiFamily,
        kind: TaskKind,
        request: dict[str, Any],
        fingerprint: str | None,
        sandbox: bool = False,
        tenant: str = "",
    ) -> str:
        """Write the row for a submit about to be sent; returns its local id once committed."""
        row = rules.intent_row(tenant, api, kind, request, fingerprint, sandbox, self._clock())
        return await _finish(self._locked(self._insert(row)))

    async def reserve(
        self,
        *,
        api: ApiFamily,
        kind: TaskKind,
        request: dict[str, Any],
        fingerprint: str,
        window_s: float,
        sandbox: bool = False,
        budget: Budget | None = None,
        prices: Mapping[str, float] | None = None,
        allow_over: int = 0,
        tenant: str = "",
    ) -> tuple[str, TaskRecord | None]:
        """Find a live duplicate of this request or write the intent for it, atomically across replicas.

        See :meth:`~suno_mcp.store.base.LedgerStore.reserve`. The advisory lock on the tenant and
        fingerprint lasts until the transaction ends: a second reservation of the same request
        waits for it, and its check (a fresh snapshot, READ COMMITTED) then sees the first row.
        With a ``budget``, one more advisory lock serializes the tenant's budgeted reservations, so
        replicas cannot together slip past it; nothing is written when it raises.
        """
        now = self._clock()

        async def work() -> tuple[str, TaskRecord | None]:
            async with self._conn.transaction():
                # Two tenants' locks collide only when their hashes do: they then merely queue.
                await self._conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                    (_LOCK_RESERVE, f"{tenant}:{fingerprint}"),
                )
                if window_s > 0:
                    found = await self._duplicate_row(
                        rules.LiveDuplicate(tenant, fingerprint, now - window_s, sandbox)
                    )
                    if found is not None:
                        return "", await self._record(found)
                if budget is not None:
                    await self._conn.execute(
                        "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_BUDGET, tenant)
                    )
                    window = rules.PaidWindow(now - budget.window_s, sandbox, tenant)
                    used = await self._used(budget, prices or {}, window)
                    # Raising rolls the transaction back: nothing is written.
                    rules.check_budget(budget, prices or {}, kind, used, allow_over=allow_over)
                return await self._insert(
                    rules.intent_row(tenant, api, kind, request, fingerprint, sandbox, now)
                ), None

        return await _finish(self._locked(work()))

    async def _duplicate_row(self, duplicate: rules.LiveDuplicate) -> DictRow | None:
        cur = await self._conn.execute(duplicate.sql(_SQL), duplicate.params())
        return await cur.fetchone()

    async def record_submitted(self, local_id: str, task: Task) -> None:
        """The upstream accepted the submit: store its task id and first state."""
        with anyio.CancelScope(shield=True):
            async with self._connected(), self._conn.transaction():
                # The submit's answer as received (bounded, key removed by the client) stays with
                # the row: whatever we could not read in it, a person still can.
                await self._conn.execute(
                    "UPDATE tasks SET task_id = %s, raw_answer = COALESCE(%s, raw_answer) WHERE local_id = %s",
                    (task.task_id, task.raw_answer, local_id),
                )
                await self._write_state(local_id, task)

    async def record_rejected(self, local_id: str, error: str) -> None:
        """The upstream refused the submit (nothing was charged)."""
        with anyio.CancelScope(shield=True):
            async with self._connected():
                await self._conn.execute(
                    "UPDATE tasks SET status = %(status)s, error = %(error)s, fingerprint = %(fingerprint)s,"
                    " updated_at = %(updated_at)s WHERE local_id = %(local_id)s",
                    rules.rejected_row(local_id, error, self._clock()),
                )

    async def record_unknown(self, local_id: str, error: str, raw_answer: str | None = None) -> None:
        """The submit may or may not have reached the upstream; ``raw_answer`` is what came back, if anything."""
        with anyio.CancelScope(shield=True):
            async with self._connected():
                await self._conn.execute(
                    "UPDATE tasks SET status = %(status)s, error = %(error)s,"
                    " raw_answer = COALESCE(%(raw_answer)s, raw_answer), updated_at = %(updated_at)s"
                    " WHERE local_id = %(local_id)s",
                    rules.unknown_row(local_id, error, raw_answer, self._clock()),
                )

    async def update(self, task: Task, *, tenant: str = "") -> None:
        """Store a newer state of one of the tenant's tasks; an answer identical to the last one
        written here is skipped (most polls find nothing new)."""
        if self._written.unchanged(task, tenant):
            return
        with anyio.CancelScope(shield=True):
            async with self._connected(), self._conn.transaction():
                row = await self._row_by_task_id(task.task_id, tenant)
                if row is None:
                    return
                await self._write_state(str(row["local_id"]), task)
        self._written.remember(task, tenant)

    async def _write_state(self, local_id: str, task: Task) -> None:
        # FOR UPDATE: two replicas polling the same task merge one after the other, so
        # neither erases a clip the other just added.
        cur = await self._conn.execute("SELECT clips FROM tasks WHERE local_id = %s FOR UPDATE", (local_id,))
        old = await cur.fetchone()
        clips = rules.merge_clips(old["clips"] if old else [], task.clips)
        await self._conn.execute(
            "UPDATE tasks SET status = %(status)s, raw_status = %(raw_status)s, error = %(error)s, clips = %(clips)s,"
            " lyrics_title = COALESCE(%(lyrics_title)s, lyrics_title),"
            " lyrics_text = COALESCE(%(lyrics_text)s, lyrics_text), updated_at = %(updated_at)s"
            " WHERE local_id = %(local_id)s",
            {**rules.state_row(local_id, task, self._clock()), "clips": Jsonb(clips)},
        )

    async def adopt(
        self, api: ApiFamily, task: Task, *, sandbox: bool = False, tenant: str = ""
    ) -> TaskRecord:
        """Keep a task made elsewhere (found upstream by its id), once per tenant however many replicas ask."""
        row = rules.adopted_row(tenant, api, task, sandbox, self._clock())
        return await _finish(self._adopt(tenant, row, task))

    async def _adopt(self, tenant: str, row: rules.NewRow, task: Task) -> TaskRecord:
        async with self._connected():
            async with self._conn.transaction():
                await self._conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                    (_LOCK_ADOPT, f"{tenant}:{task.task_id}"),
                )
                known = await self._row_by_task_id(task.task_id, tenant)
                if known is None:
                    await self._write_state(await self._insert(row), task)
                    known = await self._row_by_task_id(task.task_id, tenant)
            assert known is not None  # found or just written
            return await self._record(known)

    async def record_milestone(
        self, task_id: str, milestone: str, seconds: float, *, tenant: str = ""
    ) -> None:
        """The task was first seen playable (or complete) ``seconds`` after its submit."""
        query = rules.milestone_sql(_SQL, milestone)
        with anyio.CancelScope(shield=True):
            async with self._connected():
                await self._conn.execute(query, {"seconds": seconds, "tenant": tenant, "task_id": task_id})

    async def record_file(self, saved: SavedFile, *, tenant: str = "") -> None:
        """Remember a downloaded file of one of the tenant's clips."""
        with anyio.CancelScope(shield=True):
            async with self._connected():
                await self._conn.execute(
                    "INSERT INTO files (tenant, clip_id, task_id, path, url, bytes, mime_type, created_at)"
                    " VALUES (%(tenant)s, %(clip_id)s, %(task_id)s, %(path)s, %(url)s, %(bytes)s, %(mime_type)s,"
                    " %(created_at)s) ON CONFLICT (tenant, clip_id) DO UPDATE SET"
                    " task_id = EXCLUDED.task_id, path = EXCLUDED.path, url = EXCLUDED.url,"
                    " bytes = EXCLUDED.bytes, mime_type = EXCLUDED.mime_type, created_at = EXCLUDED.created_at",
                    rules.file_row(saved, tenant, self._clock()),
                )

    async def _locked(self, work: Awaitable[T]) -> T:
        async with self._connected():
            return await work

    # ------------------------------------------------------------ reads

    async def _used(self, budget: Budget, prices: Mapping[str, float], window: rules.PaidWindow) -> float:
        cur = await self._conn.execute(rules.used_sql(_SQL), window.params())
        return rules.budget_used(budget, prices, await cur.fetchall())

    async def used(
        self,
        budget: Budget,
        prices: Mapping[str, float] | None = None,
        *,
        sandbox: bool = False,
        tenant: str = "",
    ) -> float:
        """How much of the budget's current window the tenant's paid requests have used."""
        window = rules.PaidWindow(self._clock() - budget.window_s, sandbox, tenant)
        # Shielded: a statement cancelled part-way closes the connection, the ledger's only one.
        return await _finish(self._locked(self._used(budget, prices or {}, window)))

    async def usage(self, since: float, *, sandbox: bool = False, tenant: str = "") -> list[UsageLine]:
        """The tenant's paid requests made at or after ``since`` (a wall-clock time), by kind, family and model."""
        with anyio.CancelScope(shield=True):  # a cancelled statement would close the connection
            async with self._connected():
                cur = await self._conn.execute(
                    rules.usage_sql(_SQL), rules.PaidWindow(since, sandbox, tenant).params()
                )
                rows = await cur.fetchall()
        return [rules.usage_line(row) for row in rows]

    async def milestones(self, *, per_key: int = 20) -> list[Milestone]:
        """The newest milestone times of every tenant: (api, kind, model, milestone, seconds), oldest first."""
        with anyio.CancelScope(shield=True):  # a cancelled statement would close the connection
            async with self._connected():
                cur = await self._conn.execute(rules.milestones_sql(_SQL), rules.milestones_params(per_key))
                rows = await cur.fetchall()
        return rules.milestones(rows)

    async def find_duplicate(
        self, fingerprint: str, window_s: float, *, sandbox: bool = False, tenant: str = ""
    ) -> TaskRecord | None:
        """The tenant's newest live record with this request fingerprint made within the window."""
        duplicate = rules.LiveDuplicate(tenant, fingerprint, self._clock() - window_s, sandbox)

        async def work() -> TaskRecord | None:
            row = await self._duplicate_row(duplicate)
            return None if row is None else await self._record(row)

        # Shielded: a statement cancelled part-way closes the connection, the ledger's only one.
        return await _finish(self._locked(work()))

    async def _row_by_task_id(self, task_id: str, tenant: str) -> DictRow | None:
        cur = await self._conn.execute(
            "SELECT * FROM tasks WHERE tenant = %s AND (task_id = %s OR local_id = %s) LIMIT 1",
            (tenant, task_id, task_id),
        )
        return await cur.fetchone()

    async def get(self, task_id: str, *, tenant: str = "") -> TaskRecord | None:
        """The tenant's record with this upstream task id (or local id), if any."""

        async def work() -> TaskRecord | None:
            row = await self._row_by_task_id(task_id, tenant)
            return None if row is None else await self._record(row)

        # Shielded: a statement cancelled part-way closes the connection, the ledger's only one.
        return await _finish(self._locked(work()))

    async def find_by_clip(self, clip_id: str, *, tenant: str = "") -> TaskRecord | None:
        """The tenant's newest record one of whose clips has this id."""

        async def work() -> TaskRecord | None:
            return await self._find_by_clip(clip_id, tenant)

        # Shielded: a statement cancelled part-way closes the connection, the ledger's only one.
        return await _finish(self._locked(work()))

    async def _find_by_clip(self, clip_id: str, tenant: str) -> TaskRecord | None:
        # Containment is exact (an element of the clips array whose id is this id) and uses the GIN index.
        cur = await self._conn.execute(
            f"SELECT * FROM tasks WHERE tenant = %s AND clips @> %s ORDER BY {_SQL.newest_first} LIMIT 1",  # noqa: S608 (a fixed fragment)
            (tenant, Jsonb([{"id": clip_id}])),
        )
        row = await cur.fetchone()
        return None if row is None else await self._record(row)

    async def find(self, task_or_clip_id: str, *, tenant: str = "") -> TaskRecord | None:
        """The tenant's record of a task id, else their newest record holding a clip of that id."""

        async def work() -> TaskRecord | None:
            row = await self._row_by_task_id(task_or_clip_id, tenant)
            if row is not None:
                return await self._record(row)
            return await self._find_by_clip(task_or_clip_id, tenant)

        # Shielded: a statement cancelled part-way closes the connection, the ledger's only one.
        return await _finish(self._locked(work()))

    async def recent(
        self, *, statuses: Sequence[Status] | None = None, limit: int = 20, tenant: str = ""
    ) -> list[TaskRecord]:
        """The tenant's newest records first, optionally only those in some statuses."""

        async def work() -> list[TaskRecord]:
            if statuses:
                cur = await self._conn.execute(
                    "SELECT * FROM tasks WHERE tenant = %s AND status = ANY(%s)"  # noqa: S608 (a fixed fragment)
                    f" ORDER BY {_SQL.newest_first} LIMIT %s",
                    (tenant, [s.value for s in statuses], limit),
                )
            else:
                cur = await self._conn.execute(
                    f"SELECT * FROM tasks WHERE tenant = %s ORDER BY {_SQL.newest_first} LIMIT %s",  # noqa: S608 (a fixed fragment)
                    (tenant, limit),
                )
            rows = await cur.fetchall()
            return [await self._record(r) for r in rows]

        # Shielded: a statement cancelled part-way closes the connection, the ledger's only one.
        return await _finish(self._locked(work()))

    async def _files_for(self, clip_ids: Sequence[str], tenant: str) -> list[SavedFile]:
        if not clip_ids:
            return []
        cur = await self._conn.execute(
            "SELECT * FROM files WHERE tenant = %s AND clip_id = ANY(%s)", (tenant, list(clip_ids))
        )
        return [rules.saved_file(row) for row in await cur.fetchall()]

    async def _record(self, row: DictRow) -> TaskRecord:
        record = rules.task_record(row, row["request"], row["clips"])
        record.files = await self._files_for(record.clip_ids, row["tenant"])
        return record
