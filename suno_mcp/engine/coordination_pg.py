"""Poll leases and change notices in PostgreSQL: replicas sharing one ledger share their polling too.

A lease row per followed task (``poll_leases``, created by the ledger's migrations) names the replica
that polls it, until when, and who fetched it last and when. Every time in it is the database's clock
(``clock_timestamp()``), never a replica's: replicas on different machines agree on what "expired"
and "fetched within the last two seconds" mean even when their own clocks do not.

Taking a lease is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` statement: the row lock it takes
makes concurrent requests for one task's lease queue up, and each sees the one before it, so at most one
of them is granted per ``fresh_s``. The rules are in :mod:`suno_mcp.engine.coordination`.

Notices go through ``pg_notify`` on one channel, as JSON: ``{"replica", "tenant", "task_id"}`` for a
new state, ``{"replica", "tenant", "kind": "paused", "api", "retry_after"}`` for a 429 (Retry-After
in seconds, relative, so the replicas' clocks need not agree). A dedicated connection LISTENs and is
reconnected (bounded backoff) whenever it drops. A notice lost while it was down costs only latency
(a replica whose waiters are refused a scheduled poll reads the ledger anyway) or one more 429.

Lease statements run on a small pool (:class:`suno_mcp.database.Database`: checked connections,
made again after a restart, statement and lock timeouts, every call bounded). When the database
cannot answer one, leases are granted (and the database asked again at most once per
:data:`OUTAGE_RETRY_S`): a replica that cannot coordinate polls as a lone process would, which costs
duplicate fetches, never a task nobody follows.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import psycopg
from psycopg import sql

from suno_mcp.database import Database, Limits, configure, connect_options
from suno_mcp.domain.errors import LedgerUnavailableError
from suno_mcp.domain.models import ApiFamily, TaskRef
from suno_mcp.engine.coordination import OnChange, OnPause

log = logging.getLogger(__name__)

CHANNEL = "suno_mcp_poll"
# Taking a lease is a single-row statement; one that takes longer than this has met a stuck database.
# The poller waits on it, so the wait for a connection is short too: an unanswered lease is granted.
LIMITS = Limits(wait_s=2.0, statement_s=4.0, call_s=5.0)
# Lease statements and notices: one at a time is the usual case, a second covers a slow one.
POOL_SIZE = 2
# Reconnecting the LISTEN connection: the first retry is quick, later ones back off to the cap.
RECONNECT_MIN_S = 0.05
RECONNECT_MAX_S = 5.0
# With the lease connection down, leases are granted and a reconnect tried at most this often.
OUTAGE_RETRY_S = 1.0
# NOTIFY payloads are capped at 8000 bytes; a task id too long for one is left to the fallback.
MAX_PAYLOAD = 7000
# Lease rows outlive their lease (a released one keeps who fetched last, so a replica that has not
# heard the task finished does not fetch it again); once expired this long nobody needs them.
PRUNE_AFTER = "1 hour"
PRUNE_EVERY_S = 600.0

_VALUES = (
    "INSERT INTO poll_leases AS l (tenant, task_id, holder, lease_until, fetched_at, fetched_by)"
    " SELECT %(tenant)s, %(task_id)s, %(me)s, n.t + make_interval(secs => %(lease_s)s::float8), n.t, %(me)s"
    " FROM (SELECT clock_timestamp() AS t) AS n ON CONFLICT (tenant, task_id) DO UPDATE SET "
)
# Nobody else fetched within fresh_s (this replica's own fetches are spaced by its schedule).
_NOT_FRESH = (
    "(l.fetched_by = EXCLUDED.fetched_by OR l.fetched_at IS NULL"
    " OR l.fetched_at <= EXCLUDED.fetched_at - make_interval(secs => %(fresh_s)s::float8))"
)
_MINE_OR_EXPIRED = "(l.holder = EXCLUDED.holder OR l.lease_until <= EXCLUDED.fetched_at)"
# A scheduled poll: the holder (or anyone, once the lease expired) when nobody else just fetched;
# anyone at all when the task's news is older than stale_s (the holder lags behind its waiters).
_SCHEDULED_SQL = (
    _VALUES + "holder = EXCLUDED.holder, lease_until = EXCLUDED.lease_until,"
    " fetched_at = EXCLUDED.fetched_at, fetched_by = EXCLUDED.fetched_by"
    f" WHERE ({_MINE_OR_EXPIRED} AND {_NOT_FRESH})"
    " OR l.fetched_at <= EXCLUDED.fetched_at - make_interval(secs => %(stale_s)s::float8)"
    " RETURNING 1"
)
# A read: anyone, when nobody else just fetched; it takes the lease only if that had expired.
_READ_SQL = (
    _VALUES + f"holder = CASE WHEN {_MINE_OR_EXPIRED} THEN EXCLUDED.holder ELSE l.holder END,"
    f" lease_until = CASE WHEN {_MINE_OR_EXPIRED} THEN EXCLUDED.lease_until ELSE l.lease_until END,"
    " fetched_at = EXCLUDED.fetched_at, fetched_by = EXCLUDED.fetched_by"
    f" WHERE {_NOT_FRESH} RETURNING 1"
)
# Released, the lease expires now; the row stays, with its last fetch, until pruned.
_RELEASE_SQL = (
    "UPDATE poll_leases SET lease_until = clock_timestamp() WHERE tenant = %(tenant)s"
    " AND task_id = %(task_id)s AND holder = %(me)s AND lease_until > clock_timestamp()"
)
_PRUNE_SQL = f"DELETE FROM poll_leases WHERE lease_until < clock_timestamp() - interval '{PRUNE_AFTER}'"  # noqa: S608 (a constant)

_Conn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True)
class _Change:
    """Another replica stored a new state of this task."""

    tenant: str
    task_id: str


@dataclass(frozen=True)
class _Pause:
    """The upstream answered another replica's request for this tenant with 429."""

    tenant: str
    api: ApiFamily | None
    retry_after: float | None


