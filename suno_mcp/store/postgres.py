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

The driver is psycopg 3, through the pool of :class:`suno_mcp.database.Database`: each call takes
a checked connection for one short statement or transaction, so calls run side by side and the
database's locks (advisory, transaction-scoped; ``FOR UPDATE`` on a row) order the writes that must
not interleave. A dropped connection, a restart or a failover costs the calls in flight at that
moment: they raise :class:`~suno_mcp.domain.errors.LedgerUnavailableError`, and the next call,
once the database answers, gets a new connection. No call waits past its limits.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb

from suno_mcp.database import Database, Limits
from suno_mcp.domain.models import ApiFamily, SavedFile, Status, Task, TaskKind, TaskRecord, UsageLine
from suno_mcp.domain.spending import Budget
from suno_mcp.store import rules, signin
from suno_mcp.store.base import LatencySample

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
    # 4: OAuth sign-in (issue 24): clients, pending sign-ins, codes, tokens, sealed keys (store/signin.py)
    signin.DDL,
)

_Conn = psycopg.AsyncConnection[DictRow]
T = TypeVar("T")

# Connections per replica: calls run side by side, each on its own; the database's limit is shared
# by every replica (and the poll coordinator's few).
POOL_SIZE = 8
# Migrations may rewrite a table (and wait for another replica's), longer than any call.
MIGRATE_S = 120.0


