"""The sign-in store (issue 24), one suite over both ledger backends: codes and refresh tokens used once
however many replicas race for them, a sign-in ended whole, a sealed key kept exactly while a live
token needs it, the caller's clock honoured, the previous schema migrated with its rows, and the
database's faults raised as the ledger's own error."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Literal

import anyio
import psycopg
import pytest

from suno_mcp.domain.errors import LedgerUnavailableError
from suno_mcp.store.base import LedgerStore
from suno_mcp.store.postgres import MIGRATIONS as PG_MIGRATIONS
from suno_mcp.store.postgres import PostgresLedger
from suno_mcp.store.signin import CodeRecord, SessionLine, SignInStore, Sql, TokenRecord
from suno_mcp.store.sqlite import MIGRATIONS
from tests.support.ledgers import PATIENT, Held, Store
from tests.support.postgres import PostgresServer, stopped

BOUND_S = 30.0
T0 = 1_000_000.0  # the caller's clock: every call is told the time
HOUR = 3600.0
DAY = 24 * HOUR
A = "t-" + "a" * 32  # two team-mode tenants
B = "t-" + "b" * 32


@pytest.fixture
async def ledgers(store: Store) -> AsyncIterator[list[LedgerStore]]:
    """Two ledgers on one store: two processes on one file, or two replicas on one database."""
    opened = [await store.open(), await store.open()]
    yield opened
    for ledger in opened:
        await ledger.close()


@pytest.fixture
def signin(ledgers: list[LedgerStore]) -> SignInStore:
    return ledgers[0].signin_store()


def _code(
    code_hash: str = "c1", *, family: str = "f1", tenant: str = A, expires_at: float = T0 + 60
) -> CodeRecord:
    return CodeRecord(
        code_hash=code_hash,
        family=family,
        client_id="client-1",
        tenant=tenant,
        redirect_uri="http://127.0.0.1:5000/cb",
        redirect_uri_explicit=True,
        code_challenge="challenge",
        scopes=("suno", "suno:read"),
        resource="https://mcp.example/mcp",
        expires_at=expires_at,
    )


def _token(
    token_hash: str,
    kind: Literal["access", "refresh"] = "refresh",
    *,
    family: str = "f1",
    tenant: str = A,
    created_at: float = T0,
    expires_at: float = T0 + DAY,
) -> TokenRecord:
    return TokenRecord(
        token_hash=token_hash,
        kind=kind,
        family=family,
        client_id="client-1",
        tenant=tenant,
        scopes=("suno",),
        resource=None,
        created_at=created_at,
        expires_at=expires_at,
    )


async def _race(calls: list[Callable[[], Awaitable[bool]]]) -> list[bool]:
    """Start every call at the same moment (each one waiting at the start line first)."""
    results: list[bool] = []
    start = anyio.Event()

    async def run(call: Callable[[], Awaitable[bool]]) -> None:
        await start.wait()
        results.append(await call())

    with anyio.fail_after(BOUND_S):
        async with anyio.create_task_group() as tg:
            for call in calls:
                tg.start_soon(run, call)
            await anyio.wait_all_tasks_blocked()
            start.set()
    return results


# ------------------------------------------------------------ codes


async def test_a_code_is_kept_whole_and_read_back_whatever_its_state(signin: SignInStore) -> None:
    code = _code()
    await signin.put_code(code)
    assert await signin.get_code("c1") == code
    assert await signin.use_code("c1", T0)
    assert await signin.get_code("c1") == replace(code, used_at=T0)
    assert await signin.get_code("unknown") is None


async def test_a_code_raced_for_by_two_replicas_is_used_by_exactly_one_caller(
    ledgers: list[LedgerStore],
) -> None:
    stores = [ledger.signin_store() for ledger in ledgers]
    for n in range(10):
        await stores[0].put_code(_code(f"c{n}"))
        # Two calls on one ledger and two on the other: one process's callers and two replicas at once.
        calls = [functools.partial(s.use_code, f"c{n}", T0) for s in stores * 2]
        assert sorted(await _race(calls)) == [False, False, False, True]


async def test_an_expired_or_revoked_code_cannot_be_used(signin: SignInStore) -> None:
    await signin.put_code(_code("late", expires_at=T0 + 60))
    await signin.put_code(_code("ended", family="f-ended"))
    assert not await signin.use_code("late", T0 + 60)  # expiry is exclusive: at its instant it is over
    await signin.revoke_family("f-ended", T0)
    assert not await signin.use_code("ended", T0)
    assert not await signin.use_code("never-issued", T0)
    late = await signin.get_code("late")
    assert late is not None
    assert late.used_at is None  # an expired code is left as it was, for the caller to tell apart


async def test_putting_a_used_code_again_does_not_make_it_usable(signin: SignInStore) -> None:
    await signin.put_code(_code())
    assert await signin.use_code("c1", T0)
    await signin.put_code(_code())  # a retried call, say
    assert not await signin.use_code("c1", T0 + 1)


# ------------------------------------------------------------ tokens


async def test_tokens_are_kept_together_and_read_back_whatever_their_state(signin: SignInStore) -> None:
    access, refresh = _token("a1", "access", expires_at=T0 + HOUR), _token("r1")
    await signin.put_key(A, "sealed", T0)
    assert await signin.put_tokens(access, refresh)
    assert await signin.get_token("a1") == access
    assert await signin.get_token("r1") == refresh
    assert await signin.rotate("r1", T0 + 1)
    await signin.revoke_family("f1", T0 + 2)
    assert await signin.get_token("r1") == replace(refresh, rotated_at=T0 + 1, revoked_at=T0 + 2)
    assert await signin.get_token("unknown") is None


async def test_a_refresh_token_raced_for_by_two_replicas_is_rotated_by_exactly_one_caller(
    ledgers: list[LedgerStore],
) -> None:
    stores = [ledger.signin_store() for ledger in ledgers]
    for n in range(10):
        await stores[0].put_tokens(_token(f"r{n}"))
        calls = [functools.partial(s.rotate, f"r{n}", T0) for s in stores * 2]
        assert sorted(await _race(calls)) == [False, False, False, True]


async def test_only_a_live_refresh_token_rotates(signin: SignInStore) -> None:
    await signin.put_tokens(
        _token("access", "access"),
        _token("expired", expires_at=T0 + 10),
        _token("revoked", family="f-revoked"),
        _token("live"),
    )
    await signin.revoke_family("f-revoked", T0)
    assert not await signin.rotate("access", T0)  # an access token is never exchanged
    assert not await signin.rotate("expired", T0 + 10)
    assert not await signin.rotate("revoked", T0)
    assert await signin.rotate("live", T0)
    assert not await signin.rotate("live", T0)  # once


async def test_putting_a_revoked_token_again_does_not_bring_it_back(signin: SignInStore) -> None:
    await signin.put_tokens(_token("r1"))
    await signin.revoke_family("f1", T0)
    await signin.put_tokens(_token("r1"))
    token = await signin.get_token("r1")
    assert token is not None
    assert token.revoked_at == T0


async def test_revoking_a_family_ends_its_tokens_of_both_kinds_and_its_unused_codes_only(
    signin: SignInStore,
) -> None:
    await signin.put_code(_code("c-used", family="f1"))
    assert await signin.use_code("c-used", T0)
    await signin.put_code(_code("c-unused", family="f1"))
    await signin.put_code(_code("c-other", family="f2"))
    await signin.put_tokens(_token("a1", "access"), _token("r1"), _token("r-old"), _token("r2", family="f2"))
    assert await signin.rotate("r-old", T0)
    assert await signin.revoke_family("f1", T0 + 5) == 3
    assert await signin.revoke_family("f1", T0 + 6) == 0  # nothing left to revoke
    for token_hash in ("a1", "r1", "r-old"):
        token = await signin.get_token(token_hash)
        assert token is not None
        assert token.revoked_at == T0 + 5
    other = await signin.get_token("r2")
    assert other is not None
    assert other.revoked_at is None
    used, unused = await signin.get_code("c-used"), await signin.get_code("c-unused")
    assert used is not None
    assert used.used_at == T0  # as it was: used by its exchange
    assert unused is not None
    assert unused.used_at == T0 + 5
    assert await signin.use_code("c-other", T0 + 6)


# ------------------------------------------------------------ sealed keys


async def test_a_tenant_has_one_sealed_key_the_newest(signin: SignInStore) -> None:
    await signin.put_key(A, "sealed-1", T0)
    await signin.put_key(A, "sealed-2", T0 + 1)
    await signin.put_key(B, "sealed-b", T0)
    assert await signin.get_key(A) == "sealed-2"
    assert await signin.get_key(B) == "sealed-b"
    assert await signin.get_key("t-nobody") is None


async def test_the_key_is_kept_while_a_live_token_or_an_unused_code_remains_and_forgotten_after(
    signin: SignInStore,
) -> None:
    await signin.put_code(_code("c1", family="f1"))
    await signin.put_key(A, "sealed", T0)
    await signin.put_key(B, "sealed-b", T0)
    assert not await signin.forget_key_if_unused(A, T0)  # the code is on its way to its tokens
    assert await signin.use_code("c1", T0)
    assert await signin.put_tokens(_token("a1", "access", expires_at=T0 + HOUR), _token("r1"))
    await signin.put_tokens(_token("r2", family="f2", expires_at=T0 + 2 * DAY))
    assert not await signin.forget_key_if_unused(A, T0)
    await signin.revoke_family("f1", T0 + 10)
    assert not await signin.forget_key_if_unused(A, T0 + 10)  # f2's refresh token is live
    assert await signin.rotate("r2", T0 + 20)  # exchanged: no longer live, and nothing replaced it
    assert await signin.forget_key_if_unused(A, T0 + 20)
    assert await signin.get_key(A) is None
    assert not await signin.forget_key_if_unused(A, T0 + 20)  # nothing left to forget
    assert await signin.get_key(B) == "sealed-b"  # another tenant's key is its own


async def test_an_expired_token_keeps_no_key(signin: SignInStore) -> None:
    await signin.put_key(A, "sealed", T0)
    await signin.put_tokens(_token("a1", "access", expires_at=T0 + HOUR))
    assert not await signin.forget_key_if_unused(A, T0 + HOUR - 1)
    assert await signin.forget_key_if_unused(A, T0 + HOUR)


async def test_tokens_put_after_their_key_was_forgotten_say_so(signin: SignInStore) -> None:
    assert not await signin.put_tokens(_token("r1"))
    await signin.put_key(A, "sealed", T0)
    assert await signin.put_tokens(_token("r2"))


# ------------------------------------------------------------ clients, pending sign-ins, sessions


async def test_a_client_is_kept_and_a_second_registration_replaces_it(signin: SignInStore) -> None:
    await signin.put_client("client-1", '{"client_name": "One"}', T0)
    assert await signin.get_client("client-1") == '{"client_name": "One"}'
    await signin.put_client("client-1", '{"client_name": "Uno"}', T0 + 1)
    assert await signin.get_client("client-1") == '{"client_name": "Uno"}'
    assert await signin.get_client("client-2") is None


async def test_a_pending_sign_in_is_found_until_it_expires_or_is_dropped(signin: SignInStore) -> None:
    await signin.put_pending("p1", "client-1", '{"state": "s"}', T0 + 600)
    await signin.put_pending("p2", "client-1", "{}", T0 + 600)
    assert await signin.get_pending("p1", T0) == ("client-1", '{"state": "s"}')
    assert await signin.get_pending("p1", T0 + 600) is None
    await signin.drop_pending("p2")
    assert await signin.get_pending("p2", T0) is None
    await signin.drop_pending("p2")  # dropping twice is no error


async def test_sessions_list_the_tenants_live_sign_ins_most_recently_used_first(signin: SignInStore) -> None:
    await signin.put_client("client-1", '{"client_name": "Claude"}', T0)
    await signin.put_client("client-2", '{"redirect_uris": []}', T0)
    # f1: signed in at T0, refreshed at T0 + 100 (the first refresh token rotated).
    await signin.put_tokens(_token("a1", "access", expires_at=T0 + HOUR), _token("r1", expires_at=T0 + DAY))
    assert await signin.rotate("r1", T0 + 100)
    await signin.put_tokens(
        _token("a1b", "access", created_at=T0 + 100, expires_at=T0 + 100 + HOUR),
        _token("r1b", created_at=T0 + 100, expires_at=T0 + 100 + DAY),
    )
    # f2: another client, signed in at T0 + 50.
    f2 = replace(_token("r2", family="f2", created_at=T0 + 50, expires_at=T0 + 2 * DAY), client_id="client-2")
    await signin.put_tokens(f2)
    # Neither ended sign-ins nor other tenants' are listed.
    await signin.put_tokens(_token("r3", family="f3"), _token("rb", family="fb", tenant=B))
    await signin.revoke_family("f3", T0)
    assert await signin.sessions(A, T0 + 200) == [
        SessionLine("f1", "client-1", "Claude", T0, T0 + 100, T0 + 100 + DAY),
        SessionLine("f2", "client-2", None, T0 + 50, T0 + 50, T0 + 2 * DAY),
    ]
    assert [s.family for s in await signin.sessions(A, T0 + 100 + DAY)] == ["f2"]  # f1 expired
    assert await signin.sessions("t-nobody", T0) == []


# ------------------------------------------------------------ upkeep, schema, faults


async def test_purge_deletes_what_is_long_dead_and_keeps_the_rest(signin: SignInStore) -> None:
    await signin.put_pending("p-old", "client-1", "{}", T0 - DAY - 1)
    await signin.put_pending("p-recent", "client-1", "{}", T0 - DAY + 1)
    await signin.put_code(_code("c-old", expires_at=T0 - DAY - 1))
    await signin.put_code(_code("c-recent", expires_at=T0 - 1))
    await signin.put_tokens(
        _token("expired-long-ago", expires_at=T0 - 31 * DAY),
        _token("revoked-long-ago", family="f-revoked", expires_at=T0 + DAY),
        _token("expired-lately", expires_at=T0 - DAY),
        _token("live"),
    )
    await signin.revoke_family("f-revoked", T0 - 31 * DAY)
    for _ in range(2):  # idempotent
        await signin.purge(T0)
        assert await signin.get_pending("p-recent", T0 - DAY) is not None
        assert await signin.get_pending("p-old", T0 - 2 * DAY) is None
        assert await signin.get_code("c-old") is None
        assert await signin.get_code("c-recent") is not None
        assert await signin.get_token("expired-long-ago") is None
        assert await signin.get_token("revoked-long-ago") is None
        assert await signin.get_token("expired-lately") is not None
        assert await signin.get_token("live") is not None


async def test_a_ledger_of_the_previous_version_gains_the_sign_in_tables_and_keeps_its_tasks(
    store: Store,
) -> None:
    store.write_previous_schema(A)
    ledger = await store.open()
    try:
        assert store.schema_version() == len(MIGRATIONS) == len(PG_MIGRATIONS)
        assert (await ledger.get("old", tenant=A)) is not None
        signin = ledger.signin_store()
        await signin.put_key(A, "sealed", T0)
        assert await signin.get_key(A) == "sealed"
    finally:
        await ledger.close()
    reopened = await store.open()  # and opening it again runs no step twice
    try:
        assert await reopened.signin_store().get_key(A) == "sealed"
    finally:
        await reopened.close()


def test_a_statement_is_spelled_for_both_drivers_and_one_neither_could_read_is_refused() -> None:
    sql = Sql("UPDATE t SET a = :a WHERE b = :b_2 AND c = 'x'")
    assert sql.pyformat == b"UPDATE t SET a = %(a)s WHERE b = %(b_2)s AND c = 'x'"
    with pytest.raises(ValueError, match="no '::'"):
        Sql("SELECT :a::text")
    with pytest.raises(ValueError, match="no '::'"):
        Sql("SELECT 1 WHERE a LIKE '%x'")


async def test_a_write_held_past_the_timeout_is_unavailable_and_leaves_the_code_unused(held: Held) -> None:
    signin = held.ledger.signin_store()
    await signin.put_code(_code())
    with anyio.fail_after(BOUND_S):
        with held.hold():
            with pytest.raises(LedgerUnavailableError):
                await signin.use_code("c1", T0)
            assert await signin.get_code("c1") is not None  # reads still answer
        assert await signin.use_code("c1", T0)  # the refused call changed nothing


@pytest.mark.slow  # stops and restarts the PostgreSQL server with pg_ctl
async def test_a_server_stopped_during_a_call_fails_it_as_unavailable_and_commits_none_of_it(
    database: str, postgres_server: PostgresServer
) -> None:
    ledger = await PostgresLedger.open(database, limits=PATIENT)
    try:
        signin = ledger.signin_store()
        await signin.put_code(_code())
        with anyio.fail_after(BOUND_S), codes_locked(database):
            async with anyio.create_task_group() as tg:
                failed = anyio.Event()

                async def use() -> None:
                    with pytest.raises(LedgerUnavailableError):
                        await signin.use_code("c1", T0)
                    failed.set()

                tg.start_soon(use)
                await _waiting_for_a_lock(database)
                with stopped(postgres_server):
                    await failed.wait()
        assert await signin.use_code("c1", T0)  # restarted: the interrupted call left it unused
    finally:
        await ledger.close()


@contextmanager
def codes_locked(url: str) -> Iterator[None]:
    """Another writer holding the codes table; it lets go by closing its connection (rolled back),
    which works whether the server is up or was stopped under it."""
    other = psycopg.connect(url)
    try:
        other.execute("LOCK TABLE signin_codes IN EXCLUSIVE MODE")
        yield
    finally:
        other.close()


async def _waiting_for_a_lock(url: str) -> None:
    """Return once the ledger's backend waits for a lock (a bounded wait: the caller's scope)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        while True:
            cur = await admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = 'suno-mcp ledger'"
                " AND wait_event_type = 'Lock'"
            )
            if await cur.fetchone() is not None:
                return


async def test_a_key_is_not_forgotten_under_tokens_another_replica_is_putting_at_that_moment(
    database: str,
) -> None:
    ledger = await PostgresLedger.open(database, limits=PATIENT)
    try:
        signin = ledger.signin_store()
        await signin.put_key(A, "sealed", T0)
        # Another replica in the middle of put_tokens: it touched the key row, its token is not committed.
        with anyio.fail_after(BOUND_S), psycopg.connect(database) as other:
            other.execute("UPDATE signin_keys SET tenant = tenant WHERE tenant = %s", (A,))
            other.execute(
                "INSERT INTO signin_tokens (token_hash, kind, family, client_id, tenant, scopes, created_at,"
                " expires_at) VALUES ('r1', 'refresh', 'f1', 'client-1', %s, 'suno', %s, %s)",
                (A, T0, T0 + DAY),
            )
            async with anyio.create_task_group() as tg:
                forgotten: list[bool] = []

                async def forget() -> None:
                    forgotten.append(await signin.forget_key_if_unused(A, T0))

                tg.start_soon(forget)
                await _waiting_for_a_lock(database)
                other.commit()
        assert forgotten == [False]
        assert await signin.get_key(A) == "sealed"
    finally:
        await ledger.close()
