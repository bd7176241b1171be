"""The task ledger, one suite over both backends (SQLite and PostgreSQL): intent before submit,
schema versions, several writers on one store, one intent for a request reserved at once, and
tenants that neither see, reuse nor pay for each other's rows."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from suno_mcp.domain.models import AcceptedSubmit, Clip, SavedFile, Status, Task, TaskRecord
from suno_mcp.domain.spending import Budget, parse_budget
from suno_mcp.service.journal import Journal
from suno_mcp.store.base import LedgerStore, OverBudget
from suno_mcp.store.rules import PaidWindow, merge_clips
from suno_mcp.store.sqlite import SqliteLedger
from tests.support.ledgers import Store


@pytest.fixture
async def ledger(store: Store) -> AsyncIterator[LedgerStore]:
    opened = await store.open()
    yield opened
    await opened.close()


# Two team-mode tenants (ids as suno_mcp.domain.tenancy.tenant_id makes them); "" is the server's own key.
A = "t-" + "a" * 32
B = "t-" + "b" * 32


def _task(task_id: str, status: Status = Status.RUNNING, clips: int = 2) -> Task:
    return Task(
        task_id=task_id,
        api="task",
        status=status,
        clips=[Clip(id=f"{task_id}-c{i}", status=status, duration=30.0) for i in range(clips)],
    )


async def test_an_intent_is_recorded_as_unknown_before_any_task_id_exists(ledger: LedgerStore) -> None:
    local = await ledger.record_intent(api="task", kind="music", request={"prompt": "x"}, fingerprint="f")
    record = await ledger.get(local)
    assert record is not None
    assert record.status is Status.UNKNOWN
    assert record.task_id is None
    assert record.request == {"prompt": "x"}
    assert [r.local_id for r in await ledger.recent(statuses=[Status.UNKNOWN])] == [local]


async def test_a_submitted_task_is_found_by_task_id_and_by_any_clip_id(ledger: LedgerStore) -> None:
    local = await ledger.record_intent(api="task", kind="music", request={"prompt": "x"}, fingerprint="f")
    await ledger.record_submitted(local, _task("t1"))
    assert await ledger.get("t1") is not None
    by_clip = await ledger.find_by_clip("t1-c1")
    assert by_clip is not None
    assert by_clip.task_id == "t1"
    assert await ledger.find_by_clip("t1-c9") is None
    found = await ledger.find("t1-c0")
    assert found is not None
    assert found.local_id == local


async def test_a_thinner_later_answer_keeps_the_clips_already_known(ledger: LedgerStore) -> None:
    local = await ledger.record_intent(api="task", kind="music", request={}, fingerprint=None)
    await ledger.record_submitted(local, _task("t1"))
    await ledger.update(_task("t1", Status.RUNNING, clips=0))
    record = await ledger.get("t1")
    assert record is not None
    assert len(record.clips) == 2


async def test_duplicates_are_found_within_the_window_and_never_among_refused_requests(store: Store) -> None:
    now = [1000.0]
    ledger = await store.open(clock=lambda: now[0])

    async def reserve() -> tuple[str, TaskRecord | None]:
        return await ledger.reserve(api="task", kind="music", request={}, fingerprint="same", window_s=600)

    refused, _ = await reserve()
    await ledger.record_rejected(refused, "429")
    kept, none = await reserve()
    assert kept
    assert none is None
    await ledger.record_submitted(kept, _task("t1"))
    again, found = await reserve()
    assert again == ""
    assert found is not None
    assert found.task_id == "t1"
    now[0] += 601
    later, none = await reserve()
    assert later
    assert none is None
    await ledger.close()


async def test_files_are_remembered_with_their_clip(ledger: LedgerStore) -> None:
    local = await ledger.record_intent(api="task", kind="music", request={}, fingerprint=None)
    await ledger.record_submitted(local, _task("t1", Status.COMPLETE))
    saved = SavedFile(
        clip_id="t1-c0", task_id="t1", path="/x/a.wav", url="http://u/a.wav", bytes=10, mime_type="audio/wav"
    )
    await ledger.record_file(saved)
    await ledger.record_file(saved.model_copy(update={"path": "/x/b.wav"}))
    record = await ledger.get("t1")
    assert record is not None
    assert [f.path for f in record.files] == ["/x/b.wav"]


async def test_the_schema_is_versioned_and_a_newer_one_is_refused_with_advice(store: Store) -> None:
    await (await store.open()).close()
    assert store.schema_version() == store.migrations
    store.pretend_a_newer_schema()
    with pytest.raises(RuntimeError, match="upgrade suno-mcp"):
        await store.open()


async def test_reopening_the_ledger_keeps_its_rows_and_runs_no_migration_twice(store: Store) -> None:
    first = await store.open()
    local = await first.record_intent(api="task", kind="music", request={}, fingerprint=None)
    await first.close()
    second = await store.open()
    assert await second.get(local) is not None
    await second.close()
    assert store.schema_version() == store.migrations


async def test_milestones_are_kept_once_and_read_back_oldest_first(ledger: LedgerStore) -> None:
    local = await ledger.record_intent(api="task", kind="music", request={"mv": "chirp-v4"}, fingerprint=None)
    await ledger.record_submitted(local, _task("t1"))
    await ledger.record_milestone("t1", "playable", 20.0)
    await ledger.record_milestone("t1", "playable", 99.0)  # only the first sighting counts
    await ledger.record_milestone("t1", "complete", 80.0)
    assert await ledger.milestones() == [("task", "music", "chirp-v4", 20.0, 80.0)]


async def test_adopting_a_task_made_elsewhere_keeps_one_row_however_many_ask(store: Store) -> None:
    ledgers = [await store.open() for _ in range(3)]
    adopted: list[TaskRecord] = []

    async def adopt(ledger: LedgerStore) -> None:
        adopted.append(await ledger.adopt("task", _task("elsewhere")))

    async with anyio.create_task_group() as tg:
        for ledger in ledgers * 2:
            tg.start_soon(adopt, ledger)
    assert len({record.local_id for record in adopted}) == 1
    assert len(await ledgers[0].recent(limit=100)) == 1
    for ledger in ledgers:
        await ledger.close()


async def test_a_ping_answers_while_the_ledger_is_open_and_writes_nothing(ledger: LedgerStore) -> None:
    await ledger.ping()
    await ledger.ping()
    assert await ledger.recent() == []


async def test_the_sqlite_ledger_uses_write_ahead_logging(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    await (await SqliteLedger.open(path)).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_two_ledgers_on_one_store_write_at_once_without_losing_a_row(store: Store) -> None:
    first, second = await store.open(), await store.open()
    per_writer = 100

    async def write(ledger: LedgerStore, name: str) -> None:
        for i in range(per_writer):
            local = await ledger.record_intent(api="task", kind="music", request={"i": i}, fingerprint=None)
            await ledger.record_submitted(local, _task(f"{name}-{i}", clips=1))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(write, first, "a")
            tg.start_soon(write, second, "b")
    assert len(await first.recent(limit=10_000)) == 2 * per_writer
    assert await second.get(f"a-{per_writer - 1}") is not None
    assert await first.get(f"b-{per_writer - 1}") is not None
    await first.close()
    await second.close()


async def test_an_answer_that_leaves_a_clip_out_keeps_that_clip_in_the_ledger(ledger: LedgerStore) -> None:
    local = await ledger.record_intent(api="clip", kind="music", request={}, fingerprint=None)
    await ledger.record_submitted(local, _task("t1"))
    await ledger.update(
        Task(
            task_id="t1", api="clip", status=Status.COMPLETE, clips=[Clip(id="t1-c0", status=Status.COMPLETE)]
        )
    )
    record = await ledger.get("t1")
    assert record is not None
    assert record.clip_ids == ("t1-c0", "t1-c1")
    assert record.clips[0].status is Status.COMPLETE
    assert await ledger.find_by_clip("t1-c1") is not None


async def test_a_reservation_finds_a_live_duplicate_or_writes_the_intent_and_never_mixes_sandbox_and_real(
    ledger: LedgerStore,
) -> None:
    first, none = await ledger.reserve(api="task", kind="music", request={}, fingerprint="fp", window_s=600)
    assert first
    assert none is None
    again, found = await ledger.reserve(api="task", kind="music", request={}, fingerprint="fp", window_s=600)
    assert again == ""
    assert found is not None
    assert found.local_id == first
    real, other = await ledger.reserve(
        api="task", kind="music", request={}, fingerprint="fp", window_s=600, sandbox=True
    )
    assert real
    assert other is None


async def test_several_writers_reserving_the_same_request_at_once_write_one_intent_per_tenant(
    store: Store,
) -> None:
    # Four connections (processes on one SQLite file, or replicas on one PostgreSQL database), each
    # reserving the same requests for two tenants at the same moment; many rounds, so an unguarded
    # check-then-insert would be caught between its check and its insert at least once.
    ledgers = [await store.open() for _ in range(4)]
    rounds = 25
    winners: dict[tuple[str, str], int] = {}

    async def reserve(ledger: LedgerStore, tenant: str, fingerprint: str, start: anyio.Event) -> None:
        await start.wait()
        local_id, _ = await ledger.reserve(
            api="task", kind="music", request={}, fingerprint=fingerprint, window_s=600, tenant=tenant
        )
        if local_id:
            winners[tenant, fingerprint] = winners.get((tenant, fingerprint), 0) + 1

    with anyio.fail_after(60):
        for n in range(rounds):
            start = anyio.Event()
            async with anyio.create_task_group() as tg:
                for ledger in ledgers:
                    for tenant in (A, B):
                        tg.start_soon(reserve, ledger, tenant, f"same-{n}", start)
                await anyio.wait_all_tasks_blocked()
                start.set()
    assert winners == {(tenant, f"same-{n}"): 1 for n in range(rounds) for tenant in (A, B)}
    for tenant in (A, B):
        assert len(await ledgers[0].recent(limit=1000, tenant=tenant)) == rounds
    assert await ledgers[0].recent(limit=1000) == []
    for ledger in ledgers:
        await ledger.close()


async def test_the_submits_answer_as_received_stays_with_its_row(ledger: LedgerStore) -> None:
    kept = await ledger.record_intent(api="task", kind="music", request={"prompt": "x"}, fingerprint="a")
    await ledger.record_submitted(
        kept, _task("t1").model_copy(update={"raw_answer": '{"data": {"task_id": "t1"}}'})
    )
    unread = await ledger.record_intent(api="task", kind="music", request={"prompt": "y"}, fingerprint="b")
    await ledger.record_unknown(unread, "unreadable", "<html>bad gateway</html>")
    accepted = await ledger.get("t1")
    unknown = await ledger.get(unread)
    assert accepted is not None
    assert accepted.raw_answer == '{"data": {"task_id": "t1"}}'
    assert unknown is not None
    assert unknown.raw_answer == "<html>bad gateway</html>"


async def test_a_budget_lets_exactly_its_limit_through_per_tenant_however_many_ledgers_reserve_at_once(
    store: Store,
) -> None:
    ledgers = [await store.open() for _ in range(3)]
    budget = parse_budget("5/day")
    outcomes: list[tuple[str, str]] = []

    async def reserve(ledger: LedgerStore, tenant: str, n: int) -> None:
        try:
            await ledger.reserve(
                api="task",
                kind="music",
                request={"n": n},
                fingerprint=f"f{n}",
                window_s=600,
                budget=budget,
                tenant=tenant,
            )
            outcomes.append((tenant, "sent"))
        except OverBudget:
            outcomes.append((tenant, "refused"))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for n in range(20):
                for tenant in ("", B):
                    tg.start_soon(reserve, ledgers[n % len(ledgers)], tenant, n)
    for tenant in ("", B):
        assert outcomes.count((tenant, "sent")) == 5
        assert await ledgers[0].used(budget, tenant=tenant) == 5
        usage = await ledgers[1].usage(time.time() - 60, tenant=tenant)
        assert [(u.kind, u.requests, u.maybe_charged) for u in usage] == [("music", 5, 5)]
    for ledger in ledgers:
        await ledger.close()


async def test_a_request_refused_before_anything_was_made_costs_nothing_of_the_budget(
    ledger: LedgerStore,
) -> None:
    budget = parse_budget("1/day")
    local, _ = await ledger.reserve(
        api="task", kind="music", request={"n": 1}, fingerprint="a", window_s=600, budget=budget
    )
    await ledger.record_rejected(local, "400 invalid prompt")
    assert await ledger.used(budget) == 0
    again, _ = await ledger.reserve(
        api="task", kind="music", request={"n": 2}, fingerprint="b", window_s=600, budget=budget
    )
    assert again
    with pytest.raises(OverBudget):
        await ledger.reserve(
            api="task", kind="music", request={"n": 3}, fingerprint="c", window_s=600, budget=budget
        )


async def test_one_tenants_rows_are_invisible_to_every_other_tenant(ledger: LedgerStore) -> None:
    budget = parse_budget("10/day")
    local = await ledger.record_intent(
        api="task", kind="music", request={"mv": "m"}, fingerprint="fp", tenant=A
    )
    await ledger.record_submitted(local, _task("t1", Status.COMPLETE))
    mine = await ledger.get("t1", tenant=A)
    assert mine is not None
    assert mine.local_id == local
    for found in (
        await ledger.get(local, tenant=A),
        await ledger.find("t1-c0", tenant=A),
        await ledger.find_by_clip("t1-c1", tenant=A),
        await ledger.find_duplicate("fp", 600, tenant=A),
    ):
        assert found is not None
        assert found.local_id == local
    assert [r.local_id for r in await ledger.recent(tenant=A)] == [local]
    assert await ledger.used(budget, tenant=A) == 1
    assert [(u.requests, u.clips) for u in await ledger.usage(0, tenant=A)] == [(1, 2)]
    for other in (B, ""):
        assert await ledger.get("t1", tenant=other) is None
        assert await ledger.get(local, tenant=other) is None
        assert await ledger.find("t1", tenant=other) is None
        assert await ledger.find("t1-c0", tenant=other) is None
        assert await ledger.find_by_clip("t1-c0", tenant=other) is None
        assert await ledger.find_duplicate("fp", 600, tenant=other) is None
        assert await ledger.recent(tenant=other) == []
        assert await ledger.recent(statuses=[Status.COMPLETE], tenant=other) == []
        assert await ledger.usage(0, tenant=other) == []
        assert await ledger.used(budget, tenant=other) == 0


async def test_task_ids_by_prefix_are_the_tenants_own_newest_first_matched_exactly_and_counted(
    store: Store,
) -> None:
    now = [1000.0]
    ledger = await store.open(clock=lambda: now[0])
    for task_id, tenant in (("ab_1", A), ("ab%2", A), ("AB-3", A), ("ab-4", B), ("ab-5", A)):
        now[0] += 1
        local = await ledger.record_intent(
            api="task", kind="music", request={}, fingerprint=None, tenant=tenant
        )
        await ledger.record_submitted(local, _task(task_id))
    await ledger.record_intent(api="task", kind="music", request={}, fingerprint=None, tenant=A)  # no id yet

    assert await ledger.task_ids("ab", tenant=A) == (["ab-5", "ab%2", "ab_1"], 3)
    assert await ledger.task_ids("", limit=2, tenant=A) == (["ab-5", "AB-3"], 4)
    # '%' and '_' are characters of the prefix, not wildcards; case counts.
    assert await ledger.task_ids("ab%", tenant=A) == (["ab%2"], 1)
    assert await ledger.task_ids("ab_", tenant=A) == (["ab_1"], 1)
    assert await ledger.task_ids("Ab", tenant=A) == ([], 0)
    # Another tenant's ids are not there, whatever the prefix.
    assert await ledger.task_ids("ab-4", tenant=A) == ([], 0)
    assert await ledger.task_ids("ab", tenant=B) == (["ab-4"], 1)
    assert await ledger.task_ids("", tenant="") == ([], 0)
    await ledger.close()


async def test_another_tenants_identical_request_is_no_duplicate_and_not_charged_to_their_budget(
    ledger: LedgerStore,
) -> None:
    budget = parse_budget("1/day")

    async def reserve(tenant: str, fingerprint: str = "same") -> tuple[str, TaskRecord | None]:
        return await ledger.reserve(
            api="task",
            kind="music",
            request={},
            fingerprint=fingerprint,
            window_s=600,
            budget=budget,
            tenant=tenant,
        )

    first, none = await reserve(A)
    assert first
    assert none is None
    again, duplicate = await reserve(A)
    assert again == ""
    assert duplicate is not None
    assert duplicate.local_id == first
    theirs, none = await reserve(B)  # within the window, and A's request used A's whole budget
    assert theirs
    assert theirs != first
    assert none is None
    for tenant in (A, B):
        with pytest.raises(OverBudget):
            await reserve(tenant, "another")
        assert await ledger.used(budget, tenant=tenant) == 1


async def test_one_upstream_task_adopted_by_two_tenants_is_two_rows_written_apart(
    ledger: LedgerStore,
) -> None:
    mine = await ledger.adopt("task", _task("up-1"), tenant=A)
    theirs = await ledger.adopt("task", _task("up-1"), tenant=B)
    assert mine.local_id != theirs.local_id
    assert (await ledger.adopt("task", _task("up-1"), tenant=A)).local_id == mine.local_id
    done = _task("up-1", Status.COMPLETE)
    await ledger.update(done, tenant=A)
    still = await ledger.get("up-1", tenant=B)
    assert still is not None
    assert still.status is Status.RUNNING
    await ledger.update(done, tenant=B)  # the very answer just written for A: written for B too
    now_done = await ledger.get("up-1", tenant=B)
    assert now_done is not None
    assert now_done.status is Status.COMPLETE
    await ledger.record_milestone("up-1", "complete", 80.0, tenant=A)
    assert await ledger.milestones() == [("task", "music", None, None, 80.0)]
    saved = SavedFile(
        clip_id="up-1-c0",
        task_id="up-1",
        path="/a/x.mp3",
        url="http://u/x.mp3",
        bytes=3,
        mime_type="audio/mpeg",
    )
    await ledger.record_file(saved, tenant=A)
    await ledger.record_file(saved.model_copy(update={"path": "/b/x.mp3"}), tenant=B)
    for tenant, path in ((A, "/a/x.mp3"), (B, "/b/x.mp3")):
        record = await ledger.get("up-1", tenant=tenant)
        assert record is not None
        assert [f.path for f in record.files] == [path]
        assert len(await ledger.recent(tenant=tenant)) == 1


async def test_rows_written_before_tenants_existed_stay_with_the_server_key_after_the_migration(
    store: Store,
) -> None:
    store.write_before_tenants()
    ledger = await store.open()
    try:
        assert store.schema_version() == store.migrations
        assert [r.task_id for r in await ledger.recent()] == ["old-2", "old-1"]
        old = await ledger.get("old-1")
        assert old is not None
        assert old.local_id == "local-old-1"
        assert old.clip_ids == ("old-1-c0",)
        assert [f.path for f in old.files] == ["/a/old.mp3"]
        assert [(u.model, u.requests) for u in await ledger.usage(0)] == [("m", 2)]
        assert await ledger.find_by_clip("old-1-c0", tenant=B) is None
        theirs = await ledger.adopt("task", _task("old-1"), tenant=B)  # task ids are unique per tenant now
        assert theirs.local_id != old.local_id
        assert theirs.files == []
    finally:
        await ledger.close()


# Every way a row comes to be, as the service makes it: the paid rule must tell them apart alike
# in SQL (on each database) and in Python.
ROW_KINDS = ("intent", "outcome unknown", "refused", "accepted", "failed upstream", "adopted")
PAID_KINDS = {"intent", "outcome unknown", "accepted", "failed upstream"}


async def _write_row(ledger: LedgerStore, kind: str, name: str, *, sandbox: bool, tenant: str) -> None:
    if kind == "adopted":
        await ledger.adopt("task", _task(name), sandbox=sandbox, tenant=tenant)
        return
    local = await ledger.record_intent(
        api="task", kind="music", request={"mv": name}, fingerprint=name, sandbox=sandbox, tenant=tenant
    )
    if kind == "outcome unknown":
        await ledger.record_unknown(local, "timed out")
    elif kind == "refused":
        await ledger.record_rejected(local, "400 invalid prompt")
    elif kind in ("accepted", "failed upstream"):
        await ledger.record_submitted(local, _task(name))
    if kind == "failed upstream":
        await ledger.update(_task(name, Status.FAILED), tenant=tenant)


async def test_the_paid_rule_in_sql_and_in_python_agree_on_every_kind_of_row(store: Store) -> None:
    now = [0.0]
    ledger = await store.open(clock=lambda: now[0])
    since = 200.0  # one row of each sort before the window, one at its very start, one inside
    rows: dict[str, tuple[str, float, bool, str]] = {}
    for tenant in (A, B):
        for sandbox in (False, True):
            for made in (100.0, since, 300.0):
                for kind in ROW_KINDS:
                    name = f"r{len(rows)}"
                    rows[name] = (kind, made, sandbox, tenant)
                    now[0] = made
                    await _write_row(ledger, kind, name, sandbox=sandbox, tenant=tenant)
    now[0] = 400.0
    budget = Budget(limit=1000, window_s=now[0] - since, text="1000/200s")
    records = {tenant: await ledger.recent(limit=1000, tenant=tenant) for tenant in (A, B)}
    assert sum(len(r) for r in records.values()) == len(rows)
    for tenant in (A, B):
        for sandbox in (False, True):
            window = PaidWindow(since=since, sandbox=sandbox, tenant=tenant)
            in_python = sorted(
                # Each row's name is its model, or for an adopted row (which has none) its task id.
                str(record.request.get("mv", record.task_id))
                for owner, theirs in records.items()
                for record in theirs
                if window.covers(record, tenant=owner)
            )
            usage = await ledger.usage(since, sandbox=sandbox, tenant=tenant)
            assert all(line.requests == 1 for line in usage)  # one row per model: the names say which
            in_sql = sorted(str(line.model) for line in usage)
            assert in_sql == in_python
            assert in_sql == sorted(
                name
                for name, (kind, made, in_sandbox, owner) in rows.items()
                if kind in PAID_KINDS and made >= since and in_sandbox == sandbox and owner == tenant
            )
            assert await ledger.used(budget, sandbox=sandbox, tenant=tenant) == len(in_sql)
    await ledger.close()


async def test_a_cost_budget_lets_through_requests_whose_prices_add_up_to_exactly_its_limit(
    ledger: LedgerStore,
) -> None:
    budget = parse_budget("cost:0.30/day")  # three at 0.10: 0.1 + 0.1 + 0.1 is 0.30000000000000004
    prices = {"music": 0.10}

    async def reserve(n: int, allow_over: int = 0) -> str:
        local, _ = await ledger.reserve(
            api="task",
            kind="music",
            request={"n": n},
            fingerprint=f"f{n}",
            window_s=600,
            budget=budget,
            prices=prices,
            allow_over=allow_over,
        )
        return local

    for n in range(3):
        assert await reserve(n)
    with pytest.raises(OverBudget):
        await reserve(3)
    assert await reserve(3, allow_over=1)  # one the person accepted going over
    assert await ledger.used(budget, prices) == pytest.approx(0.40)


async def _accepted_submit(ledger: LedgerStore) -> AcceptedSubmit:
    """Tenant A's intent row for task t1, and the vendor's accepted answer as the journal keeps it."""
    local, _ = await ledger.reserve(
        api="task", kind="music", request={"prompt": "x"}, fingerprint="f", window_s=0, tenant=A
    )
    return AcceptedSubmit(
        local_id=local,
        tenant=A,
        api="task",
        accepted_at=time.time(),
        task=_task("t1", Status.PENDING),
        raw_answer='{"data": "t1"}',
    )


async def test_a_journaled_task_offered_again_stays_one_row_counted_once_with_its_newer_state(
    ledger: LedgerStore, tmp_path: Path
) -> None:
    accepted = await _accepted_submit(ledger)
    local = accepted.local_id
    journal = await Journal.open(tmp_path / "journal")
    await journal.append(accepted)
    first = await journal.replay(ledger)
    await ledger.update(_task("t1", Status.COMPLETE), tenant=A)
    # As after a crash between the ledger's write and the journal's emptying: offered once more.
    await journal.append(accepted)
    second = await journal.replay(ledger)
    await journal.close()
    rows = await ledger.recent(tenant=A)
    assert [e.local_id for e in first] == [local]
    assert second == []
    assert [(r.local_id, r.task_id, r.status) for r in rows] == [(local, "t1", Status.COMPLETE)]
    assert rows[0].raw_answer == '{"data": "t1"}'
    assert await ledger.used(parse_budget("5/day"), tenant=A) == 1
    assert await ledger.recent(tenant=B) == []


async def test_a_journaled_task_another_replica_adopted_meanwhile_is_written_into_its_own_row(
    ledger: LedgerStore, tmp_path: Path
) -> None:
    # Replica 1's submit was accepted while the database was down: its journal holds the task. The
    # database returns, and before replica 1's replay, replica 2 is asked for the task id, finds it in
    # no row and adopts it from the vendor (with a newer state). The replay must still bring the id
    # into the submit's own row: one row, counted as paid once, with the newer state.
    accepted = await _accepted_submit(ledger)
    local = accepted.local_id
    journal = await Journal.open(tmp_path / "journal")
    await journal.append(accepted)
    adopted = await ledger.adopt("task", _task("t1", Status.COMPLETE), tenant=A)
    with anyio.fail_after(10):
        recorded = await journal.replay(ledger)
    await journal.close()
    rows = await ledger.recent(tenant=A)
    found = await ledger.get("t1", tenant=A)
    assert adopted.local_id != local
    assert [e.local_id for e in recorded] == [local]
    assert journal.pending == 0
    assert [(r.local_id, r.task_id, r.status) for r in rows] == [(local, "t1", Status.COMPLETE)]
    assert rows[0].request == {"prompt": "x"}
    assert found is not None
    assert found.local_id == local
    assert await ledger.get(adopted.local_id, tenant=A) is None
    assert await ledger.used(parse_budget("5/day"), tenant=A) == 1


def test_the_clip_merge_keeps_a_clip_an_answer_left_out_and_adds_the_new_ones() -> None:
    known = [
        Clip(id="c0", status=Status.RUNNING, title="first").model_dump(mode="json"),
        Clip(id="c1", status=Status.RUNNING).model_dump(mode="json"),
    ]
    answer = [Clip(id="c1", status=Status.COMPLETE), Clip(id="c2", status=Status.RUNNING)]
    merged = [Clip.model_validate(c) for c in merge_clips(known, answer)]
    assert [(c.id, c.status) for c in merged] == [
        ("c0", Status.RUNNING),
        ("c1", Status.COMPLETE),
        ("c2", Status.RUNNING),
    ]
    assert merged[0].title == "first"
    assert merge_clips(known, []) == known  # an answer with no clips yet erases nothing
