"""The ledger's two backends as the test suites meet them: a store (one SQLite file or one PostgreSQL
database) that opens ledgers and writes the older schemas a migration starts from, and a ledger with
quick timeouts beside another writer able to hold the database's write lock.

The fixtures ``store`` and ``held`` run a test once on each backend; ``database`` is a PostgreSQL
database of the test's own. Loaded as a plugin from ``tests/conftest.py``, so a module takes them by
name; a module defining its own fixture of that name keeps its own.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from suno_mcp.database import Limits
from suno_mcp.store.base import LedgerStore
from suno_mcp.store.postgres import MIGRATIONS as PG_MIGRATIONS
from suno_mcp.store.postgres import PostgresLedger
from suno_mcp.store.sqlite import MIGRATIONS, SqliteLedger
from tests.support.postgres import PostgresServer, fresh_database

# Rows an older schema left behind, made in the same instant: only their row order tells them apart.
OLD_TASKS = ("old-1", "old-2")
# Quick limits for the cases that wait for a timeout on purpose.
QUICK = Limits(wait_s=1.0, statement_s=2.0, lock_s=0.3, call_s=3.0)
# Limits that let a call wait on a lock until the test breaks the database under it.
PATIENT = Limits(wait_s=2.0, statement_s=20.0, lock_s=20.0, call_s=25.0)


@dataclass
class SqliteStore:
    """One SQLite file; every ledger opened on it shares it, as two server processes would."""

    path: Path
    migrations: int = len(MIGRATIONS)

    async def open(self, clock: Callable[[], float] = time.time) -> LedgerStore:
        return await SqliteLedger.open(self.path, clock=clock)

    def schema_version(self) -> int:
        with sqlite3.connect(self.path) as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    def pretend_a_newer_schema(self) -> None:
        with sqlite3.connect(self.path) as db:
            db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")

    def write_before_tenants(self) -> None:
        """A file as the last version without tenants left it (schema 2), with rows in it."""
        with sqlite3.connect(self.path) as db:
            for script in MIGRATIONS[:2]:
                db.executescript(script)
            for task_id in OLD_TASKS:
                db.execute(
                    "INSERT INTO tasks (local_id, task_id, api, kind, request_json, status, clips_json,"
                    " created_at, updated_at, model) VALUES (?, ?, 'task', 'music', '{}', 'complete', ?, ?, ?, 'm')",
                    (
                        f"local-{task_id}",
                        task_id,
                        f'[{{"id": "{task_id}-c0", "status": "complete"}}]',
                        100.0,
                        100.0,
                    ),
                )
            db.execute(
                "INSERT INTO files (clip_id, task_id, path, url, bytes, mime_type, created_at)"
                " VALUES ('old-1-c0', 'old-1', '/a/old.mp3', 'http://u/old.mp3', 3, 'audio/mpeg', 100.0)"
            )
            db.execute("PRAGMA user_version = 2")

    def write_previous_schema(self, tenant: str) -> None:
        """The file as the version before sign-in left it, with the tenant's task 'old' in it."""
        with sqlite3.connect(self.path) as db:
            for script in MIGRATIONS[:-1]:
                db.executescript(script)
            db.execute(
                "INSERT INTO tasks (local_id, tenant, task_id, api, kind, request_json, status, created_at,"
                " updated_at) VALUES ('local-old', ?, 'old', 'task', 'music', '{}', 'complete', 100, 100)",
                (tenant,),
            )
            db.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 1}")


