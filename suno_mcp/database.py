"""PostgreSQL connections for the modules that keep state in the shared database: the ledger
(:mod:`suno_mcp.store.postgres`) and the poll leases (:mod:`suno_mcp.engine.coordination_pg`).

Both hold a :class:`Database`: a ``psycopg_pool`` pool whose connections are checked before use and
replaced when the database dropped them, made again (with backoff) after a restart or a failover,
and configured with a statement and a lock timeout. Every wait is bounded (:class:`Limits`): for a
free connection, for each statement, and for a whole call, which is the backstop when the server
does not answer at all (a hung host, a network partition). A dropped connection, a restart or a
failover therefore costs the calls in flight at that moment; the next call works once the database
answers again.

The driver's errors stop here: :meth:`Database.connection` raises
:class:`~suno_mcp.domain.errors.LedgerUnavailableError` for a database that cannot answer, and
never says more about it than the error's kind (a libpq message may name the host and user).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import anyio
import psycopg
from psycopg.errors import ReadOnlySqlTransaction
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool

from suno_mcp.domain.errors import LedgerUnavailableError

log = logging.getLogger(__name__)

Row = TypeVar("Row")

# psycopg_pool's reconnect backoff doubles (1 s, 2 s, 4 s, ...) up to reconnect_timeout, 5 minutes by
# default: after a long outage the next attempt could be minutes away. Giving up after this long
# keeps every gap between attempts at about a second; a pool that gave up starts a new attempt at
# once when the next call asks for a connection.
RECONNECT_GIVE_UP_S = 2.0


# How many pooled connections a call tries before it gives up. After the first bad one the pool is
# drained, but a connection the pool began making before the database came back (or before a failover
# ended) can still arrive spoiled; a third try takes one made after the drain.
CHECK_ATTEMPTS = 3


@dataclass(frozen=True)
class Limits:
    """How long each wait on the database may last, in seconds.

    The defaults answer a caller within ``call_s`` whatever the database does, well inside the 15 s
    a tool call may wait for "the ledger is unavailable", and leave a shutdown room for a write
    under way to finish (writes are not cut short by a cancellation, only by ``call_s``).
    """

    connect_s: int = 5  # one connection attempt (libpq's connect_timeout: whole seconds, at least 2)
    wait_s: float = 4.0  # for a connection from the pool (a new one, while none is free)
    statement_s: float = 5.0  # statement_timeout: one statement, on the server's side
    lock_s: float = 2.0  # lock_timeout: a row or advisory lock someone else holds
    call_s: float = 6.0  # a whole call: waiting, the connection check and every statement
    close_s: float = 0.5  # for the pool's background workers when closing


class Database(Generic[Row]):
    """A pool of checked, configured connections to one database, each call bounded in time."""

    def __init__(self, pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]], limits: Limits) -> None:
        self._pool = pool
        self.limits = limits

    @classmethod
    async def open(
        cls, url: str, *, name: str, limits: Limits, max_size: int, row_factory: Any = None
    ) -> Database[Row]:
        """A pool on ``url`` (autocommit connections; ``name`` shows in ``pg_stat_activity``). It
        connects in the background: the first call waits for it, at most ``limits.wait_s``."""
        kwargs = connect_options(name, limits)
        if row_factory is not None:
            kwargs["row_factory"] = row_factory
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]] = AsyncConnectionPool(
            url,
            kwargs=kwargs,
            configure=functools.partial(configure, limits=limits),
            min_size=1,
            max_size=max_size,
            open=False,  # an async pool opened in its constructor is deprecated
            timeout=limits.wait_s,
            reconnect_timeout=RECONNECT_GIVE_UP_S,
            name=name,
        )
        await pool.open(wait=False)
        return cls(pool, limits)

    @asynccontextmanager
    async def connection(self, *, call_s: float | None = None) -> AsyncIterator[psycopg.AsyncConnection[Row]]:
        """A connection that answered a check just now, for one call of at most ``call_s`` seconds
        (``limits.call_s`` by default). Raises :class:`LedgerUnavailableError` when the database
        cannot be reached in time, drops the connection, times a statement or a lock out, or
        cannot write (a standby, after a failover: its connections are not kept).

        Cancelled or timed out part-way, the connection is closed, not reused: the server rolls
        back what it had not committed, so a transaction is never half-done.
        """
        limit = self.limits.call_s if call_s is None else call_s
        try:
            with anyio.fail_after(limit):
                conn = await self._checked()
                try:
                    yield conn
                finally:
                    await self._give_back(conn)
        except TimeoutError as err:
            raise LedgerUnavailableError(f"the database did not answer within {limit:g} s") from err
        except (psycopg.OperationalError, psycopg.InterfaceError, ReadOnlySqlTransaction) as err:
            # PoolTimeout, connection errors, AdminShutdown, QueryCanceled (statement_timeout) and
            # LockNotAvailable (lock_timeout) are all OperationalErrors; ReadOnlySqlTransaction is
            # a standby's answer (the check below keeps its sessions out of the pool).
            raise LedgerUnavailableError(f"the database did not answer ({_kind(err)})") from err

    async def _checked(self) -> psycopg.AsyncConnection[Row]:
        for attempt in range(CHECK_ATTEMPTS):
            conn = await self._pool.getconn()
            try:
                await AsyncConnectionPool.check_connection(conn)
                if _read_only(conn):
                    await conn.close()  # never to be used again: the pool makes a new one
                    raise ReadOnlySqlTransaction("the server is a standby or read-only")
            except BaseException as err:
                await self._give_back(conn)
                if attempt + 1 == CHECK_ATTEMPTS or not isinstance(err, psycopg.Error):
                    raise
            else:
                return conn
            # One bad connection is seldom alone: a restart or a failover spoiled every idle one.
            # Replace them all now instead of finding them one check (and one backoff) at a time.
            log.warning("the database dropped or moved this process's connections; connecting again")
            with anyio.CancelScope(shield=True):  # it only closes sockets: nothing it awaits can hang
                await self._pool.drain()
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _give_back(self, conn: psycopg.AsyncConnection[Row]) -> None:
        if conn.pgconn.transaction_status != TransactionStatus.IDLE:
            # Left mid-statement or mid-transaction (cancelled, timed out, dropped): closing it is
            # instant, and the pool replaces it, where a rollback would wait on the server.
            await conn.close()
        with anyio.CancelScope(shield=True):  # a connection lost on the way back would shrink the pool
            await self._pool.putconn(conn)

    async def close(self) -> None:
        """Close the pool: idle connections at once, ones in use when they come back. Returns within
        ``limits.close_s`` even when the database does not answer."""
        with anyio.CancelScope(shield=True):
            await self._pool.close(timeout=self.limits.close_s)


def connect_options(name: str, limits: Limits) -> dict[str, Any]:
    """The keyword arguments of a connection to the shared database (``name`` for pg_stat_activity)."""
    return {"autocommit": True, "connect_timeout": max(2, limits.connect_s), "application_name": name[:63]}


async def configure(conn: psycopg.AsyncConnection[Any], *, limits: Limits) -> None:
    """Give a new connection its statement and lock timeouts (SET, not libpq's ``options``, which
    a connection pooler such as PgBouncer may refuse)."""
    await conn.execute(
        f"SET statement_timeout = {int(limits.statement_s * 1000)}; SET lock_timeout = {int(limits.lock_s * 1000)}".encode()
    )


def _read_only(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether the server said, when this session began, that it cannot write: a standby (a
    failover moved the primary elsewhere) or a database set read-only. PostgreSQL 14+ reports both
    settings by itself, so asking costs no round trip."""
    return any(
        conn.info.parameter_status(name) == "on"
        for name in ("in_hot_standby", "default_transaction_read_only")
    )


def _kind(err: BaseException) -> str:
    """What went wrong, without the driver's message (it may name the host and the user)."""
    sqlstate = getattr(err, "sqlstate", None)
    return f"{type(err).__name__} {sqlstate}" if sqlstate else type(err).__name__
