"""The sign-in records (OAuth sign-in, issue 24), in the ledger's database, written once for both backends.

Signing in (``SUNO_MCP_AUTH=oauth``, team mode, HTTP) leaves records that every replica must honour and
that a restart must not lose: registered clients, sign-ins waiting for their page, authorization codes,
access and refresh tokens, and each tenant's sealed gptproto key. They live in the ledger's database,
beside the tasks, in tables the ledgers' migrations create from :data:`DDL`.

The SQL is written here once, with ``:name`` parameters; :class:`Sql` keeps the psycopg spelling
(``%(name)s``) made from it at import. A backend only runs statements: :class:`Runner` (reads on any
connection, writes as one transaction), provided by :class:`SqliteRunner` for the SQLite ledger's worker
thread and by the PostgreSQL ledger's pool. The rules (what is live, what a check-and-set checks) are
in the statements, so each check-and-set is one guarded UPDATE or DELETE whose row count says who won:
two replicas racing for one code or one refresh token cannot both win.

Nothing here sees a secret: tokens and codes arrive as hashes, keys as sealed text (the provider hashes
and seals; this module stores). Times are the caller's clock, epoch seconds, passed in as ``now``.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

T = TypeVar("T")

# How long past their expiry pending sign-ins and codes are kept (a late exchange then reads as
# "expired", not "unknown"), and revoked or expired tokens (a reused refresh token is recognised,
# and its family revoked, for that long).
PENDING_KEPT_S = 24 * 3600.0
TOKENS_KEPT_S = 30 * 24 * 3600.0

# Every statement below is split on ";" by the migrations: no ";" inside one.
DDL = """
    CREATE TABLE signin_clients (
        client_id   TEXT PRIMARY KEY,
        info_json   TEXT NOT NULL,
        created_at  DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE signin_pending (
        pending_hash TEXT PRIMARY KEY,
        client_id    TEXT NOT NULL,
        params_json  TEXT NOT NULL,
        expires_at   DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX signin_pending_expiry ON signin_pending (expires_at);
    CREATE TABLE signin_keys (
        tenant      TEXT PRIMARY KEY,
        sealed      TEXT NOT NULL,
        updated_at  DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE signin_codes (
        code_hash             TEXT PRIMARY KEY,
        family                TEXT NOT NULL,
        client_id             TEXT NOT NULL,
        tenant                TEXT NOT NULL,
        redirect_uri          TEXT NOT NULL,
        redirect_uri_explicit INTEGER NOT NULL,
        code_challenge        TEXT NOT NULL,
        scopes                TEXT NOT NULL,
        resource              TEXT,
        expires_at            DOUBLE PRECISION NOT NULL,
        used_at               DOUBLE PRECISION
    );
    CREATE INDEX signin_codes_family ON signin_codes (family);
    CREATE INDEX signin_codes_tenant ON signin_codes (tenant, expires_at);
    CREATE INDEX signin_codes_expiry ON signin_codes (expires_at);
    CREATE TABLE signin_tokens (
        token_hash  TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        family      TEXT NOT NULL,
        client_id   TEXT NOT NULL,
        tenant      TEXT NOT NULL,
        scopes      TEXT NOT NULL,
        resource    TEXT,
        created_at  DOUBLE PRECISION NOT NULL,
        expires_at  DOUBLE PRECISION NOT NULL,
        revoked_at  DOUBLE PRECISION,
        rotated_at  DOUBLE PRECISION
    );
    CREATE INDEX signin_tokens_family ON signin_tokens (family);
    CREATE INDEX signin_tokens_tenant ON signin_tokens (tenant, expires_at);
    CREATE INDEX signin_tokens_expiry ON signin_tokens (expires_at);
    CREATE INDEX signin_tokens_revoked ON signin_tokens (revoked_at)
"""

_NAMED = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Sql:
    """One statement: ``named`` with ``:name`` parameters (SQLite's), ``pyformat`` with psycopg's
    ``%(name)s``, made once here so a call only runs it."""

    named: str
    pyformat: bytes = field(init=False)

    def __post_init__(self) -> None:
        # A cast ("::") or a "%" would be misread by one of the two spellings: the statements have none.
        if "::" in self.named or "%" in self.named:
            raise ValueError(f"a statement both backends run has no '::' or '%': {self.named!r}")
        object.__setattr__(self, "pyformat", _NAMED.sub(r"%(\1)s", self.named).encode())


Params = Mapping[str, object]
Row = Mapping[str, Any]


class Runner(Protocol):
    """What a backend provides: it runs the statements, the rules are in them."""

    async def read(self, sql: Sql, params: Params) -> list[Row]:
        """The rows of one query."""
        ...

    async def write(self, steps: Sequence[tuple[Sql, Params]]) -> list[int]:
        """Run the statements as one transaction (all or none); the row count of each."""
        ...


class InWorker(Protocol):
    """The SQLite ledger's way to run blocking work: in its one worker thread, after the calls asked
    before, with a file that cannot be used raised as LedgerUnavailableError."""

    def __call__(self, work: Callable[[], T]) -> Awaitable[T]: ...


class SqliteRunner:
    """:class:`Runner` on the SQLite ledger's connection, each call in the ledger's worker thread."""

    def __init__(self, db: sqlite3.Connection, run: InWorker) -> None:
        self._db = db
        self._run = run

    async def read(self, sql: Sql, params: Params) -> list[Row]:
        return await self._run(lambda: [dict(row) for row in self._db.execute(sql.named, params).fetchall()])

    async def write(self, steps: Sequence[tuple[Sql, Params]]) -> list[int]:
        return await self._run(lambda: self._write_now(steps))

    def _write_now(self, steps: Sequence[tuple[Sql, Params]]) -> list[int]:
        # IMMEDIATE: the file's write lock from the start, so every writer (other processes too) is
        # serialized and a guard's check and its write cannot be split by another writer.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            counts = [self._db.execute(sql.named, params).rowcount for sql, params in steps]
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return counts


# ------------------------------------------------------------ records


@dataclass(frozen=True)
class CodeRecord:
    """An authorization code (by its hash), as issued; ``used_at`` is set once it was exchanged."""

    code_hash: str
    family: str
    client_id: str
    tenant: str
    redirect_uri: str
    redirect_uri_explicit: bool
    code_challenge: str
    scopes: tuple[str, ...]
    resource: str | None
    expires_at: float
    used_at: float | None = None


@dataclass(frozen=True)
class TokenRecord:
    """An access or refresh token (by its hash). ``family`` is the sign-in it descends from: a code
    and every token exchanged from it, or from its refresh tokens, share one."""

    token_hash: str
    kind: Literal["access", "refresh"]
    family: str
    client_id: str
    tenant: str
    scopes: tuple[str, ...]
    resource: str | None
    created_at: float
    expires_at: float
    revoked_at: float | None = None
    rotated_at: float | None = None  # a refresh token already exchanged for a new pair


@dataclass(frozen=True)
class SessionLine:
    """One of a tenant's signed-in sessions (a family with a live token), for the person to review."""

    family: str
    client_id: str
    client_name: str | None
    created_at: float  # the first token of the family: when the person signed in
    last_issued_at: float  # the newest token: the last exchange or refresh
    expires_at: float  # the latest expiry among its live tokens


def _scopes(text: str) -> tuple[str, ...]:
    # An OAuth scope token has no space in it (RFC 6749, 3.3): joined by spaces, split back exactly.
    return tuple(text.split())


def _code(row: Row) -> CodeRecord:
    return CodeRecord(
        code_hash=row["code_hash"],
        family=row["family"],
        client_id=row["client_id"],
        tenant=row["tenant"],
        redirect_uri=row["redirect_uri"],
        redirect_uri_explicit=bool(row["redirect_uri_explicit"]),
        code_challenge=row["code_challenge"],
        scopes=_scopes(row["scopes"]),
        resource=row["resource"],
        expires_at=float(row["expires_at"]),
        used_at=None if row["used_at"] is None else float(row["used_at"]),
    )


def _token(row: Row) -> TokenRecord:
    return TokenRecord(
        token_hash=row["token_hash"],
        kind=row["kind"],
        family=row["family"],
        client_id=row["client_id"],
        tenant=row["tenant"],
        scopes=_scopes(row["scopes"]),
        resource=row["resource"],
        created_at=float(row["created_at"]),
        expires_at=float(row["expires_at"]),
        revoked_at=None if row["revoked_at"] is None else float(row["revoked_at"]),
        rotated_at=None if row["rotated_at"] is None else float(row["rotated_at"]),
    )


def _client_name(info_json: str | None) -> str | None:
    if not info_json:
        return None
    name = json.loads(info_json).get("client_name")
    return name if isinstance(name, str) else None


# ------------------------------------------------------------ statements

# A token still honoured at :now: not revoked, not expired, and (a refresh token) not yet exchanged.
_LIVE_WHERE = "t.revoked_at IS NULL AND t.expires_at > :now AND (t.kind = 'access' OR t.rotated_at IS NULL)"
# A code that may still be exchanged at :now: its tokens are on their way.
_UNUSED_WHERE = "c.used_at IS NULL AND c.expires_at > :now"

_PUT_CLIENT = Sql(
    "INSERT INTO signin_clients (client_id, info_json, created_at) VALUES (:client_id, :info_json, :now)"
    " ON CONFLICT (client_id) DO UPDATE SET info_json = excluded.info_json"
)
_GET_CLIENT = Sql("SELECT info_json FROM signin_clients WHERE client_id = :client_id")
_PUT_PENDING = Sql(
    "INSERT INTO signin_pending (pending_hash, client_id, params_json, expires_at)"
    " VALUES (:pending_hash, :client_id, :params_json, :expires_at)"
    " ON CONFLICT (pending_hash) DO UPDATE SET client_id = excluded.client_id,"
    " params_json = excluded.params_json, expires_at = excluded.expires_at"
)
_GET_PENDING = Sql(
    "SELECT client_id, params_json FROM signin_pending WHERE pending_hash = :pending_hash AND expires_at > :now"
)
_DROP_PENDING = Sql("DELETE FROM signin_pending WHERE pending_hash = :pending_hash")
_PUT_KEY = Sql(
    "INSERT INTO signin_keys (tenant, sealed, updated_at) VALUES (:tenant, :sealed, :now)"
    " ON CONFLICT (tenant) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at"
)
_GET_KEY = Sql("SELECT sealed FROM signin_keys WHERE tenant = :tenant")
# A write that makes a tenant's record live first touches the tenant's key row (a no-op UPDATE, which
# PostgreSQL locks), as forgetting the key does: the two then take turns, so the forget's check sees
# the new code or token, or the writer finds the key already gone. SQLite's writers take turns anyway.
_HOLD_KEY = Sql("UPDATE signin_keys SET tenant = tenant WHERE tenant = :tenant")
# Inserts do nothing on a hash already stored: a retried call must not bring a used code or a revoked
# token back to life.
_PUT_CODE = Sql(
    "INSERT INTO signin_codes (code_hash, family, client_id, tenant, redirect_uri, redirect_uri_explicit,"
    " code_challenge, scopes, resource, expires_at, used_at) VALUES (:code_hash, :family, :client_id, :tenant,"
    " :redirect_uri, :redirect_uri_explicit, :code_challenge, :scopes, :resource, :expires_at, :used_at)"
    " ON CONFLICT (code_hash) DO NOTHING"
)
_GET_CODE = Sql("SELECT * FROM signin_codes WHERE code_hash = :code_hash")
_USE_CODE = Sql(
    "UPDATE signin_codes SET used_at = :now"
    " WHERE code_hash = :code_hash AND used_at IS NULL AND expires_at > :now"
)
_PUT_TOKEN = Sql(
    "INSERT INTO signin_tokens (token_hash, kind, family, client_id, tenant, scopes, resource, created_at,"
    " expires_at, revoked_at, rotated_at) VALUES (:token_hash, :kind, :family, :client_id, :tenant, :scopes,"
    " :resource, :created_at, :expires_at, :revoked_at, :rotated_at) ON CONFLICT (token_hash) DO NOTHING"
)
_GET_TOKEN = Sql("SELECT * FROM signin_tokens WHERE token_hash = :token_hash")
_ROTATE = Sql(
    "UPDATE signin_tokens SET rotated_at = :now WHERE token_hash = :token_hash AND kind = 'refresh'"
    " AND revoked_at IS NULL AND rotated_at IS NULL AND expires_at > :now"
)
_REVOKE_TOKENS = Sql(
    "UPDATE signin_tokens SET revoked_at = :now WHERE family = :family AND revoked_at IS NULL"
)
_REVOKE_CODES = Sql("UPDATE signin_codes SET used_at = :now WHERE family = :family AND used_at IS NULL")
_FORGET_KEY = Sql(
    "DELETE FROM signin_keys WHERE tenant = :tenant"  # noqa: S608 (fixed fragments)
    f" AND NOT EXISTS (SELECT 1 FROM signin_tokens t WHERE t.tenant = :tenant AND {_LIVE_WHERE})"
    f" AND NOT EXISTS (SELECT 1 FROM signin_codes c WHERE c.tenant = :tenant AND {_UNUSED_WHERE})"
)
_SESSIONS = Sql(
    "SELECT t.family AS family, t.client_id AS client_id, c.info_json AS info_json,"  # noqa: S608 (fixed fragments)
    " MIN(t.created_at) AS created_at, MAX(t.created_at) AS last_issued_at,"
    f" MAX(CASE WHEN {_LIVE_WHERE} THEN t.expires_at END) AS expires_at"
    " FROM signin_tokens t LEFT JOIN signin_clients c ON c.client_id = t.client_id"
    " WHERE t.tenant = :tenant GROUP BY t.family, t.client_id, c.info_json"
    f" HAVING MAX(CASE WHEN {_LIVE_WHERE} THEN 1 ELSE 0 END) = 1"
    " ORDER BY last_issued_at DESC, family"
)
_PURGE = (
    Sql("DELETE FROM signin_pending WHERE expires_at < :pending_before"),
    Sql("DELETE FROM signin_codes WHERE expires_at < :pending_before"),
    Sql("DELETE FROM signin_tokens WHERE expires_at < :tokens_before OR revoked_at < :tokens_before"),
)


class SignInStore:
    """The sign-in records in the ledger's database, on one backend's :class:`Runner`.

    Get one from the ledger (``ledger.signin_store()``). Every method is one read or one
    transaction; a database that cannot answer raises
    :class:`~suno_mcp.domain.errors.LedgerUnavailableError`, as the ledger's own calls do.
    """

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    async def _one(self, sql: Sql, params: Params) -> Row | None:
        rows = await self._runner.read(sql, params)
        return rows[0] if rows else None

    async def _write(self, sql: Sql, params: Params) -> int:
        return (await self._runner.write([(sql, params)]))[0]

    # ------------------------------------------------------------ clients and pending sign-ins

    async def put_client(self, client_id: str, info_json: str, now: float) -> None:
        """Keep a registered client's information (JSON, as the provider wrote it); a second put replaces it."""
        await self._write(_PUT_CLIENT, {"client_id": client_id, "info_json": info_json, "now": now})

    async def get_client(self, client_id: str) -> str | None:
        """The client's information as put, or None for a client never registered here."""
        row = await self._one(_GET_CLIENT, {"client_id": client_id})
        return None if row is None else str(row["info_json"])

    async def put_pending(
        self, pending_hash: str, client_id: str, params_json: str, expires_at: float
    ) -> None:
        """Keep a sign-in waiting for the person to finish it on the page."""
        await self._write(
            _PUT_PENDING,
            {
                "pending_hash": pending_hash,
                "client_id": client_id,
                "params_json": params_json,
                "expires_at": expires_at,
            },
        )

    async def get_pending(self, pending_hash: str, now: float) -> tuple[str, str] | None:
        """``(client_id, params_json)`` of a waiting sign-in, or None when unknown or expired at ``now``."""
        row = await self._one(_GET_PENDING, {"pending_hash": pending_hash, "now": now})
        return None if row is None else (str(row["client_id"]), str(row["params_json"]))

    async def drop_pending(self, pending_hash: str) -> None:
        """Forget a waiting sign-in (finished or abandoned); nothing happens for an unknown one."""
        await self._write(_DROP_PENDING, {"pending_hash": pending_hash})

    # ------------------------------------------------------------ sealed keys

    async def put_key(self, tenant: str, sealed: str, now: float) -> None:
        """Keep the tenant's sealed key, replacing any older one.

        Put the sign-in's code first (:meth:`put_code`), then the key: an unused code keeps the key
        from :meth:`forget_key_if_unused`, so a session of the same tenant ending meanwhile cannot
        take the key the new one is about to need."""
        await self._write(_PUT_KEY, {"tenant": tenant, "sealed": sealed, "now": now})

    async def get_key(self, tenant: str) -> str | None:
        """The tenant's sealed key, or None when the tenant has none (never signed in, or forgotten)."""
        row = await self._one(_GET_KEY, {"tenant": tenant})
        return None if row is None else str(row["sealed"])

    async def forget_key_if_unused(self, tenant: str, now: float) -> bool:
        """Delete the tenant's key unless a live token (or a code not yet exchanged) of theirs remains;
        whether a key was deleted. One guarded DELETE: a code or token written at the same moment
        either is seen by the guard or finds the key gone."""
        counts = await self._runner.write(
            [(_HOLD_KEY, {"tenant": tenant}), (_FORGET_KEY, {"tenant": tenant, "now": now})]
        )
        return counts[1] == 1

    # ------------------------------------------------------------ codes

    async def put_code(self, code: CodeRecord) -> None:
        """Keep an issued code (a code already stored under this hash stays as it is)."""
        params = {
            "code_hash": code.code_hash,
            "family": code.family,
            "client_id": code.client_id,
            "tenant": code.tenant,
            "redirect_uri": code.redirect_uri,
            "redirect_uri_explicit": int(code.redirect_uri_explicit),
            "code_challenge": code.code_challenge,
            "scopes": " ".join(code.scopes),
            "resource": code.resource,
            "expires_at": code.expires_at,
            "used_at": code.used_at,
        }
        await self._runner.write([(_HOLD_KEY, {"tenant": code.tenant}), (_PUT_CODE, params)])

    async def get_code(self, code_hash: str) -> CodeRecord | None:
        """The code as stored, used or expired alike (the caller decides), or None when unknown."""
        row = await self._one(_GET_CODE, {"code_hash": code_hash})
        return None if row is None else _code(row)

    async def use_code(self, code_hash: str, now: float) -> bool:
        """Mark the code used: True for the one caller, on any replica, that found it unused and
        unexpired at ``now``; False for every other (used, expired, revoked or unknown)."""
        return await self._write(_USE_CODE, {"code_hash": code_hash, "now": now}) == 1

    # ------------------------------------------------------------ tokens

    async def put_tokens(self, *records: TokenRecord) -> bool:
        """Keep issued tokens, all or none (an access token and its refresh token arrive together);
        a token already stored under a hash stays as it is. Returns whether the tokens' tenant still has
        its key: False when :meth:`forget_key_if_unused` took it in the moment before (the tokens
        are kept, but cannot act: revoke their family and ask the person to sign in again)."""
        tenants = sorted({r.tenant for r in records})
        steps: list[tuple[Sql, Params]] = [(_HOLD_KEY, {"tenant": tenant}) for tenant in tenants]
        steps += [
            (
                _PUT_TOKEN,
                {
                    "token_hash": r.token_hash,
                    "kind": r.kind,
                    "family": r.family,
                    "client_id": r.client_id,
                    "tenant": r.tenant,
                    "scopes": " ".join(r.scopes),
                    "resource": r.resource,
                    "created_at": r.created_at,
                    "expires_at": r.expires_at,
                    "revoked_at": r.revoked_at,
                    "rotated_at": r.rotated_at,
                },
            )
            for r in records
        ]
        if not records:
            return True
        counts = await self._runner.write(steps)
        return all(count == 1 for count in counts[: len(tenants)])

    async def get_token(self, token_hash: str) -> TokenRecord | None:
        """The token as stored, whatever its state (revoked, rotated, expired), or None when unknown."""
        row = await self._one(_GET_TOKEN, {"token_hash": token_hash})
        return None if row is None else _token(row)

    async def rotate(self, token_hash: str, now: float) -> bool:
        """Mark a refresh token exchanged: True for the one caller, on any replica, that found it live
        at ``now`` (not revoked, not rotated, not expired); False for every other."""
        return await self._write(_ROTATE, {"token_hash": token_hash, "now": now}) == 1

    async def revoke_family(self, family: str, now: float) -> int:
        """End a sign-in: revoke every token of the family not revoked yet (access and refresh) and
        mark its unused codes used, in one transaction; how many tokens were revoked."""
        counts = await self._runner.write(
            [
                (_REVOKE_TOKENS, {"family": family, "now": now}),
                (_REVOKE_CODES, {"family": family, "now": now}),
            ]
        )
        return counts[0]

    # ------------------------------------------------------------ review and upkeep

    async def sessions(self, tenant: str, now: float) -> list[SessionLine]:
        """The tenant's sign-ins with a live token at ``now``, the most recently used first."""
        rows = await self._runner.read(_SESSIONS, {"tenant": tenant, "now": now})
        return [
            SessionLine(
                family=row["family"],
                client_id=row["client_id"],
                client_name=_client_name(row["info_json"]),
                created_at=float(row["created_at"]),
                last_issued_at=float(row["last_issued_at"]),
                expires_at=float(row["expires_at"]),
            )
            for row in rows
        ]

    async def purge(self, now: float) -> None:
        """Delete pending sign-ins and codes expired over a day ago and tokens dead (expired or
        revoked) over 30 days ago. Cheap (indexed) and idempotent: call it now and then."""
        params = {"pending_before": now - PENDING_KEPT_S, "tokens_before": now - TOKENS_KEPT_S}
        await self._runner.write([(sql, params) for sql in _PURGE])
