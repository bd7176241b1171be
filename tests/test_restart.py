"""A server killed with SIGKILL right after a submit, restarted on the same data dir: the task
is still in the ledger and status reads follow it to complete. The sandbox is a process of its
own, as the real upstream would be; our server speaks stdio."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.support.processes import log_file, sandbox_process
from tests.support.stdio_session import StdioSession, server_env

pytestmark = pytest.mark.slow

SPEED = 20.0  # steady profile: preview after ~1.5 s, final after ~6 s of real time
MODEL_S_BEFORE_KILL = 2.0  # the submit happened this long (model time) before the kill
BOUND_S = 60.0


async def call(session: StdioSession, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await anyio.to_thread.run_sync(session.call_tool, tool, arguments)
    assert not result.get("isError"), result
    content: dict[str, Any] = result["structuredContent"]
    return content


async def test_a_task_submitted_just_before_a_sigkill_reaches_complete_after_a_restart(
    tmp_path: Path,
) -> None:
    with (
        log_file(tmp_path, "sandbox.log") as sandbox_log,
        sandbox_process("--speed", str(SPEED), env=server_env(tmp_path), log=sandbox_log) as (url, _),
    ):
        env = server_env(tmp_path / "data", GPTPROTO_API_KEY="any", GPTPROTO_BASE_URL=url)

        first = StdioSession([], env)
        try:
            await anyio.to_thread.run_sync(first.initialize)
            submitted = await call(
                first, "generate_music", {"description": "a song to survive a crash", "wait_seconds": 0}
            )
            task_id = submitted["task_id"]
            assert task_id
            # Not waiting for anything: the kill must land this long after the submit.
            await anyio.sleep(MODEL_S_BEFORE_KILL / SPEED)
            await anyio.to_thread.run_sync(first.kill)
        finally:
            first.close()

        second = StdioSession([], env)
        try:
            await anyio.to_thread.run_sync(second.initialize)
            listed = await call(second, "list_tasks", {})
            assert [t["task_id"] for t in listed["tasks"]] == [task_id]

            status: dict[str, Any] = {}
            reads = 0
            with anyio.fail_after(BOUND_S):
                while status.get("status") != "complete":
                    status = await call(second, "get_task_status", {"task_id": task_id, "wait_seconds": 5})
                    reads += 1
            assert reads <= 10
            assert status["clips"]
            assert all(clip["audio_url"] for clip in status["clips"])
            listed = await call(second, "list_tasks", {"status": "complete"})
            assert [t["task_id"] for t in listed["tasks"]] == [task_id]
        finally:
            second.close()

        async with httpx.AsyncClient(base_url=url) as admin:
            stats = (await admin.get("/_sandbox/stats")).json()
        assert stats["tasks_created"] == 1  # the restart paid for nothing twice
