"""The task ledger: every paid request, durably, in SQLite.

A row is written *before* a submit leaves the machine (status ``unknown``, no task id)
and the task id is added the moment it comes back. A crash in between therefore leaves
a row saying "we may have paid for this", never nothing. Rows keep the request's
parameters (never the API key), task and clip ids, statuses, URLs, errors, times and
the paths of downloaded files. Each row belongs to a tenant (team mode: one per caller's key;
"" for the server's own key), and every read, count and duplicate check sees one tenant's rows.

WAL mode and a busy timeout let two server processes share one file. The schema is
versioned with ``PRAGMA user_version``; :data:`MIGRATIONS` holds each step.

:class:`Ledger` is synchronous: a durable commit waits for the disk, and a second process
holding the write lock can make it wait for seconds. Async code therefore uses
:class:`AsyncLedger`, which runs every call in one worker thread; the event loop only waits.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import anyio

from suno_mcp.domain.models import ApiFamily, Clip, SavedFile, Status, Task, TaskKind, TaskRecord, UsageLine
from suno_mcp.domain.spending import Budget
from suno_mcp.store.base import OverBudget

BUSY_TIMEOUT_MS = 5000
WAL_ATTEMPTS = 200
WAL_RETRY_S = 0.01

# Rows that cost (or may have cost) money: not refused before anything was made (failed
# without a task id), and not adopted from elsewhere (paid for by whoever made it).
_PAID = (
    "NOT (status = 'failed' AND task_id IS NULL) AND request_json != '{\"adopted\": true}'"
    " AND created_at >= ? AND sandbox = ? AND tenant = ?"
)


MIGRATIONS: tuple[str, ...] = (
    # 1: tasks and downloaded files
    """
    CREATE TABLE tasks (
        local_id     TEXT PRIMARY KEY,
        task_id      TEXT UNIQUE,
        api          TEXT NOT NULL,
        kind         TEXT NOT NULL,
        fingerprint  TEXT,
        request_json TEXT NOT NULL,
        status       TEXT NOT NULL,
        raw_status   TEXT,
        error        TEXT,
        clips_json   TEXT NOT NULL DEFAULT '[]',
        lyrics_title TEXT,
        lyrics_text  TEXT,
        sandbox      INTEGER NOT NULL DEFAULT 0,
        created_at   REAL NOT NULL,
        updated_at   REAL NOT NULL
    );
    CREATE INDEX tasks_fingerprint ON tasks (fingerprint, created_at);
    CREATE INDEX tasks_created ON tasks (created_at);
    CREATE TABLE files (
        clip_id     TEXT PRIMARY KEY,
        task_id     TEXT,
        path        TEXT NOT NULL,
        url         TEXT NOT NULL,
        bytes       INTEGER NOT NULL,
        mime_type   TEXT NOT NULL,
        created_at  REAL NOT NULL
    );
    """,
    # 2: when each task was first seen playable and complete (seconds after its submit), the
    # model it was made with: what the poller learns this upstream's latency from
    """
    ALTER TABLE tasks ADD COLUMN model TEXT;
    ALTER TABLE tasks ADD COLUMN playable_s REAL;
    ALTER TABLE tasks ADD COLUMN complete_s REAL;
    CREATE INDEX tasks_milestones ON tasks (api, kind, model, created_at);
    ALTER TABLE tasks ADD COLUMN raw_answer TEXT
    """,
    # 3: every row belongs to a tenant (team mode; '' is the server's own key, where the rows of
    # earlier versions land). A task id is unique per tenant only: two tenants may both adopt one
    # upstream task. SQLite cannot change a UNIQUE constraint in place, so both tables are rebuilt
    # (rowids copied: they order rows created in the same instant).
    """
    CREATE TABLE tasks_v3 (
        local_id     TEXT PRIMARY KEY,
        tenant       TEXT NOT NULL DEFAULT '',
        task_id      TEXT,
        api          TEXT NOT NULL,
        kind         TEXT NOT NULL,
        fingerprint  TEXT,
        request_json TEXT NOT NULL,
        status       TEXT NOT NULL,
        raw_status   TEXT,
        error        TEXT,
        clips_json   TEXT NOT NULL DEFAULT '[]',
        lyrics_title TEXT,
        lyrics_text  TEXT,
        sandbox      INTEGER NOT NULL DEFAULT 0,
        created_at   REAL NOT NULL,
        updated_at   REAL NOT NULL,
        model        TEXT,
        playable_s   REAL,
        complete_s   REAL,
        raw_answer   TEXT,
        UNIQUE (tenant, task_id)
    );
    INSERT INTO tasks_v3 (rowid, local_id, task_id, api, kind, fingerprint, request_json, status, raw_status,
        error, clips_json, lyrics_title, lyrics_text, sandbox, created_at, updated_at, model, playable_s,
        complete_s, raw_answer)
    SELECT rowid, local_id, task_id, api, kind, fingerprint, request_json, status, raw_status,
        error, clips_json, lyrics_title, lyrics_text, sandbox, created_at, updated_at, model, playable_s,
        complete_s, raw_answer FROM tasks;
    DROP TABLE tasks;
    ALTER TABLE tasks_v3 RENAME TO tasks;
    CREATE INDEX tasks_fingerprint ON tasks (tenant, fingerprint, created_at);
    CREATE INDEX tasks_created ON tasks (created_at);
    CREATE INDEX tasks_tenant_created ON tasks (tenant, created_at);
    CREATE INDEX tasks_milestones ON tasks (api, kind, model, created_at);
    CREATE TABLE files_v3 (
        tenant      TEXT NOT NULL DEFAULT '',
        clip_id     TEXT NOT NULL,
        task_id     TEXT,
        path        TEXT NOT NULL,
        url         TEXT NOT NULL,
        bytes       INTEGER NOT NULL,
        mime_type   TEXT NOT NULL,
        created_at  REAL NOT NULL,
        PRIMARY KEY (tenant, clip_id)
    );
    INSERT INTO files_v3 (clip_id, task_id, path, url, bytes, mime_type, created_at)
    SELECT clip_id, task_id, path, url, bytes, mime_type, created_at FROM files;
    DROP TABLE files;
    ALTER TABLE files_v3 RENAME TO files
    """,
)


class Ledger:
    """SQLite-backed store of tasks. Methods block (a commit waits for the disk, a busy database
    for its lock): from async code, go through :class:`AsyncLedger`."""

    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.Lock()
        self._written: dict[tuple[str, str], str] = {}  # (tenant, task id) -> the last state written here
        self._db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._wal()
        # FULL: the row written before a paid submit must survive a power loss, not only a crash.
        self._db.execute("PRAGMA synchronous = FULL")
        self._migrate()

    def _wal(self) -> None:
        # Switching a new file to WAL takes a lock SQLite does not wait for with the busy
        # timeout: a second process opening the same new file at the same moment gets
        # "database is locked" at once. It is free again within milliseconds.
        for attempt in range(WAL_ATTEMPTS):
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or attempt + 1 == WAL_ATTEMPTS:
                    raise
                time.sleep(WAL_RETRY_S)  # in the opening thread, never on an event loop

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._tx() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"the ledger at {self.path} was written by a newer suno-mcp (schema {version}); upgrade suno-mcp"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    # ------------------------------------------------------------ writes

    def record_intent(
        self,
        *,
        api: ApiFamily,
        kind: TaskKind,
        request: dict[str, Any],
        fingerprint: str | None,
        sandbox: bool = False,
        tenant: str = "",
    ) -> str:
        """Write the row for a submit about to be sent; returns its local id."""
        with self._tx() as db:
            return self._insert_intent(db, tenant, api, kind, request, fingerprint, sandbox, self._clock())

    @staticmethod
    def _insert_intent(
        db: sqlite3.Connection,
        tenant: str,
        api: ApiFamily,
        kind: TaskKind,
        request: dict[str, Any],
        fingerprint: str | None,
        sandbox: bool,
        now: float,
    ) -> str:
        local_id = "local-" + uuid.uuid4().hex
        model = request.get("mv")
        db.execute(
            "INSERT INTO tasks (local_id, tenant, api, kind, fingerprint, request_json, status, sandbox,"
            " created_at, updated_at, model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                local_id,
                tenant,
                api,
                kind,
                fingerprint,
                json.dumps(request, sort_keys=True),
                Status.UNKNOWN.value,
                int(sandbox),
                now,
                now,
                model if isinstance(model, str) else None,
            ),
        )
        return local_id

    def reserve(
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
        """Find a live duplicate of this request or write the intent for it, in one transaction.

        Only the tenant's own rows count: another tenant's identical request is no duplicate of
        this one, and their spending is not charged to this tenant's budget.

        Returns ``(local_id, None)`` for a new intent, or ``("", record)`` for the duplicate.
        With a ``budget``, raises :class:`OverBudget` (writing nothing) when this request
        would go past it; ``allow_over`` requests more than the budget are let through (one
        the person accepted going over). One transaction means two server processes sharing
        the file can neither both pass the duplicate check and both pay, nor both slip under
        the budget.
        """
        now = self._clock()
        duplicate: sqlite3.Row | None = None
        with self._tx() as db:
            if window_s > 0:
                duplicate = self._duplicate_row(db, tenant, fingerprint, now - window_s, sandbox)
            if duplicate is None and budget is not None:
                prices = prices or {}
                used = self._used(db, tenant, budget, prices, now, sandbox)
                this = budget.weight(kind, prices)
                if used + this > budget.limit + allow_over * this + 1e-9:
                    raise OverBudget(used)
            local_id = (
                ""
                if duplicate is not None
                else self._insert_intent(db, tenant, api, kind, request, fingerprint, sandbox, now)
            )
        # Outside the transaction: building a record reads the files table under the same lock.
        return local_id, None if duplicate is None else self._record(duplicate)

    @staticmethod
    def _used(
        db: sqlite3.Connection,
        tenant: str,
        budget: Budget,
        prices: Mapping[str, float],
        now: float,
        sandbox: bool,
    ) -> float:
        rows = db.execute(
            f"SELECT kind, COUNT(*) FROM tasks WHERE {_PAID} GROUP BY kind",  # noqa: S608 (a fixed fragment)
            (now - budget.window_s, int(sandbox), tenant),
        ).fetchall()
        return float(sum(budget.weight(kind, prices) * count for kind, count in rows))

    def used(
        self,
        budget: Budget,
        prices: Mapping[str, float] | None = None,
        *,
        sandbox: bool = False,
        tenant: str = "",
    ) -> float:
        """How much of the budget's current window the tenant's paid requests have used."""
        with self._lock:
            return self._used(self._db, tenant, budget, prices or {}, self._clock(), sandbox)

    def usage(self, since: float, *, sandbox: bool = False, tenant: str = "") -> list[UsageLine]:
        """Paid requests made at or after ``since`` (a wall-clock time), by kind, family and model."""
        where = f" FROM tasks WHERE {_PAID} GROUP BY kind, api, model ORDER BY kind, api, model"
        with self._lock:
            rows = self._db.execute(
                "SELECT kind, api, model, COUNT(*) AS requests,"
                " SUM(CASE WHEN task_id IS NULL THEN 1 ELSE 0 END) AS maybe,"
                " SUM(json_array_length(clips_json)) AS clips" + where,
                (since, int(sandbox), tenant),
            ).fetchall()
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

    def record_submitted(self, local_id: str, task: Task) -> None:
        """The upstream accepted the submit: store its task id and first state."""
        self._write_state(local_id, task, set_task_id=True)

    def record_rejected(self, local_id: str, error: str) -> None:
        """The upstream refused the submit (nothing was charged)."""
        with self._tx() as db:
            db.execute(
                "UPDATE tasks SET status = ?, error = ?, fingerprint = NULL, updated_at = ? WHERE local_id = ?",
                (Status.FAILED.value, error, self._clock(), local_id),
            )

    def record_unknown(self, local_id: str, error: str, raw_answer: str | None = None) -> None:
        """The submit may or may not have reached the upstream; ``raw_answer`` is what came back, if anything."""
        with self._tx() as db:
            db.execute(
                "UPDATE tasks SET status = ?, error = ?, raw_answer = COALESCE(?, raw_answer), updated_at = ?"
                " WHERE local_id = ?",
                (Status.UNKNOWN.value, error, raw_answer, self._clock(), local_id),
            )

    def update(self, task: Task, *, tenant: str = "") -> None:
        """Store a newer state of a known task (by upstream task id, among the tenant's rows).

        Most polls find nothing new; an answer identical to the last one this process
        wrote is not written again.
        """
        signature = task.model_dump_json()
        key = (tenant, task.task_id)
        if self._written.get(key) == signature:
            return
        row = self._row_by_task_id(task.task_id, tenant)
        if row is not None:
            self._write_state(str(row["local_id"]), task, set_task_id=False)
            self._written[key] = signature

    def _write_state(self, local_id: str, task: Task, *, set_task_id: bool) -> None:
        with self._tx() as db:
            self._write_state_in(db, local_id, task, set_task_id=set_task_id)

    def adopt(self, api: ApiFamily, task: Task, *, sandbox: bool = False, tenant: str = "") -> TaskRecord:
        """Keep a task made elsewhere, once per tenant: the check and the writes are one transaction,
        so two processes adopting the same task at once leave one row (not a unique-id error and an
        orphan). Another tenant adopting the same upstream task gets a row of its own."""
        with self._tx() as db:
            known = db.execute(
                "SELECT local_id FROM tasks WHERE tenant = ? AND (task_id = ? OR local_id = ?)",
                (tenant, task.task_id, task.task_id),
            ).fetchone()
            if known is None:
                local_id = self._insert_intent(
                    db, tenant, api, task.kind, {"adopted": True}, None, sandbox, self._clock()
                )
                self._write_state_in(db, local_id, task, set_task_id=True)
        record = self.get(task.task_id, tenant=tenant)
        assert record is not None  # found or just written
        return record

    def _write_state_in(
        self, db: sqlite3.Connection, local_id: str, task: Task, *, set_task_id: bool
    ) -> None:
        if set_task_id:
            # The submit's answer as received (bounded, key removed by the client) stays with
            # the row: whatever we could not read in it, a person still can.
            db.execute(
                "UPDATE tasks SET task_id = ?, raw_answer = COALESCE(?, raw_answer) WHERE local_id = ?",
                (task.task_id, task.raw_answer, local_id),
            )
        old = db.execute("SELECT clips_json FROM tasks WHERE local_id = ?", (local_id,)).fetchone()
        # Merge by clip id: an answer that leaves a clip out (or has none yet) must not
        # erase what we knew of it, or the clip's id is lost.
        merged: dict[str, Any] = {c["id"]: c for c in json.loads(old[0] if old and old[0] else "[]")}
        merged.update((c.id, c.model_dump(mode="json")) for c in task.clips)
        db.execute(
            "UPDATE tasks SET status = ?, raw_status = ?, error = ?, clips_json = ?,"
            " lyrics_title = COALESCE(?, lyrics_title), lyrics_text = COALESCE(?, lyrics_text),"
            " updated_at = ? WHERE local_id = ?",
            (
                task.status.value,
                task.raw_status,
                task.error,
                json.dumps(list(merged.values())),
                task.lyrics_title,
                task.lyrics_text,
                self._clock(),
                local_id,
            ),
        )

    def record_milestone(self, task_id: str, milestone: str, seconds: float, *, tenant: str = "") -> None:
        """The task was first seen playable (or complete) ``seconds`` after its submit."""
        column = {"playable": "playable_s", "complete": "complete_s"}[milestone]
        with self._tx() as db:
            db.execute(
                f"UPDATE tasks SET {column} = ? WHERE tenant = ? AND task_id = ? AND {column} IS NULL",  # noqa: S608 (a fixed name)
                (seconds, tenant, task_id),
            )

    def milestones(self, *, per_key: int = 20) -> list[tuple[ApiFamily, TaskKind, str | None, str, float]]:
        """The newest milestone times: (api, kind, model, milestone, seconds), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT api, kind, model, playable_s, complete_s FROM tasks"
                " WHERE playable_s IS NOT NULL OR complete_s IS NOT NULL ORDER BY created_at DESC LIMIT ?",
                (per_key * 50,),
            ).fetchall()
        out: list[tuple[ApiFamily, TaskKind, str | None, str, float]] = []
        for row in reversed(rows):
            for milestone, column in (("playable", "playable_s"), ("complete", "complete_s")):
                if row[column] is not None:
                    out.append((row["api"], row["kind"], row["model"], milestone, float(row[column])))
        return out

    def record_file(self, saved: SavedFile, *, tenant: str = "") -> None:
        """Remember a downloaded file of one of the tenant's clips."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO files (tenant, clip_id, task_id, path, url, bytes, mime_type, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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

    # ------------------------------------------------------------ reads

    def _row_by_task_id(self, task_id: str, tenant: str) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(
                "SELECT * FROM tasks WHERE tenant = ? AND (task_id = ? OR local_id = ?)",
                (tenant, task_id, task_id),
            ).fetchone()
            return row

    def get(self, task_id: str, *, tenant: str = "") -> TaskRecord | None:
        """The tenant's record with this upstream task id (or local id), if any."""
        row = self._row_by_task_id(task_id, tenant)
        return None if row is None else self._record(row)

    def find(self, task_or_clip_id: str, *, tenant: str = "") -> TaskRecord | None:
        """The tenant's record of a task id, else their newest record holding a clip of that id."""
        return self.get(task_or_clip_id, tenant=tenant) or self.find_by_clip(task_or_clip_id, tenant=tenant)

    def find_by_clip(self, clip_id: str, *, tenant: str = "") -> TaskRecord | None:
        """The tenant's newest record one of whose clips has this id."""
        # A coarse filter (the quoted id anywhere in the clips' JSON, whatever its separators);
        # the exact check is below.
        pattern = f'%"{clip_id}"%'
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM tasks WHERE tenant = ? AND clips_json LIKE ? ORDER BY created_at DESC",
                (tenant, pattern),
            ).fetchall()
        for row in rows:
            record = self._record(row)
            if clip_id in record.clip_ids:
                return record
        return None

    def find_duplicate(
        self, fingerprint: str, window_s: float, *, sandbox: bool = False, tenant: str = ""
    ) -> TaskRecord | None:
        """The tenant's newest live record with this request fingerprint made within the window.

        Sandbox tasks and real ones never stand in for each other, nor do two tenants' tasks.
        """
        with self._lock:
            row = self._duplicate_row(self._db, tenant, fingerprint, self._clock() - window_s, sandbox)
        return None if row is None else self._record(row)

    @staticmethod
    def _duplicate_row(
        db: sqlite3.Connection, tenant: str, fingerprint: str, since: float, sandbox: bool
    ) -> sqlite3.Row | None:
        row: sqlite3.Row | None = db.execute(
            "SELECT * FROM tasks WHERE tenant = ? AND fingerprint = ? AND created_at >= ? AND status != ?"
            " AND sandbox = ? ORDER BY created_at DESC LIMIT 1",
            (tenant, fingerprint, since, Status.FAILED.value, int(sandbox)),
        ).fetchone()
        return row

    def recent(
        self, *, statuses: Sequence[Status] | None = None, limit: int = 20, tenant: str = ""
    ) -> list[TaskRecord]:
        """The tenant's newest records first, optionally only those in some statuses."""
        query = "SELECT * FROM tasks WHERE tenant = ?"
        args: list[Any] = [tenant]
        if statuses:
            query += " AND status IN (" + ",".join("?" for _ in statuses) + ")"
            args.extend(s.value for s in statuses)
        query += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [self._record(r) for r in rows]

    def files_for(self, clip_ids: Sequence[str], *, tenant: str = "") -> list[SavedFile]:
        """Downloaded files of these clips of the tenant's."""
        if not clip_ids:
            return []
        marks = ",".join("?" for _ in clip_ids)
        query = f"SELECT * FROM files WHERE tenant = ? AND clip_id IN ({marks})"  # noqa: S608 (only "?" placeholders)
        with self._lock:
            rows = self._db.execute(query, [tenant, *clip_ids]).fetchall()
        return [
            SavedFile(
                clip_id=r["clip_id"],
                task_id=r["task_id"],
                path=r["path"],
                url=r["url"],
                bytes=r["bytes"],
                mime_type=r["mime_type"],
            )
            for r in rows
        ]

    def _record(self, row: sqlite3.Row) -> TaskRecord:
        clips = [Clip.model_validate(c) for c in json.loads(row["clips_json"] or "[]")]
        record = TaskRecord(
            local_id=row["local_id"],
            task_id=row["task_id"],
            api=row["api"],
            kind=row["kind"],
            request=json.loads(row["request_json"] or "{}"),
            status=Status(row["status"]),
            raw_status=row["raw_status"],
            error=row["error"],
            clips=clips,
            lyrics_title=row["lyrics_title"],
            lyrics_text=row["lyrics_text"],
            sandbox=bool(row["sandbox"]),
            raw_answer=row["raw_answer"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )
        record.files = self.files_for(record.clip_ids, tenant=row["tenant"])
        return record


P = ParamSpec("P")
T = TypeVar("T")


class AsyncLedger:
    """The ledger for async callers (a :class:`~suno_mcp.store.base.LedgerStore`): each call runs in
    the ledger's one worker thread.

    One thread at a time keeps writes in the order they were asked for; a call that is
    cancelled still finishes its write (the thread is not abandoned), so a row written
    before a paid submit is never half-done.
    """

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._worker = anyio.CapacityLimiter(1)

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self._worker)

    @property
    def path(self) -> Path:
        return self._ledger.path

    async def close(self) -> None:
        """Close the database once every queued call has run."""
        await self._run(self._ledger.close)

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
        """See :meth:`Ledger.record_intent`."""
        return await self._run(
            self._ledger.record_intent,
            api=api,
            kind=kind,
            request=request,
            fingerprint=fingerprint,
            sandbox=sandbox,
            tenant=tenant,
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
        """See :meth:`Ledger.reserve`."""
        return await self._run(
            self._ledger.reserve,
            api=api,
            kind=kind,
            request=request,
            fingerprint=fingerprint,
            window_s=window_s,
            sandbox=sandbox,
            budget=budget,
            prices=prices,
            allow_over=allow_over,
            tenant=tenant,
        )

    async def used(
        self,
        budget: Budget,
        prices: Mapping[str, float] | None = None,
        *,
        sandbox: bool = False,
        tenant: str = "",
    ) -> float:
        """See :meth:`Ledger.used`."""
        return await self._run(self._ledger.used, budget, prices, sandbox=sandbox, tenant=tenant)

    async def usage(self, since: float, *, sandbox: bool = False, tenant: str = "") -> list[UsageLine]:
        """See :meth:`Ledger.usage`."""
        return await self._run(self._ledger.usage, since, sandbox=sandbox, tenant=tenant)

    async def find_duplicate(
        self, fingerprint: str, window_s: float, *, sandbox: bool = False, tenant: str = ""
    ) -> TaskRecord | None:
        """See :meth:`Ledger.find_duplicate`."""
        return await self._run(
            self._ledger.find_duplicate, fingerprint, window_s, sandbox=sandbox, tenant=tenant
        )

    async def record_submitted(self, local_id: str, task: Task) -> None:
        """See :meth:`Ledger.record_submitted`."""
        await self._run(self._ledger.record_submitted, local_id, task)

    async def record_rejected(self, local_id: str, error: str) -> None:
        """See :meth:`Ledger.record_rejected`."""
        await self._run(self._ledger.record_rejected, local_id, error)

    async def record_unknown(self, local_id: str, error: str, raw_answer: str | None = None) -> None:
        """See :meth:`Ledger.record_unknown`."""
        await self._run(self._ledger.record_unknown, local_id, error, raw_answer)

    async def update(self, task: Task, *, tenant: str = "") -> None:
        """See :meth:`Ledger.update`."""
        await self._run(self._ledger.update, task, tenant=tenant)

    async def record_milestone(
        self, task_id: str, milestone: str, seconds: float, *, tenant: str = ""
    ) -> None:
        """See :meth:`Ledger.record_milestone`."""
        await self._run(self._ledger.record_milestone, task_id, milestone, seconds, tenant=tenant)

    async def milestones(self) -> list[tuple[ApiFamily, TaskKind, str | None, str, float]]:
        """See :meth:`Ledger.milestones`."""
        return await self._run(self._ledger.milestones)

    async def record_file(self, saved: SavedFile, *, tenant: str = "") -> None:
        """See :meth:`Ledger.record_file`."""
        await self._run(self._ledger.record_file, saved, tenant=tenant)

    async def get(self, task_id: str, *, tenant: str = "") -> TaskRecord | None:
        """See :meth:`Ledger.get`."""
        return await self._run(self._ledger.get, task_id, tenant=tenant)

    async def find(self, task_or_clip_id: str, *, tenant: str = "") -> TaskRecord | None:
        """See :meth:`Ledger.find`."""
        return await self._run(self._ledger.find, task_or_clip_id, tenant=tenant)

    async def adopt(
        self, api: ApiFamily, task: Task, *, sandbox: bool = False, tenant: str = ""
    ) -> TaskRecord:
        """See :meth:`Ledger.adopt`."""
        return await self._run(self._ledger.adopt, api, task, sandbox=sandbox, tenant=tenant)

    async def find_by_clip(self, clip_id: str, *, tenant: str = "") -> TaskRecord | None:
        """See :meth:`Ledger.find_by_clip`."""
        return await self._run(self._ledger.find_by_clip, clip_id, tenant=tenant)

    async def recent(
        self, *, statuses: Sequence[Status] | None = None, limit: int = 20, tenant: str = ""
    ) -> list[TaskRecord]:
        """See :meth:`Ledger.recent`."""
        return await self._run(self._ledger.recent, statuses=statuses, limit=limit, tenant=tenant)