class PostgresCoordinator:
    """Leases and notices for the replicas sharing one database; provides
    :class:`suno_mcp.engine.coordination.PollCoordinator`. Open it with :meth:`open`."""

    def __init__(
        self, url: str, replica_id: str, db: Database[Any], *, clock: Callable[[], float], limits: Limits
    ) -> None:
        self.replica_id = replica_id
        self._url = url
        self._db = db
        self._limits = limits
        self._clock = clock
        self._retry_at = 0.0
        self._pruned_at: float | None = None
        self.listener_pid: int | None = None  # the LISTEN connection's server process, while up
        self.connections = 0  # how many times the LISTEN has been set up
        self._connected = anyio.Event()

    def __repr__(self) -> str:
        return f"PostgresCoordinator(replica={self.replica_id!r})"  # never the URL: it may hold a password

    @classmethod
    async def open(
        cls,
        url: str,
        replica_id: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        limits: Limits = LIMITS,
    ) -> PostgresCoordinator:
        """Start the lease pool; the ledger's migrations must have made ``poll_leases``. Raises
        :class:`~suno_mcp.domain.errors.LedgerUnavailableError` when the database does not answer."""
        db: Database[Any] = await Database.open(
            url, name=f"suno-mcp leases {replica_id}", limits=limits, max_size=POOL_SIZE
        )
        try:
            async with db.connection() as conn:
                await conn.execute("SELECT 1 FROM poll_leases LIMIT 0")
        except psycopg.errors.UndefinedTable as err:
            await db.close()
            raise RuntimeError(
                "the database has no poll_leases table: open the PostgreSQL ledger first (its migrations make it)"
            ) from err
        except BaseException:
            await db.close()
            raise
        return cls(url, replica_id, db, clock=clock, limits=limits)

    # ------------------------------------------------------------ leases

    async def take_lease(
        self,
        ref: TaskRef,
        *,
        read: bool,
        fresh_s: float,
        lease_s: float,
        stale_s: float | None = None,
    ) -> bool:
        """May this replica fetch the task now (see :mod:`suno_mcp.engine.coordination` for the rules)?"""
        params = {**self._key(ref), "lease_s": lease_s, "fresh_s": fresh_s, "stale_s": stale_s}
        reached, granted = await self._statement(_READ_SQL if read else _SCHEDULED_SQL, params)
        return granted or not reached  # cannot ask the database: poll as a lone process would

    async def changed(self, ref: TaskRef) -> None:
        """Tell the other replicas that this one stored a new state of the task."""
        if not await self._notify({"tenant": ref.tenant, "task_id": ref.task_id}):
            log.warning("task id too long for a change notice; other replicas will read the ledger")

    async def paused(self, tenant: str, family: ApiFamily | None, retry_after: float | None) -> None:
        """Tell the other replicas that the upstream answered this tenant's request with 429."""
        await self._notify({"tenant": tenant, "kind": "paused", "api": family, "retry_after": retry_after})

    async def _notify(self, message: dict[str, Any]) -> bool:
        """Send one notice to the other replicas; False when it is too long for NOTIFY."""
        payload = json.dumps({"replica": self.replica_id, **message}, separators=(",", ":"))
        if len(payload.encode()) > MAX_PAYLOAD:
            return False
        await self._statement(
            "SELECT pg_notify(%(channel)s, %(payload)s)", {"channel": CHANNEL, "payload": payload}
        )
        return True

    async def release(self, ref: TaskRef) -> None:
        """Let this replica's lease on the task expire now (and now and then clear long-expired ones)."""
        await self._statement(_RELEASE_SQL, self._key(ref))
        now = self._clock()
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            await self._statement(_PRUNE_SQL, {})

    def _key(self, ref: TaskRef) -> dict[str, Any]:
        return {"tenant": ref.tenant, "task_id": ref.task_id, "me": self.replica_id}

    async def _statement(self, query: str, params: Mapping[str, Any]) -> tuple[bool, bool]:
        """Run one statement: (the database answered, it returned a row). While the database does
        not answer, it is asked again at most once per :data:`OUTAGE_RETRY_S`."""
        if self._clock() < self._retry_at:
            return False, False
        try:
            # Not shielded: a statement cancelled part-way costs its connection (the pool makes a
            # new one) and at worst a lease that expires unused, as when a replica dies.
            async with self._db.connection() as conn:
                cur = await conn.execute(query.encode(), params)
                row = await cur.fetchone() if cur.description is not None else None
        except LedgerUnavailableError as err:
            log.warning("poll coordination cannot reach its database: %s", err)
            self._retry_at = self._clock() + OUTAGE_RETRY_S
            return False, False
        return True, row is not None

    # ------------------------------------------------------------ notices

    async def run(self, on_change: OnChange, on_pause: OnPause | None = None) -> None:
        """LISTEN for the other replicas' notices and hand them to ``on_change`` (a new state) or
        ``on_pause`` (a 429), reconnecting whenever the connection drops, until cancelled."""
        backoff = RECONNECT_MIN_S
        while True:
            try:
                conn = await self._connect_listener()
            except psycopg.OperationalError as err:
                log.warning("cannot LISTEN for poll notices (retrying): %s", type(err).__name__)
            else:
                try:
                    await self._listen(conn, on_change, on_pause)
                    backoff = RECONNECT_MIN_S  # it was up: the next drop starts the backoff afresh
                except psycopg.OperationalError as err:
                    log.warning("the LISTEN connection for poll notices dropped: %s", type(err).__name__)
                finally:
                    self.listener_pid = None
                    with anyio.CancelScope(shield=True):
                        await conn.close()
            await anyio.sleep(backoff)
            backoff = min(RECONNECT_MAX_S, backoff * 2)

    async def _listen(self, conn: _Conn, on_change: OnChange, on_pause: OnPause | None) -> None:
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
        self.listener_pid = conn.info.backend_pid
        self.connections += 1
        connected, self._connected = self._connected, anyio.Event()
        connected.set()
        async with contextlib.aclosing(conn.notifies()) as notices:
            async for notice in notices:
                found = self._parse(notice.payload)
                if isinstance(found, _Change):
                    await on_change(found.tenant, found.task_id)
                elif isinstance(found, _Pause) and on_pause is not None:
                    await on_pause(found.tenant, found.api, found.retry_after)

    def _parse(self, payload: str) -> _Change | _Pause | None:
        """Another replica's notice; None for our own or an unreadable one."""
        try:
            message = json.loads(payload)
            replica, tenant = message["replica"], message["tenant"]
            if not isinstance(tenant, str):
                raise TypeError("the tenant is not a string")
            found = _pause(tenant, message) if message.get("kind") == "paused" else _change(tenant, message)
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("ignored an unreadable poll notice")
            return None
        return None if replica == self.replica_id else found

    async def listening(self, times: int = 1) -> None:
        """Return once the LISTEN has been set up ``times`` times in all (a reconnect counts)."""
        while self.connections < times:
            await self._connected.wait()

    async def close(self) -> None:
        """Close the lease pool (the LISTEN connection closes when :meth:`run` is cancelled); returns
        within the limits' ``close_s`` whatever the database does."""
        await self._db.close()

    async def _connect_listener(self) -> _Conn:
        options = connect_options(f"suno-mcp listen {self.replica_id}", self._limits)
        conn = await psycopg.AsyncConnection.connect(self._url, **options)
        try:
            await configure(conn, limits=self._limits)
        except BaseException:
            await conn.close()
            raise
        return conn


def _change(tenant: str, message: dict[str, Any]) -> _Change:
    task_id = message["task_id"]
    if not isinstance(task_id, str):
        raise TypeError("the task id is not a string")
    return _Change(tenant, task_id)


def _pause(tenant: str, message: dict[str, Any]) -> _Pause:
    api, retry_after = message["api"], message["retry_after"]
    if api not in (None, "task", "clip"):
        raise ValueError(f"no such API family: {api!r}")
    if retry_after is not None and not (isinstance(retry_after, int | float) and retry_after >= 0):
        raise ValueError(f"not a Retry-After: {retry_after!r}")
    return _Pause(tenant, api, None if retry_after is None else float(retry_after))
