"""A paid task is never lost: when the upstream accepted a submit and the ledger cannot record it, the
caller still gets the task id (marked not yet recorded), the accepted answer waits in a local journal,
and it reaches the ledger once, as soon as the ledger answers again (this process, or the next one
started on the same data directory). get_task_status follows it meanwhile."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp_types as types
from mcp import Client

from suno_mcp.domain.errors import LedgerUnavailableError
from suno_mcp.domain.models import AcceptedSubmit, Status, Task
from suno_mcp.engine.poller import Timing
from suno_mcp.server.app import build_server
from suno_mcp.service.journal import Journal
from suno_mcp.service.unrecorded import Backoff
from suno_mcp.service.wiring import open_service
from suno_mcp.settings import Settings
from suno_mcp.store.base import LedgerStore
from suno_mcp.store.sqlite import SqliteLedger
from tests.support.helpers_upstream import FAST_RETRY, KEY, SUBMIT_PATHS, FakeUpstream, make_settings

LIMIT_S = 10.0
# The replay loop's retries: quick, so the ledger's return is noticed at once.
QUICK = Backoff(first_s=0.01, cap_s=0.05)


class FlakyLedger:
    """A real ledger that stops answering on demand, as a database that was stopped does: while
    ``down``, every call (or only those named in ``failing``) raises LedgerUnavailableError and
    changes nothing. ``accepted_recorded`` is set when a task id is recorded."""

    def __init__(self, inner: LedgerStore, failing: frozenset[str] | None = None) -> None:
        self.inner = inner
        self.down = False
        self.failing = failing
        self.accepted_recorded = anyio.Event()

    @property
    def path(self) -> Path | None:
        return self.inner.path

    async def close(self) -> None:
        await self.inner.close()

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self.inner, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down and (self.failing is None or name in self.failing):
                raise LedgerUnavailableError("the ledger did not answer (test)")
            result = await method(*args, **kwargs)
            if name == "record_submitted":
                self.accepted_recorded.set()
            return result

        return call


def down_after_submit(fake: FakeUpstream, ledger: FlakyLedger) -> Callable[[httpx.Request], httpx.Response]:
    """The vendor, with the ledger going down while each submit is on its way (after its intent row)."""

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path in SUBMIT_PATHS:
            ledger.down = True
        return fake(request)

    return vendor


def journal_entries(settings: Settings) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(settings.journal_dir.glob("*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def text_of(result: types.CallToolResult) -> str:
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    return first.text


async def test_an_accepted_submit_the_ledger_cannot_record_gives_its_id_and_is_recorded_once_it_answers(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    fake = FakeUpstream()
    ledger = FlakyLedger(await SqliteLedger.open(settings.ledger_path))
    server = build_server(
        settings,
        lambda s: open_service(
            s,
            transport=httpx.MockTransport(down_after_submit(fake, ledger)),
            timing=Timing().scaled(1000),
            retry=FAST_RETRY,
            ledger=ledger,
            journal_retry=QUICK,
        ),
    )
    async with Client(server) as client:
        with anyio.fail_after(LIMIT_S):
            made = await client.call_tool("generate_music", {"description": "rain", "wait_seconds": 0})
            assert not made.is_error, text_of(made)
            made_result = made.structured_content
            assert made_result is not None
            task_id = made_result["task_id"]
            journaled = journal_entries(settings)
            # Meanwhile the task is followed upstream all the same, and said to be not yet recorded.
            meanwhile = await client.call_tool("get_task_status", {"task_id": task_id, "wait_seconds": 1})
            assert not meanwhile.is_error, text_of(meanwhile)
            ledger.down = False
            await ledger.accepted_recorded.wait()
            rows = await ledger.recent(limit=10)
            later = await client.call_tool("get_task_status", {"task_id": task_id, "wait_seconds": 5})
            while later.structured_content and later.structured_content["status"] != "complete":
                later = await client.call_tool("get_task_status", {"task_id": task_id, "wait_seconds": 5})
            listed = await client.call_tool("list_tasks", {})

    assert task_id == "task-1"
    assert made_result["recorded"] is False
    assert "not yet in the task ledger" in text_of(made)
    assert f"get_task_status(task_id='{task_id}'" in made_result["next_step"]
    assert [(e["task"]["task_id"], e["tenant"], e["local_id"]) for e in journaled] == [
        (task_id, "", rows[0].local_id)
    ]
    assert KEY not in json.dumps(journaled)
    assert meanwhile.structured_content is not None
    assert meanwhile.structured_content["task_id"] == task_id
    assert meanwhile.structured_content["recorded"] is False
    assert meanwhile.structured_content["status"] != "unknown"
    # In the ledger once: the intent row now holds the task id; no second row.
    assert [(r.task_id, r.status is not Status.UNKNOWN) for r in rows] == [(task_id, True)]
    assert later.structured_content is not None
    assert later.structured_content["recorded"] is True
    assert later.structured_content["status"] == "complete"
    assert listed.structured_content is not None
    assert [t["task_id"] for t in listed.structured_content["tasks"]] == [task_id]
    assert fake.submits == 1
    assert journal_entries(settings) == []  # emptied once the ledger had it


async def test_a_journal_left_by_a_stopped_process_is_written_to_the_ledger_by_the_next_one(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    fake = FakeUpstream()
    ledger = FlakyLedger(await SqliteLedger.open(settings.ledger_path))
    async with open_service(
        settings,
        transport=httpx.MockTransport(down_after_submit(fake, ledger)),
        timing=Timing().scaled(1000),
        retry=FAST_RETRY,
        ledger=ledger,
        journal_retry=QUICK,
    ) as first:
        request = first.generate_request(
            description="a song the ledger missed",
            lyrics=None,
            tags=None,
            title=None,
            instrumental=False,
            model=None,
        )
        accepted = await first.submit_music(request)
    # The process stopped with the ledger still down: the journal holds the task.
    left = journal_entries(settings)

    async with open_service(
        settings, transport=httpx.MockTransport(fake), timing=Timing().scaled(1000), retry=FAST_RETRY
    ) as second:
        # Replayed while opening: in the ledger before the first call.
        record = await second.ledger.get(accepted.record.task_id or "")
        with anyio.fail_after(LIMIT_S):
            followed = await second.status(accepted.record.task_id or "", wait_s=5)
            while followed.record.status is not Status.COMPLETE:
                followed = await second.status(accepted.record.task_id or "", wait_s=5)
        rows = await second.ledger.recent()
        used = await second.ledger.usage(0.0)

    assert accepted.recorded is False
    assert [e["task"]["task_id"] for e in left] == [accepted.record.task_id]
    assert record is not None
    assert record.local_id == accepted.record.local_id
    assert followed.recorded is True
    assert [r.task_id for r in rows] == [accepted.record.task_id]
    assert [line.requests for line in used] == [1]
    assert journal_entries(settings) == []
    assert list(settings.journal_dir.iterdir()) == []  # both processes' files are gone
    assert fake.submits == 1


async def test_a_journal_file_of_a_running_process_is_not_taken_by_another(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    running = await Journal.open(directory)
    entry = AcceptedSubmit(
        local_id="local-1",
        tenant="",
        api="task",
        accepted_at=1.0,
        task=Task(task_id="t-1", api="task", status=Status.PENDING),
    )
    await running.append(entry)
    other = await Journal.open(directory)
    try:
        assert other.pending == 0
        assert other.find("t-1", tenant="") is None
        assert running.find("t-1", tenant="") == entry
        assert running.find("t-1", tenant="someone else") is None
    finally:
        await other.close()
    await running.close()  # stopped with its entry waiting: the next journal opened there takes it
    after = await Journal.open(directory)
    try:
        assert after.find("local-1", tenant="") == entry
    finally:
        await after.close()


async def test_the_same_request_again_while_its_task_waits_for_the_ledger_is_that_task_not_a_new_charge(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    fake = FakeUpstream()
    # The ledger answers everything but the write of a task id, so the replay never gets it in here.
    ledger = FlakyLedger(
        await SqliteLedger.open(settings.ledger_path), failing=frozenset({"record_submitted"})
    )
    server = build_server(
        settings,
        lambda s: open_service(
            s,
            transport=httpx.MockTransport(down_after_submit(fake, ledger)),
            timing=Timing().scaled(1000),
            retry=FAST_RETRY,
            ledger=ledger,
            journal_retry=Backoff(first_s=3600, cap_s=3600),
        ),
    )
    song = {"description": "rain", "wait_seconds": 0}
    async with Client(server) as client:
        with anyio.fail_after(LIMIT_S):
            first = await client.call_tool("generate_music", song)
            again = await client.call_tool("generate_music", song)
            listed = await client.call_tool("list_tasks", {})
    assert first.structured_content is not None
    assert again.structured_content is not None
    assert listed.structured_content is not None
    assert again.structured_content["deduplicated"] is True
    assert again.structured_content["recorded"] is False
    assert again.structured_content["task_id"] == first.structured_content["task_id"]
    # Listed with its task id and state, not as a submit whose outcome is unknown.
    assert [(t["task_id"], t["status"]) for t in listed.structured_content["tasks"]] == [
        (first.structured_content["task_id"], first.structured_content["status"])
    ]
    assert first.structured_content["status"] != "unknown"
    assert fake.submits == 1