@dataclass
class PostgresStore:
    """One PostgreSQL database; every ledger opened on it is a replica's connection."""

    url: str
    migrations: int = len(PG_MIGRATIONS)

    async def open(self, clock: Callable[[], float] = time.time) -> LedgerStore:
        return await PostgresLedger.open(self.url, clock=clock)

    def schema_version(self) -> int:
        with psycopg.connect(self.url) as db:
            row = db.execute("SELECT max(version) FROM schema_version").fetchone()
            assert row is not None
            return int(row[0])

    def pretend_a_newer_schema(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as db:
            db.execute("INSERT INTO schema_version (version) VALUES (%s)", (len(PG_MIGRATIONS) + 1,))

    def write_before_tenants(self) -> None:
        """A database as the last version without tenants left it (step 1), with rows in it."""
        with psycopg.connect(self.url) as db:
            db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            for statement in PG_MIGRATIONS[0].split(";"):
                db.execute(statement.encode())
            db.execute("INSERT INTO schema_version (version) VALUES (1)")
            for task_id in OLD_TASKS:
                db.execute(
                    "INSERT INTO tasks (local_id, task_id, api, kind, request, status, clips, created_at,"
                    " updated_at, model) VALUES (%s, %s, 'task', 'music', '{}', 'complete', %s, 100, 100, 'm')",
                    (f"local-{task_id}", task_id, Jsonb([{"id": f"{task_id}-c0", "status": "complete"}])),
                )
            db.execute(
                "INSERT INTO files (clip_id, task_id, path, url, bytes, mime_type, created_at)"
                " VALUES ('old-1-c0', 'old-1', '/a/old.mp3', 'http://u/old.mp3', 3, 'audio/mpeg', 100)"
            )

    def write_previous_schema(self, tenant: str) -> None:
        """The database as the version before sign-in left it, with the tenant's task 'old' in it."""
        with psycopg.connect(self.url) as db:
            db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            for number, script in enumerate(PG_MIGRATIONS[:-1], start=1):
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement.encode())
                db.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))
            db.execute(
                "INSERT INTO tasks (local_id, tenant, task_id, api, kind, request, status, created_at,"
                " updated_at) VALUES ('local-old', %s, 'old', 'task', 'music', '{}', 'complete', 100, 100)",
                (tenant,),
            )


Store = SqliteStore | PostgresStore


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        yield SqliteStore(tmp_path / "l.sqlite3")
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with fresh_database(server) as url:
        yield PostgresStore(url)


@dataclass
class Held:
    """A ledger with quick timeouts, and another writer able to hold the write lock it needs."""

    ledger: LedgerStore
    hold: Callable[[], AbstractContextManager[object]]
    message: str  # what the unavailable error names (the tests that match on it)


@pytest.fixture
def database(postgres_server: PostgresServer) -> Iterator[str]:
    """A PostgreSQL database of the test's own (its URL)."""
    with fresh_database(postgres_server) as url:
        yield url


@contextmanager
def _file_locked(path: Path) -> Iterator[object]:
    other = sqlite3.connect(path, isolation_level=None)  # as a second server process would
    try:
        yield other.execute("BEGIN IMMEDIATE")  # the file's write lock; readers pass (WAL)
        other.execute("ROLLBACK")
    finally:
        other.close()


@contextmanager
def _tables_locked(url: str) -> Iterator[object]:
    # Every table the ledger keeps, as SQLite's file lock holds them all: readers pass and writers
    # wait, whichever table a test writes (tasks, or the sign-in codes).
    with psycopg.connect(url) as other, other.transaction():
        rows = other.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall()
        tables = sql.SQL(", ").join(sql.Identifier(str(row[0])) for row in rows)
        yield other.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(tables))


@pytest.fixture(params=["sqlite", "postgres"])
async def held(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Held]:
    ledger: LedgerStore
    if request.param == "sqlite":
        path = tmp_path / "l.sqlite3"
        ledger = await SqliteLedger.open(path, busy_timeout_s=0.2)
        opened = Held(ledger, functools.partial(_file_locked, path), "locked")
    else:
        url: str = request.getfixturevalue("database")
        ledger = await PostgresLedger.open(url, limits=QUICK)
        opened = Held(ledger, functools.partial(_tables_locked, url), "LockNotAvailable")
    try:
        yield opened
    finally:
        await ledger.close()
