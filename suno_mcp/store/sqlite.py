"""The task ledger in SQLite: every paid request, durably, in one file.

A row is written *before* a submit leaves the machine (status ``unknown``, no task id)
and the task id is added the moment it comes back. A crash in between therefore leaves
a row saying "we may have paid for this", never nothing. Rows keep the request's
parameters (never the API key), task and clip ids, statuses, URLs, errors, times and
the paths of downloaded files. Each row belongs to a tenant (team mode: one per caller's key;
"" for the server's own key), and every read, count and duplicate check sees one tenant's rows.

WAL mode and a busy timeout let two server processes share one file. The schema is
versioned with ``PRAGMA user_version``; :data:`MIGRATIONS` holds each step.

:class:`SqliteLedger` provides :class:`~suno_mcp.store.base.LedgerStore` with the rules of
:mod:`suno_mcp.store.rules`. SQLite blocks: a durable commit waits for the disk, and a second
process holding the write lock can make it wait for seconds. So each method is written once, as
the blocking code it is, and :func:`_in_worker` makes it the async method callers await: its work
runs in the ledger's one worker thread, the event loop only waits, and writes happen in the
order they were asked for. A file that is locked past the busy timeout, unreadable or on a full
disk raises :class:`~suno_mcp.domain.errors.LedgerUnavailableError`, never the driver's error.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import anyio

from suno_mcp.domain.errors import LedgerUnavailableError
from suno_mcp.domain.models import ApiFamily, SavedFile, Status, Task, TaskKind, TaskRecord, UsageLine
from suno_mcp.domain.spending import Budget
from suno_mcp.store import rules, signin
from suno_mcp.store.base import LatencySample

# How long a call waits for another process's write lock before the ledger counts as unavailable.
BUSY_TIMEOUT_S = 5.0
WAL_ATTEMPTS = 200
WAL_RETRY_S = 0.01

_SQL = rules.SQLITE

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
    # 4: OAuth sign-in (issue 24): clients, pending sign-ins, codes, tokens, sealed keys (store/signin.py)
    signin.DDL,
)


# SQLite's primary result codes (the low byte of an extended one) that mean "the file cannot be used
# now", as opposed to a mistake in our SQL: busy, locked, read-only, I/O error, corrupt, full, cannot
# open, locking protocol.
_UNAVAILABLE_CODES = frozenset({5, 6, 8, 10, 11, 13, 14, 15})


def _unavailable(err: sqlite3.Error) -> bool:
    code = getattr(err, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in _UNAVAILABLE_CODES
    words = ("locked", "busy", "disk", "readonly", "unable to open", "malformed", "I/O")
    return isinstance(err, sqlite3.DatabaseError) and any(w in str(err) for w in words)


def _connect(path: Path | str, busy_timeout_s: float) -> sqlite3.Connection:
    """Open the file (making its folder) and bring its schema up to date. Blocks: call it off the loop."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), timeout=busy_timeout_s, check_same_thread=False)
    try:
        db.row_factory = sqlite3.Row
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        _wal(db)
        # FULL: the row written before a paid submit must survive a power loss, not only a crash.
        db.execute("PRAGMA synchronous = FULL")
        _migrate(db, path)
    except BaseException:
        db.close()
        raise
    return db


def _wal(db: sqlite3.Connection) -> None:
    # Switching a new file to WAL takes a lock SQLite does not wait for with the busy
    # timeout: a second process opening the same new file at the same moment gets
    # "database is locked" at once. It is free again within milliseconds.
    for attempt in range(WAL_ATTEMPTS):
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or attempt + 1 == WAL_ATTEMPTS:
                raise
            time.sleep(WAL_RETRY_S)  # in the opening thread, never on an event loop


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the file's write lock at once: another process's transaction cannot slip in
    # between this one's reads and its writes.
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _migrate(db: sqlite3.Connection, path: Path | str) -> None:
    with _transaction(db):
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"the ledger at {path} was written by a newer suno-mcp (schema {version}); upgrade suno-mcp"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in script.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")