class PostgresLedger:
    """The ledger in a PostgreSQL database; provides :class:`~suno_mcp.store.base.LedgerStore`.

    Open it with :meth:`open`. Every call runs on a checked connection of the ledger's pool and
    ends within its :class:`~suno_mcp.database.Limits` (``call_s``), raising
    :class:`~suno_mcp.domain.errors.LedgerUnavailableError` when the database cannot answer in time.
    A write, once asked (the intent before a paid submit above all), is not cut short by the
    caller's cancellation, only by that bound: it commits, or it is rolled back whole.
    """

    def __init__(self, db: Database[DictRow], *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        self._written = rules.WrittenStates()

    @classmethod
    async def open(
        cls, url: str, *, clock: Callable[[], float] = time.time, limits: Limits | None = None
    ) -> PostgresLedger:
        """Connect to ``url`` (a libpq URL or key=value string) and bring the schema up to date.

        Raises :class:`~suno_mcp.domain.errors.LedgerUnavailableError` when the database does not
        answer within ``limits`` (the defaults of :class:`~suno_mcp.database.Limits`)."""
        db: Database[DictRow] = await Database.open(
            url, name="suno-mcp ledger", limits=limits or Limits(), max_size=POOL_SIZE, row_factory=dict_row
        )
        ledger = cls(db, clock=clock)
        try:
            await ledger._migrate()
        except BaseException:
            await db.close()
            raise
        return ledger

    @property
    def path(self) -> Path | None:
        """None: this ledger lives in a database server, not a file."""
        return None

    async def close(self) -> None:
        """Close the pool (a call still in progress closes its connection when it ends); returns
        within the limits' ``close_s`` whatever the database does."""
        await self._db.close()

    async def _read(self, work: Callable[[_Conn], Awaitable[T]]) -> T:
        """Run ``work`` on a connection; cancelling it closes that connection (the pool replaces it)."""
        async with self._db.connection() as conn:
            return await work(conn)

    async def _write(self, work: Callable[[_Conn], Awaitable[T]]) -> T:
        """Run ``work`` (one statement or one transaction) to its end even when the caller is
        cancelled meanwhile, within the limits' ``call_s``: it commits or it is rolled back."""
        with anyio.CancelScope(shield=True):  # bounded: the connection's call deadline
            async with self._db.connection() as conn:
                result = await work(conn)
        return result  # outside the scope: its __exit__ may swallow, so mypy wants the return here

    def signin_store(self) -> signin.SignInStore:
        """The sign-in records in this database, on the ledger's pool and within its limits."""
        return signin.SignInStore(_SignInRunner(self))

    async def _migrate(self) -> None:
        async with self._db.connection(call_s=MIGRATE_S) as conn, conn.transaction():
            # A step may rewrite a table, and another replica's steps hold the lock meanwhile.
            ms = int(MIGRATE_S * 1000)
            await conn.execute(f"SET LOCAL statement_timeout = {ms}; SET LOCAL lock_timeout = {ms}".encode())
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_MIGRATE,))
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = await (await conn.execute("SELECT max(version) AS v FROM schema_version")).fetchone()
            version = int(row["v"]) if row and row["v"] is not None else 0
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"the ledger database was written by a newer suno-mcp (schema {version}); upgrade suno-mcp"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        await conn.execute(statement.encode())
                await conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))

    async def ping(self) -> None:
        """A trivial statement on a checked connection; raises
        :class:`~suno_mcp.domain.errors.LedgerUnavailableError` when the database does not answer it."""

        async def work(conn: _Conn) -> None:
            await conn.execute("SELECT 1 FROM schema_version LIMIT 1")

        await self._read(work)

    async def schema_version(self) -> int:
        """The schema step this database is at."""

        async def work(conn: _Conn) -> DictRow | None:
            return await (await conn.execute("SELECT max(version) AS v FROM schema_version")).fetchone()

        row = await self._read(work)
        return int(row["v"]) if row and row["v"] is not None else 0

    # ------------------------------------------------------------ writes

    @staticmethod
    async def _insert(conn: _Conn, row: rules.NewRow) -> str:
        await conn.execute(
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
        return await self._write(lambda conn: self._insert(conn, row))

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

        async def work(conn: _Conn) -> tuple[str, TaskRecord | None]:
            async with conn.transaction():
                # Two tenants' locks collide only when their hashes do: they then merely queue.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                    (_LOCK_RESERVE, f"{tenant}:{fingerprint}"),
                )
                if window_s > 0:
                    found = await self._duplicate_row(
                        conn, rules.LiveDuplicate(tenant, fingerprint, now - window_s, sandbox)
                    )
                    if found is not None:
                        return "", await self._record(conn, found)
                if budget is not None:
                    await conn.execute(
                        "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_BUDGET, tenant)
                    )
                    window = rules.PaidWindow(now - budget.window_s, sandbox, tenant)
                    used = await self._used(conn, budget, prices or {}, window)
                    # Raising rolls the transaction back: nothing is written.
                    rules.check_budget(budget, prices or {}, kind, used, allow_over=allow_over)
                return await self._insert(
                    conn, rules.intent_row(tenant, api, kind, request, fingerprint, sandbox, now)
                ), None

        return await self._write(work)

    @staticmethod
    async def _duplicate_row(conn: _Conn, duplicate: rules.LiveDuplicate) -> DictRow | None:
        cur = await conn.execute(duplicate.sql(_SQL), duplicate.params())
        return await cur.fetchone()

    async def record_submitted(self, local_id: str, task: Task) -> None:
        """The upstream accepted the submit: store its task id and first state."""

        async def work(conn: _Conn) -> None:
            async with conn.transaction():
                twin_cur = await conn.execute(
                    rules.adopted_twin_sql(_SQL).encode(), {"task_id": task.task_id, "local_id": local_id}
                )
                twin = await twin_cur.fetchone()
                if twin is not None:
                    await conn.execute("DELETE FROM tasks WHERE local_id = %s", (twin["local_id"],))
                # The submit's answer as received (bounded, key removed by the client) stays with
                # the row: whatever we could not read in it, a person still can.
                await conn.execute(
                    "UPDATE tasks SET task_id = %s, raw_answer = COALESCE(%s, raw_answer) WHERE local_id = %s",
                    (task.task_id, task.raw_answer, local_id),
                )
                await self._write_state(conn, local_id, task)
                if twin is not None:
                    # Fetched after the submit's answer: the twin's state is the newer one.
                    await self._write_state(conn, local_id, (await self._record(conn, twin)).as_task())
                    await conn.execute(
                        rules.milestones_carried_sql(_SQL).encode(),
                        {
                            "playable_s": twin["playable_s"],
                            "complete_s": twin["complete_s"],
                            "local_id": local_id,
                        },
                    )

        await self._write(work)

    async def record_rejected(self, local_id: str, error: str) -> None:
        """The upstream refused the submit (nothing was charged)."""
        await self._write_statement(
            "UPDATE tasks SET status = %(status)s, error = %(error)s, fingerprint = %(fingerprint)s,"
            " updated_at = %(updated_at)s WHERE local_id = %(local_id)s",
            rules.rejected_row(local_id, error, self._clock()),
        )

    async def record_unknown(self, local_id: str, error: str, raw_answer: str | None = None) -> None:
        """The submit may or may not have reached the upstream; ``raw_answer`` is what came back, if anything."""
        await self._write_statement(
            "UPDATE tasks SET status = %(status)s, error = %(error)s,"
            " raw_answer = COALESCE(%(raw_answer)s, raw_answer), updated_at = %(updated_at)s"
            " WHERE local_id = %(local_id)s",
            rules.unknown_row(local_id, error, raw_answer, self._clock()),
        )

    async def _write_statement(self, query: str, params: Mapping[str, Any]) -> None:
        async def work(conn: _Conn) -> None:
            await conn.execute(query.encode(), params)

        await self._write(work)

    async def update(self, task: Task, *, tenant: str = "") -> None:
        """Store a newer state of one of the tenant's tasks; an answer identical to the last one
        written here is skipped (most polls find nothing new)."""
        if self._written.unchanged(task, tenant):
            return

        async def work(conn: _Conn) -> bool:
            async with conn.transaction():
                row = await self._row_by_task_id(conn, task.task_id, tenant)
                if row is None:
                    return False
                await self._write_state(conn, str(row["local_id"]), task)
                return True

        if await self._write(work):
            self._written.remember(task, tenant)

    async def _write_state(self, conn: _Conn, local_id: str, task: Task) -> None:
        # FOR UPDATE: two replicas (or two calls of this one) polling the same task merge one
        # after the other, so neither erases a clip the other just added.
        cur = await conn.execute("SELECT clips FROM tasks WHERE local_id = %s FOR UPDATE", (local_id,))
        old = await cur.fetchone()
        clips = rules.merge_clips(old["clips"] if old else [], task.clips)
        await conn.execute(
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

        async def work(conn: _Conn) -> TaskRecord:
            async with conn.transaction():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                    (_LOCK_ADOPT, f"{tenant}:{task.task_id}"),
                )
                known = await self._row_by_task_id(conn, task.task_id, tenant)
                if known is None:
                    await self._write_state(conn, await self._insert(conn, row), task)
                    known = await self._row_by_task_id(conn, task.task_id, tenant)
            assert known is not None  # found or just written
            return await self._record(conn, known)

        return await self._write(work)

    async def record_milestone(
        self, task_id: str, milestone: str, seconds: float, *, tenant: str = ""
    ) -> None:
        """The task was first seen playable (or complete) ``seconds`` after its submit."""
        await self._write_statement(
            rules.milestone_sql(_SQL, milestone), {"seconds": seconds, "tenant": tenant, "task_id": task_id}
        )

    async def record_file(self, saved: SavedFile, *, tenant: str = "") -> None:
        """Remember a downloaded file of one of the tenant's clips."""
        await self._write_statement(
            "INSERT INTO files (tenant, clip_id, task_id, path, url, bytes, mime_type, created_at)"
            " VALUES (%(tenant)s, %(clip_id)s, %(task_id)s, %(path)s, %(url)s, %(bytes)s, %(mime_type)s,"
            " %(created_at)s) ON CONFLICT (tenant, clip_id) DO UPDATE SET"
            " task_id = EXCLUDED.task_id, path = EXCLUDED.path, url = EXCLUDED.url,"
            " bytes = EXCLUDED.bytes, mime_type = EXCLUDED.mime_type, created_at = EXCLUDED.created_at",
            rules.file_row(saved, tenant, self._clock()),
        )

    # ------------------------------------------------------------ reads

    @staticmethod
    async def _used(
        conn: _Conn, budget: Budget, prices: Mapping[str, float], window: rules.PaidWindow
    ) -> float:
        cur = await conn.execute(rules.used_sql(_SQL), window.params())
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
        return await self._read(lambda conn: self._used(conn, budget, prices or {}, window))

    async def usage(self, since: float, *, sandbox: bool = False, tenant: str = "") -> list[UsageLine]:
        """The tenant's paid requests made at or after ``since`` (a wall-clock time), by kind, family and model."""
        rows = await self._fetch_all(rules.usage_sql(_SQL), rules.PaidWindow(since, sandbox, tenant).params())
        return [rules.usage_line(row) for row in rows]

    async def milestones(self, *, per_key: int = 20) -> list[LatencySample]:
        """The newest milestone times of every tenant: (api, kind, model, milestone, seconds), oldest first."""
        return rules.milestones(
            await self._fetch_all(rules.milestones_sql(_SQL), rules.milestones_params(per_key))
        )

    async def _fetch_all(self, query: str, params: Mapping[str, Any] | Sequence[Any]) -> list[DictRow]:
        async def work(conn: _Conn) -> list[DictRow]:
            return await (await conn.execute(query.encode(), params)).fetchall()

        return await self._read(work)

    async def find_duplicate(
        self, fingerprint: str, window_s: float, *, sandbox: bool = False, tenant: str = ""
    ) -> TaskRecord | None:
        """The tenant's newest live record with this request fingerprint made within the window."""
        duplicate = rules.LiveDuplicate(tenant, fingerprint, self._clock() - window_s, sandbox)

        async def work(conn: _Conn) -> TaskRecord | None:
            row = await self._duplicate_row(conn, duplicate)
            return None if row is None else await self._record(conn, row)

        return await self._read(work)

    @staticmethod
    async def _row_by_task_id(conn: _Conn, task_id: str, tenant: str) -> DictRow | None:
        cur = await conn.execute(
            "SELECT * FROM tasks WHERE tenant = %s AND (task_id = %s OR local_id = %s) LIMIT 1",
            (tenant, task_id, task_id),
        )
        return await cur.fetchone()

    async def get(self, task_id: str, *, tenant: str = "") -> TaskRecord | None:
        """The tenant's record with this upstream task id (or local id), if any."""

        async def work(conn: _Conn) -> TaskRecord | None:
            row = await self._row_by_task_id(conn, task_id, tenant)
            return None if row is None else await self._record(conn, row)

        return await self._read(work)

    async def find_by_clip(self, clip_id: str, *, tenant: str = "") -> TaskRecord | None:
        """The tenant's newest record one of whose clips has this id."""
        return await self._read(lambda conn: self._find_by_clip(conn, clip_id, tenant))

    async def _find_by_clip(self, conn: _Conn, clip_id: str, tenant: str) -> TaskRecord | None:
        # Containment is exact (an element of the clips array whose id is this id) and uses the GIN index.
        cur = await conn.execute(
            f"SELECT * FROM tasks WHERE tenant = %s AND clips @> %s ORDER BY {_SQL.newest_first} LIMIT 1",  # noqa: S608 (a fixed fragment)
            (tenant, Jsonb([{"id": clip_id}])),
        )
        row = await cur.fetchone()
        return None if row is None else await self._record(conn, row)

    async def find(self, task_or_clip_id: str, *, tenant: str = "") -> TaskRecord | None:
        """The tenant's record of a task id, else their newest record holding a clip of that id."""

        async def work(conn: _Conn) -> TaskRecord | None:
            row = await self._row_by_task_id(conn, task_or_clip_id, tenant)
            if row is not None:
                return await self._record(conn, row)
            return await self._find_by_clip(conn, task_or_clip_id, tenant)

        return await self._read(work)

    async def recent(
        self, *, statuses: Sequence[Status] | None = None, limit: int = 20, tenant: str = ""
    ) -> list[TaskRecord]:
        """The tenant's newest records first, optionally only those in some statuses."""

        async def work(conn: _Conn) -> list[TaskRecord]:
            if statuses:
                cur = await conn.execute(
                    "SELECT * FROM tasks WHERE tenant = %s AND status = ANY(%s)"  # noqa: S608 (a fixed fragment)
                    f" ORDER BY {_SQL.newest_first} LIMIT %s",
                    (tenant, [s.value for s in statuses], limit),
                )
            else:
                cur = await conn.execute(
                    f"SELECT * FROM tasks WHERE tenant = %s ORDER BY {_SQL.newest_first} LIMIT %s",  # noqa: S608 (a fixed fragment)
                    (tenant, limit),
                )
            return [await self._record(conn, r) for r in await cur.fetchall()]

        return await self._read(work)

    async def task_ids(self, prefix: str, *, limit: int = 20, tenant: str = "") -> tuple[list[str], int]:
        """The tenant's upstream task ids beginning with ``prefix``, newest first (at most ``limit``), and how many match."""
        match = rules.TaskIdPrefix(tenant, prefix, limit)

        async def work(conn: _Conn) -> tuple[list[str], int]:
            rows = await (await conn.execute(match.sql(_SQL).encode(), match.params())).fetchall()
            count = await (await conn.execute(match.count_sql(_SQL).encode(), match.params())).fetchone()
            return [row["task_id"] for row in rows], 0 if count is None else int(count["n"])

        return await self._read(work)

    @staticmethod
    async def _files_for(conn: _Conn, clip_ids: Sequence[str], tenant: str) -> list[SavedFile]:
        if not clip_ids:
            return []
        cur = await conn.execute(
            "SELECT * FROM files WHERE tenant = %s AND clip_id = ANY(%s)", (tenant, list(clip_ids))
        )
        return [rules.saved_file(row) for row in await cur.fetchall()]

    async def _record(self, conn: _Conn, row: DictRow) -> TaskRecord:
        record = rules.task_record(row, row["request"], row["clips"])
        record.files = await self._files_for(conn, record.clip_ids, row["tenant"])
        return record


class _SignInRunner:
    """:class:`~suno_mcp.store.signin.Runner` on the ledger's pool: reads as the ledger's reads, each
    write one transaction run to its end as the ledger's writes are."""

    def __init__(self, ledger: PostgresLedger) -> None:
        self._ledger = ledger

    async def read(self, sql: signin.Sql, params: signin.Params) -> list[signin.Row]:
        async def work(conn: _Conn) -> list[signin.Row]:
            return list(await (await conn.execute(sql.pyformat, params)).fetchall())

        return await self._ledger._read(work)

    async def write(self, steps: Sequence[tuple[signin.Sql, signin.Params]]) -> list[int]:
        async def work(conn: _Conn) -> list[int]:
            async with conn.transaction():
                return [(await conn.execute(sql.pyformat, params)).rowcount for sql, params in steps]

        return await self._ledger._write(work)
