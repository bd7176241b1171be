"""A paid task is never lost, end to end: team mode over real HTTP on a real PostgreSQL ledger, the
database stopped while a paid submit waits for the vendor's (slow) answer, then started again.

This needs the stores to raise LedgerUnavailableError for the driver's errors (branch h-pool): with
this branch alone, the psycopg error escapes the submit and the test fails there.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import psycopg
import pytest
from mcp import Client

from suno_mcp.sandbox.runner import run_sandbox
from suno_mcp.sandbox.state import SandboxConfig
from suno_mcp.server.app import build_server
from suno_mcp.server.http import build_http_app
from suno_mcp.service.backends import upstream_backend
from suno_mcp.settings import load_settings
from tests.support.http_app import bearer_client, serving
from tests.support.postgres import find_binaries, running_postgres, stopped

pytestmark = pytest.mark.slow

# Random per run, so finding one in a file can only mean it leaked.
CALLER = "gp-journal-" + secrets.token_hex(12)
TENANT_SECRET = "tenant-secret-" + secrets.token_hex(12)
CALL_LIMIT_S = 30.0
RECORDED_WITHIN_S = 30.0  # the bound, from the database's return to the task in the ledger
# The vendor holds the submit's answer this long (real seconds); the database is stopped well inside it.
SLOW_ANSWER_S = 3.0


def _tasks(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as db:
        return db.execute("SELECT tenant, task_id, status FROM tasks ORDER BY created_at").fetchall()


def _journal(directory: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]


async def _text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def test_a_submit_accepted_while_the_database_is_down_reaches_the_ledger_once_it_is_back(
    tmp_path: Path,
) -> None:
    binaries = find_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found")
    with running_postgres(binaries) as postgres:
        url = postgres.url_for("postgres")
        config = SandboxConfig(speed=100, slow_delay_s=SLOW_ANSWER_S)
        async with run_sandbox(config) as upstream:
            settings = load_settings(
                environ={},
                data_dir=tmp_path / "data",
                keys="per-request",
                tenant_secret=TENANT_SECRET,
                base_url=upstream.url,
                database_url=url,
                max_requests_per_second=1000.0,
                expected_preview_s=config.preview_after_s / config.speed,
                expected_complete_s=config.complete_after_s / config.speed,
            )
            server = build_server(settings, upstream_backend)
            async with (
                serving(build_http_app(server, settings, "127.0.0.1")) as base,
                bearer_client(base, CALLER) as client,
            ):
                with anyio.fail_after(CALL_LIMIT_S):
                    opened = await client.call_tool("list_tasks", {})  # the service is open
                    assert not opened.is_error, await _text(opened)
                made, journaled = await _submit_with_the_database_stopped_meanwhile(
                    client, upstream.state, postgres, settings.journal_dir
                )
                # The database is back: the task reaches the ledger without anyone asking.
                with anyio.fail_after(RECORDED_WITHIN_S):
                    # Another program's database: nothing to wait on but its answer to a question.
                    while not any(row[1] for row in await anyio.to_thread.run_sync(_tasks, url)):  # noqa: ASYNC110
                        await anyio.sleep(0.2)
                rows = await anyio.to_thread.run_sync(_tasks, url)
                task_id = made["task_id"]
                with anyio.fail_after(CALL_LIMIT_S):
                    status: dict[str, Any] = {}
                    while status.get("status") != "complete":
                        read = await client.call_tool(
                            "get_task_status", {"task_id": task_id, "wait_seconds": 10}
                        )
                        assert not read.is_error, await _text(read)
                        assert read.structured_content is not None
                        status = read.structured_content
            stats = upstream.state.stats

    assert task_id
    assert made["recorded"] is False
    assert f"get_task_status(task_id='{task_id}'" in made["next_step"]
    assert [entry["task"]["task_id"] for entry in journaled] == [task_id]
    assert CALLER not in json.dumps(journaled)
    assert journaled[0]["tenant"]
    assert [(row[0], row[1]) for row in rows] == [(journaled[0]["tenant"], task_id)]
    assert status["recorded"] is True
    assert all(clip["audio_url"] for clip in status["clips"])
    assert stats.tasks_created == 1  # the vendor was paid once
    assert list(stats.submits_by_fingerprint.values()) == [1]


async def _submit_with_the_database_stopped_meanwhile(
    client: Client, sandbox: Any, postgres: Any, journal_dir: Path
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """generate_music whose answer the vendor holds back; the database is stopped once the submit has
    reached the vendor (its intent row is written) and stays down until the tool has answered. Returns
    the structured result and the journal's entries as they were then."""
    sandbox.inject("slow", "submit_music")
    answered = anyio.Event()
    result: dict[str, Any] = {}

    async def submit() -> None:
        made = await client.call_tool(
            "generate_music", {"description": "rain on a tin roof", "wait_seconds": 0}
        )
        assert not made.is_error, await _text(made)
        assert made.structured_content is not None
        result.update(made.structured_content)
        answered.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(submit)
        with anyio.fail_after(CALL_LIMIT_S):
            while sandbox.stats.requests["submit_music"] == 0:  # noqa: ASYNC110 (the sandbox offers no event)
                await anyio.sleep(0.01)
        # Stopping blocks this event loop, the server's and the vendor's: the held answer cannot
        # come back before the database is down.
        with stopped(postgres):
            with anyio.fail_after(CALL_LIMIT_S):
                await answered.wait()
            journaled = await anyio.to_thread.run_sync(_journal, journal_dir)
    return result, journaled