P = ParamSpec("P")
T = TypeVar("T")


def _in_worker(
    method: Callable[Concatenate[SqliteLedger, P], T],
) -> Callable[Concatenate[SqliteLedger, P], Coroutine[Any, Any, T]]:
    """The async method for a blocking one: it runs in the ledger's one worker thread.

    One call at a time, in the order asked, keeps writes in that order; a call that is cancelled
    still finishes its work (the thread is not abandoned), so a row written before a paid submit
    is never half-done. A file that cannot be used now raises :class:`LedgerUnavailableError`.
    """

    @functools.wraps(method)
    async def in_worker(self: SqliteLedger, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(functools.partial(method, self, *args, **kwargs))

    return in_worker


async def _translated(call: Awaitable[T]) -> T:
    """Await ``call``, raising :class:`LedgerUnavailableError` for a file that cannot be used now."""
    try:
        return await call
    except sqlite3.Error as err:
        if not _unavailable(err):
            raise
        # The driver's message names the condition ("database is locked"), never a path or a key.
        raise LedgerUnavailableError(f"the ledger file could not be used ({err})") from err


class SqliteLedger:
    """The ledger in one SQLite file; provides :class:`~suno_mcp.store.base.LedgerStore`.

    Open it with :meth:`open`. Every public method runs in the ledger's worker thread.
    """

    def __init__(self, db: sqlite3.Connection, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._path = path
        self._clock = clock
        self._worker = anyio.CapacityLimiter(1)
        self._written = rules.WrittenStates(clock=clock)

    @classmethod
    async def open(
        cls,
        path: Path | str,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ) -> SqliteLedger:
        """Open (or create) the file at ``path`` and bring its schema up to date, off the event loop.

        A call waits up to ``busy_timeout_s`` for another process's write lock, then raises
        :class:`LedgerUnavailableError`."""
        db = await _translated(anyio.to_thread.run_sync(_connect, path, busy_timeout_s))
        return cls(db, Path(path), clock=clock)

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    async def _run(self, work: Callable[[], T]) -> T:
        """Run ``work`` in the ledger's worker thread (see :func:`_in_worker`)."""
        return await _translated(anyio.to_thread.run_sync(work, limiter=self._worker))

    def signin_store(self) -> signin.SignInStore:
        """The sign-in records in this file; each call runs in the worker thread, as the ledger's do."""
        return signin.SignInStore(signin.SqliteRunner(self._db, self._run))

    @_in_worker
    def close(self) -> None:
        """Close the database once every call queued before has run."""
        self._db.close()

    @_in_worker
    def ping(self) -> None:
        """Take the file's write lock and read a row, as the intent before a paid submit does; an
        empty transaction writes nothing. Raises when the file cannot be read, or another process
        holds its write lock past the busy timeout."""
        with _transaction(self._db):
            self._db.execute("SELECT 1 FROM tasks LIMIT 1").fetchall()

    @_in_worker
    def schema_version(self) -> int:
        """The schema step this file is at."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    # ------------------------------------------------------------ writes

    @_in_worker
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
        """Write the row for a submit about to be sent; returns its local id once committed."""
        with _transaction(self._db):
            return self._insert(
                rules.intent_row(tenant, api, kind, request, fingerprint, sandbox, self._clock())
            )

    def _insert(self, row: rules.NewRow) -> str:
        self._db.execute(
            "INSERT INTO tasks (local_id, tenant, task_id, api, kind, fingerprint, request_json, status, sandbox,"
            " created_at, updated_at, model) VALUES (:local_id, :tenant, :task_id, :api, :kind, :fingerprint,"
            " :request, :status, :sandbox, :created_at, :updated_at, :model)",
            {**row.columns, "request": json.dumps(row.request, sort_keys=True)},
        )
        return row.local_id

    @_in_worker
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

        See :meth:`~suno_mcp.store.base.LedgerStore.reserve`. The transaction holds the file's
        write lock from its start, so two server processes sharing the file can neither both
        pass the duplicate check and both pay, nor both slip under the budget.
        """
        now = self._clock()
        with _transaction(self._db):
            if window_s > 0:
                duplicate = self._duplicate(rules.LiveDuplicate(tenant, fingerprint, now - window_s, sandbox))
                if duplicate is not None:
                    return "", duplicate
            if budget is not None:
                used = self._used(
                    budget, prices or {}, rules.PaidWindow(now - budget.window_s, sandbox, tenant)
                )
                rules.check_budget(
                    budget, prices or {}, kind, used, allow_over=allow_over
                )  # raising rolls back
            return self._insert(rules.intent_row(tenant, api, kind, request, fingerprint, sandbox, now)), None

    @_in_worker
    def record_submitted(self, local_id: str, task: Task) -> None:
        """The upstream accepted the submit: store its task id and first state."""
        with _transaction(self._db):
            twin: sqlite3.Row | None = self._db.execute(
                rules.adopted_twin_sql(rules.SQLITE), {"task_id": task.task_id, "local_id": local_id}
            ).fetchone()
            if twin is not None:
                self._db.execute("DELETE FROM tasks WHERE local_id = ?", (twin["local_id"],))
            # The submit's answer as received (bounded, key removed by the client) stays with
            # the row: whatever we could not read in it, a person still can.
            self._db.execute(
                "UPDATE tasks SET task_id = ?, raw_answer = COALESCE(?, raw_answer) WHERE local_id = ?",
                (task.task_id, task.raw_answer, local_id),
            )
            self._write_state(local_id, task)
            if twin is not None:
                # Fetched after the submit's answer: the twin's state is the newer one.
                self._write_state(local_id, self._record(twin).as_task())
                self._db.execute(
                    rules.milestones_carried_sql(rules.SQLITE),
                    {
                        "playable_s": twin["playable_s"],
                        "complete_s": twin["complete_s"],
                        "local_id": local_id,
                    },
                )

    @_in_worker
    def record_rejected(self, local_id: str, error: str) -> None:
        """The upstream refused the submit (nothing was charged)."""
        with _transaction(self._db):
            self._db.execute(
                "UPDATE tasks SET status = :status, error = :error, fingerprint = :fingerprint, updated_at = :updated_at"
                " WHERE local_id = :local_id",
                rules.rejected_row(local_id, error, self._clock()),
            )

    @_in_worker
    def record_unknown(self, local_id: str, error: str, raw_answer: str | None = None) -> None:
        """The submit may or may not have reached the upstream; ``raw_answer`` is what came back, if anything."""
        with _transaction(self._db):
            self._db.execute(
                "UPDATE tasks SET status = :status, error = :error, raw_answer = COALESCE(:raw_answer, raw_answer),"
                " updated_at = :updated_at WHERE local_id = :local_id",
                rules.unknown_row(local_id, error, raw_answer, self._clock()),
            )

    @_in_worker
    def update(self, task: Task, *, tenant: str = "") -> None:
        """Store a newer state of one of the tenant's tasks; an answer identical to the last one
        written here is skipped (most polls find nothing new)."""
        if self._written.unchanged(task, tenant):
            return
        row = self._row_by_task_id(task.task_id, tenant)
        if row is None:
            return
        with _transaction(self._db):
            self._write_state(str(row["local_id"]), task)
        self._written.remember(task, tenant)

    def _write_state(self, local_id: str, task: Task) -> None:
        old = self._db.execute("SELECT clips_json FROM tasks WHERE local_id = ?", (local_id,)).fetchone()
        clips = rules.merge_clips(json.loads(old[0]) if old and old[0] else [], task.clips)
        self._db.execute(
            "UPDATE tasks SET status = :status, raw_status = :raw_status, error = :error, clips_json = :clips,"
            " lyrics_title = COALESCE(:lyrics_title, lyrics_title), lyrics_text = COALESCE(:lyrics_text, lyrics_text),"
            " updated_at = :updated_at WHERE local_id = :local_id",
            {**rules.state_row(local_id, task, self._clock()), "clips": json.dumps(clips)},
        )

    @_in_worker
    def adopt(self, api: ApiFamily, task: Task, *, sandbox: bool = False, tenant: str = "") -> TaskRecord:
        """Keep a task made elsewhere, once per tenant: the check and the writes are one transaction,
        so two processes adopting the same task at once leave one row (not a unique-id error and an
        orphan). Another tenant adopting the same upstream task gets a row of its own."""
        with _transaction(self._db):
            if self._row_by_task_id(task.task_id, tenant) is None:
                local_id = self._insert(rules.adopted_row(tenant, api, task, sandbox, self._clock()))
                self._write_state(local_id, task)
        record = self._get(task.task_id, tenant)
        assert record is not None  # found or just written
        return record

    @_in_worker
    def record_milestone(self, task_id: str, milestone: str, seconds: float, *, tenant: str = "") -> None:
        """The task was first seen playable (or complete) ``seconds`` after its submit."""
        with _transaction(self._db):
            self._db.execute(
                rules.milestone_sql(_SQL, milestone),
                {"seconds": seconds, "tenant": tenant, "task_id": task_id},
            )

    @_in_worker
    def record_file(self, saved: SavedFile, *, tenant: str = "") -> None:
        """Remember a downloaded file of one of the tenant's clips."""
        with _transaction(self._db):
            self._db.execute(
                "INSERT OR REPLACE INTO files (tenant, clip_id, task_id, path, url, bytes, mime_type, created_at)"
                " VALUES (:tenant, :clip_id, :task_id, :path, :url, :bytes, :mime_type, :created_at)",
                rules.file_row(saved, tenant, self._clock()),
            )

    # ------------------------------------------------------------ reads

    def _used(self, budget: Budget, prices: Mapping[str, float], window: rules.PaidWindow) -> float:
        return rules.budget_used(budget, prices, self._db.execute(rules.used_sql(_SQL), window.params()))

    @_in_worker
    def used(
        self,
        budget: Budget,
        prices: Mapping[str, float] | None = None,
        *,
        sandbox: bool = False,
        tenant: str = "",
    ) -> float:
        """How much of the budget's current window the tenant's paid requests have used."""
        window = rules.PaidWindow(self._clock() - budget.window_s, sandbox, tenant)
        return self._used(budget, prices or {}, window)

    @_in_worker
    def usage(self, since: float, *, sandbox: bool = False, tenant: str = "") -> list[UsageLine]:
        """The tenant's paid requests made at or after ``since`` (a wall-clock time), by kind, family and model."""
        rows = self._db.execute(rules.usage_sql(_SQL), rules.PaidWindow(since, sandbox, tenant).params())
        return [rules.usage_line(row) for row in rows]

    @_in_worker
    def milestones(self, *, per_key: int = 20) -> list[LatencySample]:
        """The newest milestone times of every tenant: (api, kind, model, milestone, seconds), oldest first."""
        return rules.milestones(
            self._db.execute(rules.milestones_sql(_SQL), rules.milestones_params(per_key)).fetchall()
        )

    def _row_by_task_id(self, task_id: str, tenant: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._db.execute(
            "SELECT * FROM tasks WHERE tenant = ? AND (task_id = ? OR local_id = ?)",
            (tenant, task_id, task_id),
        ).fetchone()
        return row

    def _get(self, task_id: str, tenant: str) -> TaskRecord | None:
        row = self._row_by_task_id(task_id, tenant)
        return None if row is None else self._record(row)

    @_in_worker
    def get(self, task_id: str, *, tenant: str = "") -> TaskRecord | None:
        """The tenant's record with this upstream task id (or local id), if any."""
        return self._get(task_id, tenant)

    @_in_worker
    def find(self, task_or_clip_id: str, *, tenant: str = "") -> TaskRecord | None:
        """The tenant's record of a task id, else their newest record holding a clip of that id."""
        return self._get(task_or_clip_id, tenant) or self._find_by_clip(task_or_clip_id, tenant)

    @_in_worker
    def find_by_clip(self, clip_id: str, *, tenant: str = "") -> TaskRecord | None:
        """The tenant's newest record one of whose clips has this id."""
        return self._find_by_clip(clip_id, tenant)

    def _find_by_clip(self, clip_id: str, tenant: str) -> TaskRecord | None:
        # A coarse filter (the quoted id anywhere in the clips' JSON, whatever its separators);
        # the exact check is below. The id is looked for as json.dumps wrote it into clips_json:
        # escaped, so an id with a non-ASCII letter, a '\\' or a '"' is found too.
        rows = self._db.execute(
            f"SELECT * FROM tasks WHERE tenant = ? AND clips_json LIKE ? ORDER BY {_SQL.newest_first}",  # noqa: S608 (a fixed fragment)
            (tenant, f"%{json.dumps(clip_id)}%"),
        )
        for row in rows.fetchall():
            record = self._record(row)
            if clip_id in record.clip_ids:
                return record
        return None

    @_in_worker
    def find_duplicate(
        self, fingerprint: str, window_s: float, *, sandbox: bool = False, tenant: str = ""
    ) -> TaskRecord | None:
        """The tenant's newest live record with this request fingerprint made within the window.

        Sandbox tasks and real ones never stand in for each other, nor do two tenants' tasks.
        """
        return self._duplicate(rules.LiveDuplicate(tenant, fingerprint, self._clock() - window_s, sandbox))

    def _duplicate(self, duplicate: rules.LiveDuplicate) -> TaskRecord | None:
        row = self._db.execute(duplicate.sql(_SQL), duplicate.params()).fetchone()
        return None if row is None else self._record(row)

    @_in_worker
    def recent(
        self, *, statuses: Sequence[Status] | None = None, limit: int = 20, tenant: str = ""
    ) -> list[TaskRecord]:
        """The tenant's newest records first, optionally only those in some statuses."""
        query = "SELECT * FROM tasks WHERE tenant = ?"
        args: list[Any] = [tenant]
        if statuses:
            query += " AND status IN (" + ",".join("?" for _ in statuses) + ")"
            args.extend(s.value for s in statuses)
        query += f" ORDER BY {_SQL.newest_first} LIMIT ?"
        args.append(limit)
        return [self._record(row) for row in self._db.execute(query, args).fetchall()]

    @_in_worker
    def task_ids(self, prefix: str, *, limit: int = 20, tenant: str = "") -> tuple[list[str], int]:
        """The tenant's upstream task ids beginning with ``prefix``, newest first (at most ``limit``), and how many match."""
        match = rules.TaskIdPrefix(tenant, prefix, limit)
        ids = [row["task_id"] for row in self._db.execute(match.sql(_SQL), match.params()).fetchall()]
        count = self._db.execute(match.count_sql(_SQL), match.params()).fetchone()
        return ids, int(count["n"])

    def _files_for(self, clip_ids: Sequence[str], tenant: str) -> list[SavedFile]:
        if not clip_ids:
            return []
        marks = ",".join("?" for _ in clip_ids)
        query = f"SELECT * FROM files WHERE tenant = ? AND clip_id IN ({marks})"  # noqa: S608 (only "?" placeholders)
        return [rules.saved_file(row) for row in self._db.execute(query, [tenant, *clip_ids]).fetchall()]

    def _record(self, row: sqlite3.Row) -> TaskRecord:
        record = rules.task_record(
            row, json.loads(row["request_json"] or "{}"), json.loads(row["clips_json"] or "[]")
        )
        record.files = self._files_for(record.clip_ids, row["tenant"])
        return record
