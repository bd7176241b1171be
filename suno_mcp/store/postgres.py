"""The task ledger in PostgreSQL, for several server replicas sharing one record of what was paid for.

Chosen when ``SUNO_MCP_DATABASE_URL`` is set; otherwise the SQLite ledger (:mod:`suno_mcp.store.sqlite`)
is used. Both keep the same rules: the intent row is committed before a submit leaves the machine,
and a duplicate request within the window is answered from the ledger instead of paid for twice.

Across replicas the duplicate guard cannot be a lock in one process: :meth:`PostgresLedger.reserve`
takes a transaction-scoped advisory lock on the tenant and the request's fingerprint, so two replicas
reserving the same request for one tenant queue up in the database and the second sees the first one's
committed row. Every row carries its tenant ("" in the single-key modes); reads, counts and the
duplicate guard see one tenant's rows only.

The schema is versioned in a ``schema_version`` table; :data:`MIGRATIONS` holds each step, applied
under an advisory lock so replicas starting together do not run them twice.

The driver is psycopg 3 (its async connection). One connection per ledger, used by one call at a
time: every call is a short statement or transaction, and the order of writes stays the order
they were asked for, as with the SQLite ledger's one worker thread.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb

from suno_mcp.domain.models import ApiFamily, Clip, SavedFile, Status, Task, TaskKind, TaskRecord, UsageLine
from suno_mcp.domain.spending import Budget
from suno_mcp.store.base import OverBudget

CONNECT_TIMEOUT_S = 10

# Advisory-lock namespaces (the first of the two-int form): one for migrations, one for reservations,
# one for adoptions, one for budgets. The numbers only have to differ from each other and from other
# users' locks.
_LOCK_MIGRATE = 0x53554E4F  # "SUNO"
_LOCK_RESERVE = 0x53554E31
_LOCK_ADOPT = 0x53554E32
_LOCK_BUDGET = 0x53554E33

# Rows that cost (or may have cost) money: not refused before anything was made (failed
# without a task id), and not adopted from elsewhere (paid for by whoever made it).
_PAID = (
    "NOT (status = 'failed' AND task_id IS NULL) AND NOT (request @> '{\"adopted\": true}'::jsonb)"
    " AND created_at >= %s AND sandbox = %s AND tenant = %s"
)
# Fixed fragments only; the values go as parameters.
_USAGE_SQL = (
    "SELECT kind, api, model, COUNT(*) AS requests, SUM(CASE WHEN task_id IS NULL THEN 1 ELSE 0 END) AS maybe,"  # noqa: S608
    " SUM(jsonb_array_length(clips)) AS clips FROM tasks WHERE " + _PAID + " GROUP BY kind, api, model"
    " ORDER BY kind, api, model"
)

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

    def __init__(self, conn: _Conn, *, clock: Callable[[], float] = time.time) -> None:
        self._conn = conn
        self._clock = clock
        self._lock = anyio.Lock()
        self._written: dict[tuple[str, str], str] = {}  # (tenant, task id) -> the last state written here

    @classmethod
    async def open(cls, url: str, *, clock: Callable[[], float] = time.time) -> PostgresLedger:
        """Connect to ``url`` (a libpq URL or key=value string) and bring the schema up to date."""
        conn = await psycopg.AsyncConnection.connect(
            url, autocommit=True, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_S
        )
        ledger = cls(conn, clock=clock)
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

    async def close(self) -> None:
        """Close the connection once the call in progress has finished."""
        with anyio.CancelScope(shield=True):
            async with self._lock:
                await self._conn.close()

    async def _migrate(self) -> None:
        async with self._lock, self._conn.transaction():
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

    async def schema_version(self) -> int:
        """The schema step this database is at."""
        with anyio.CancelScope(shield=True):  # a cancelled statement would close the connection
            async with self._lock:
                cur = await self._conn.execute("SELECT max(version) AS v FROM schema_version")
                row = await cur.fetchone()
        return int(row["v"]) if row and row["v"] is not None else 0

    # ------------------------------------------------------------ writes

    async def _insert_intent(
        self,
        tenant: str,
        api: ApiFamily,
        kind: TaskKind,
        request: dict[str, Any],
        fingerprint: str | None,
        sandbox: bool,
        now: float,
        task_id: str | None = None,
    ) -> str:
        local_id = "local-" + uuid.uuid4().hex
        model = request.get("mv")
        await self._conn.execute(
            "INSERT INTO tasks (local_id, tenant, task_id, api, kind, fingerprint, request, status, sandbox,"
            " created_at, updated_at, model) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                local_id,
                tenant,
                task_id,
                api,
                kind,
                fingerprint,
                Jsonb(request),
                Status.UNKNOWN.value,
                sandbox,
                now,
                now,
                model if isinstance(model, str) else None,
            ),
        )
        return local_id

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
        return await _finish(
            self._locked(self._insert_intent(tenant, api, kind, request, fingerprint, sandbox, self._clock()))
        )

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

        The advisory lock on the tenant and fingerprint lasts until the transaction ends: a second
        reservation waits for it, and its check (a fresh snapshot, READ COMMITTED) then sees the first
        row. With a ``budget``, one more advisory lock serializes the tenant's budgeted reservations, so
        replicas cannot together slip past it; :class:`OverBudget` is raised with nothing written.
        Only the tenant's rows are duplicates or count against the budget.
        """
        return await _finish(
            self._reserve(
                tenant,
                api,
                kind,
                request,
                fingerprint,
                window_s,
                sandbox,
                self._clock(),
                budget,
                prices or {},
                allow_over,
            )
        )

    async def _reserve(
        self,
        tenant: str,
        api: ApiFamily,
        kind: TaskKind,
        request: dict[str, Any],
        fingerprint: str,
        window_s: float,
        sandbox: bool,
        now: float,
        budget: Budget | None = None,
        prices: Mapping[str, float] | None = None,
        allow_over: int = 0,
    ) -> tuple[str, TaskRecord | None]:
        async with self._lock:
            async with self._conn.transaction():
                # Two tenants' locks collide only when their hashes do: they then merely queue.
                await self._conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                    (_LOCK_RESERVE, f"{tenant}:{fingerprint}"),
                )
                duplicate: DictRow | None = None
                if window_s > 0:
                    duplicate = await self._duplicate_row(tenant, fingerprint, now - window_s, sandbox)
                if duplicate is None:
                    if budget is not None:
                        await self._conn.execute(
                            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_BUDGET, tenant)
                        )
                        used = await self._used(tenant, budget, prices or {}, now, sandbox)
                        this = budget.weight(kind, prices or {})
                        if used + this > budget.limit + allow_over * this + 1e-9:
                            raise OverBudget(used)  # the transaction rolls back: nothing written
                    local_id = await self._insert_intent(
                        tenant, api, kind, request, fingerprint, sandbox, now
                    )
                    return local_id, None
            return "", await self._record(duplicate)

    async def _duplicate_row(
        self, tenant: str, fingerprint: str, since: float, sandbox: bool
    ) -> DictRow | None:
        cur = await self._conn.execute(
            "SELECT * FROM tasks WHERE tenant = %s AND fingerprint = %s AND created_at >= %s AND status != %s"
            " AND sandbox = %s ORDER BY created_at DESC, seq DESC LIMIT 1",
            (tenant, fingerprint, since, Status.FAILED.value, sandbox),
        )
        return await cur.fetchone()

    async def _used(
        self, tenant: str, budget: Budget, prices: Mapping[str, float], now: float, sandbox: bool
    ) -> float:
        cur = await self._conn.execute(
            f"SELECT kind, COUNT(*) AS n FROM tasks WHERE {_PAID} GROUP BY kind",  # noqa: S608 (a fixed fragment)
            (now - budget.window_s, sandbox, tenant),
        )
        return float(sum(budget.weight(row["kind"], prices) * row["n"] for row in await cur.fetchall()))

    async def used(
        self,
        budget: Budget,
        prices: Mapping[str, float] | None = None,
        *,
        sandbox: bool = False,
        tenant: str = "",
    ) -> float:
        """How much of the budget's current window the tenant's paid requests have used."""

        async def work() -> float:
            return await self._used(tenant, budget, prices or {}, self._clock(), sandbox)

        # Shielded: a statement cancelled part-way closes the connection, the ledger's only one.
        return await _finish(self._locked(work()))

    async def usage(self, since: float, *, sandbox: bool = False, tenant: str = "") -> list[UsageLine]:
        """The tenant's paid requests made at or after ``since`` (a wall-clock time), by kind, family and model."""
        with anyio.CancelScope(shield=True):  # a cancelled statement would close the connection
            async with self._lock:
                cur = await self._conn.execute(_USAGE_SQL, (since, sandbox, tenant))
                rows = await cur.fetchall()
        return [
            UsageLine(
                kind=r["kind"],
                api=r["api"],
                model=r["model"],
                requests=r["requests"],
                maybe_charged=r["maybe"] or 0,
                clips=r["clips"] or 0,
            )
            for r in rows
        ]

    async def find_duplicate(
        self, fingerprint: str, window_s: float, *, sandbox: bool = False, tenant: str = ""
    ) -> TaskRecord | None:
        """The tenant's newest live record with this request fingerprint made within the window."""

        async def work() -> TaskRecord | None:
            row = await self._duplicate_row(tenant, fingerprint, self._clock() - window_s, sandbox)
            return None if row is None else await self._record(row)

        # Shielded: a statement cancelled part-way closes the connection, the ledger's only one.
        return await _finish(self._locked(work()))

    async def record_submitted(self, local_id: str, task: Task) -> None:
        """The upstream accepted the submit: store its task id and first state."""
        with anyio.CancelScope(shield=True):
            async with self._lock, self._conn.transaction():
                await self._conn.execute(
                    "UPDATE tasks SET task_id = %s, raw_answer = COALESCE(%s, raw_answer) WHERE local_id = %s",
                    (task.task_id, task.raw_answer, local_id),
                )
                await self._write_state(local_id, task)

    async def record_rejected(self, local_id: str, error: str) -> None:
        """The upstream refused the submit (nothing was charged)."""
        with anyio.CancelScope(shield=True):
            async with self._lock:
                await self._conn.execute(
                    "UPDATE tasks SET status = %s, error = %s, fingerprint = NULL, updated_at = %s"
                    " WHERE local_id = %s",
                    (Status.FAILED.value, error, self._clock(), local_id),
                )

    async def record_unknown(self, local_id: str, error: str, raw_answer: str | None = None) -> None:
        """The submit may or may not have reached the upstream; ``raw_answer`` is what came back, if anything."""
        with anyio.CancelScope(shield=True):
            async with self._lock:
                await self._conn.execute(
                    "UPDATE tasks SET status = %s, error = %s, raw_answer = COALESCE(%s, raw_answer),"
                    " updated_at = %s WHERE local_id = %s",
                    (Status.UNKNOWN.value, error, raw_answer, self._clock(), local_id),
                )

    async def update(self, task: Task, *, tenant: str = "") -> None:
        """Store a newer state of one of the tenant's tasks; an answer identical to the last one written is skipped."""
        signature = task.model_dump_json()
        key = (tenant, task.task_id)
        if self._written.get(key) == signature:
            return
        with anyio.CancelScope(shield=True):
            async with self._lock, self._conn.transaction():
                cur = await self._conn.execute(
                    "SELECT local_id FROM tasks WHERE tenant = %s AND (task_id = %s OR local_id = %s) LIMIT 1",
                    (tenant, task.task_id, task.task_id),
                )
                row = await cur.fetchone()
                if row is None:
                    return
                await self._write_state(str(row["local_id"]), task)
        self._written[key] = signature

    async def _write_state(self, local_id: str, task: Task) -> None:
        # FOR UPDATE: two replicas polling the same task merge one after the other, so
        # neither erases a clip the other just added.
        cur = await self._conn.execute("SELECT clips FROM tasks WHERE local_id = %s FOR UPDATE", (local_id,))
        old = await cur.fetchone()
        # Merge by clip id: an answer that leaves a clip out (or has none yet) must not erase
        # what we knew of it, or the clip's id is lost.
        merged: dict[str, Any] = {c["id"]: c for c in (old["clips"] if old else [])}
        merged.update((c.id, c.model_dump(mode="json")) for c in task.clips)
        await self._conn.execute(
            "UPDATE tasks SET status = %s, raw_status = %s, error = %s, clips = %s,"
            " lyrics_title = COALESCE(%s, lyrics_title), lyrics_text = COALESCE(%s, lyrics_text),"
            " updated_at = %s WHERE local_id = %s",
            (
                task.status.value,
                task.raw_status,
                task.error,
                Jsonb(list(merged.values())),
                task.lyrics_title,
                task.lyrics_text,
                self._clock(),
                local_id,
            ),
        )

    async def record_milestone(
        self, task_id: str, milestone: str, seconds: float, *, tenant: str = ""
    ) -> None:
        """The task was first seen playable (or complete) ``seconds`` after its submit."""
        query = {
            "playable": b"UPDATE tasks SET playable_s = %s WHERE tenant = %s AND task_id = %s AND playable_s IS NULL",
            "complete": b"UPDATE tasks SET complete_s = %s WHERE tenant = %s AND task_id = %s AND complete_s IS NULL",
        }[milestone]
        with anyio.CancelScope(shield=True):
            async with self._lock:
                await self._conn.execute(query, (seconds, tenant, task_id))

    async def milestones(
        self, *, per_key: int = 20
    ) -> list[tuple[ApiFamily, TaskKind, str | None, str, float]]:
        """The newest milestone times: (api, kind, model, milestone, seconds), oldest first."""
        with anyio.CancelScope(shield=True):  # a cancelled statement would close the connection
            async with self._lock:
                cur = await self._conn.execute(
                    "SELECT api, kind, model, playable_s, complete_s FROM tasks"
                    " WHERE playable_s IS NOT NULL OR complete_s IS NOT NULL ORDER BY created_at DESC LIMIT %s",
                    (per_key * 50,),
                )
                rows = await cur.fetchall()
        out: list[tuple[ApiFamily, TaskKind, str | None, str, float]] = []
        for row in reversed(rows):
            for milestone, column in (("playable", "playable_s"), ("complete", "complete_s")):
                if row[column] is not None:
                    out.append((row["api"], row["kind"], row["model"], milestone, float(row[column])))
        return out

    async def record_file(self, saved: SavedFile, *, tenant: str = "") -> None:
        """Remember a downloaded file of one of the tenant's clips."""
        with anyio.CancelScope(shield=True):
            async with self._lock:
                await self._conn.execute(
                    "INSERT INTO files (tenant, clip_id, task_id, path, url, bytes, mime_type, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (tenant, clip_id) DO UPDATE SET"
                    " task_id = EXCLUDED.task_id, path = EXCLUDED.path, url = EXCLUDED.url,"
                    " bytes = EXCLUDED.bytes, mime_type = EXCLUDED.mime_type, created_at = EXCLUDED.created_at",
                    (
                        tenant,
                        saved.clip_id,
                        saved.task_id,
                        saved.path,
                        saved.url,
                        saved.bytes,
                        saved.mime_type,
                        self._clock(),
                    ),
                )

    async def adopt(
        self, api: ApiFamily, task: Task, *, sandbox: bool = False, tenant: str = ""
    ) -> TaskRecord:
        """Keep a task made elsewhere (found upstream by its id), once per tenant however many replicas ask."""
        return await _finish(self._adopt(tenant, api, task, sandbox))

    async def _adopt(self, tenant: str, api: ApiFamily, task: Task, sandbox: bool) -> TaskRecord:
        async with self._lock:
            async with self._conn.transaction():
                await self._conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                    (_LOCK_ADOPT, f"{tenant}:{task.task_id}"),
                )
                known = await self._row_by_task_id(task.task_id, tenant)
                if known is None:
                    local_id = await self._insert_intent(
                        tenant, api, task.kind, {"adopted": True}, None, sandbox, self._clock(), task.task_id
                    )
                    await self._write_state(local_id, task)
                    known = await self._row_by_task_id(task.task_id, tenant)
            assert known is not None  # found or just written
            return await self._record(known)

    async def _locked(self, work: Awaitable[T]) -> T:
        async with self._lock:
            return await work

    # ------------------------------------------------------------ reads

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
            "SELECT * FROM tasks WHERE tenant = %s AND clips @> %s ORDER BY created_at DESC, seq DESC LIMIT 1",
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
                    "SELECT * FROM tasks WHERE tenant = %s AND status = ANY(%s)"
                    " ORDER BY created_at DESC, seq DESC LIMIT %s",
                    (tenant, [s.value for s in statuses], limit),
                )
            else:
                cur = await self._conn.execute(
                    "SELECT * FROM tasks WHERE tenant = %s ORDER BY created_at DESC, seq DESC LIMIT %s",
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
        return [
            SavedFile(
                clip_id=r["clip_id"],
                task_id=r["task_id"],
                path=r["path"],
                url=r["url"],
                bytes=r["bytes"],
                mime_type=r["mime_type"],
            )
            for r in await cur.fetchall()
        ]

    async def _record(self, row: DictRow) -> TaskRecord:
        record = TaskRecord(
            local_id=row["local_id"],
            task_id=row["task_id"],
            api=row["api"],
            kind=row["kind"],
            request=row["request"] or {},
            status=Status(row["status"]),
            raw_status=row["raw_status"],
            error=row["error"],
            clips=[Clip.model_validate(c) for c in row["clips"] or []],
            lyrics_title=row["lyrics_title"],
            lyrics_text=row["lyrics_text"],
            sandbox=bool(row["sandbox"]),
            raw_answer=row["raw_answer"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )
        record.files = await self._files_for(record.clip_ids, row["tenant"])
        return record
