"""The installed console script over stdio: the protocol, progress, crash safety, hygiene."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from suno_mcp.sandbox.runner import run_sandbox
from suno_mcp.sandbox.state import SandboxConfig
from tests.support.stdio_session import SCRIPT, StdioSession, server_env

# Every test here starts the console script as a subprocess.
pytestmark = pytest.mark.slow

TOOLS = {
    "generate_music",
    "extend_music",
    "get_task_status",
    "list_tasks",
    "generate_lyrics",
    "get_complete_song",
    "download_audio",
    "cover_music",
    "upload_audio",
    "get_usage",
}


async def test_console_script_answers_initialize_and_lists_tools_with_schemas(tmp_path: Path) -> None:
    session = StdioSession([], server_env(tmp_path))
    try:
        init = await anyio.to_thread.run_sync(session.initialize)
        assert init["result"]["serverInfo"]["name"] == "suno-mcp"
        listed = await anyio.to_thread.run_sync(session.request, "tools/list")
        tools = {t["name"]: t for t in listed["result"]["tools"]}
        assert set(tools) == TOOLS
        for tool in tools.values():
            assert tool["title"]
            assert tool["description"]
            assert tool["inputSchema"]["type"] == "object"
            assert "outputSchema" in tool
            # The protocol's default for a missing openWorldHint is true: only the local tools say false.
            open_world = tool["annotations"].get("openWorldHint", True)
            assert open_world is (tool["name"] not in {"list_tasks", "get_usage"})
        generate = tools["generate_music"]["inputSchema"]["properties"]
        assert generate["description"]["maxLength"] == 500
        assert generate["description"]["type"] == ["string", "null"]
        assert tools["get_task_status"]["annotations"]["readOnlyHint"] is True
        # With no key the server still runs, and a call says how to set one.
        result = await anyio.to_thread.run_sync(session.call_tool, "generate_music", {"description": "x y z"})
        assert result["isError"] is True
        assert "GPTPROTO_API_KEY" in result["content"][0]["text"]
    finally:
        session.close()


async def test_a_real_client_over_stdio_receives_increasing_progress_with_messages(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=SCRIPT, args=["serve", "--sandbox", "--sandbox-speed", "20"], env=server_env(tmp_path)
    )
    updates: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, message))

    with anyio.fail_after(60):
        async with Client(params) as client:
            result = await client.call_tool(
                "generate_music",
                {"description": "a slow waltz", "wait_seconds": 30},
                progress_callback=on_progress,
            )
    assert not result.is_error
    assert result.structured_content is not None
    assert result.structured_content["status"] in ("streaming", "complete")
    assert len(updates) >= 2
    values = [p for p, _ in updates]
    assert values == sorted(values)
    assert len(set(values)) == len(values)
    assert all(m and "elapsed" in m for _, m in updates)


async def test_a_server_killed_mid_wait_and_restarted_on_the_same_data_dir_follows_the_task_to_complete(
    tmp_path: Path,
) -> None:
    config = SandboxConfig(speed=20, clip_seconds=5)
    async with run_sandbox(config) as sandbox:
        env = server_env(
            tmp_path,
            GPTPROTO_API_KEY="test-key",
            GPTPROTO_BASE_URL=sandbox.url,
            SUNO_MCP_EXPECTED_PREVIEW_S=str(config.preview_after_s / config.speed),
            SUNO_MCP_EXPECTED_COMPLETE_S=str(config.complete_after_s / config.speed),
        )
        first = StdioSession([], env)
        try:
            await anyio.to_thread.run_sync(first.initialize)
            first.send(
                {
                    "jsonrpc": "2.0",
                    "id": 99,
                    "method": "tools/call",
                    "params": {
                        "name": "generate_music",
                        "arguments": {"description": "a song for a crash test", "wait_seconds": 40},
                        "_meta": {"progressToken": "crash"},
                    },
                }
            )
            # A progress notification proves the call is waiting; then the process dies hard.
            message = await anyio.to_thread.run_sync(first.next_message)
            assert message.get("method") == "notifications/progress", message
            await anyio.to_thread.run_sync(first.kill)
        finally:
            first.close()
        assert sandbox.state.stats.tasks_created == 1

        second = StdioSession([], env)
        try:
            await anyio.to_thread.run_sync(second.initialize)
            listed = await anyio.to_thread.run_sync(second.call_tool, "list_tasks", {})
            tasks = listed["structuredContent"]["tasks"]
            assert len(tasks) == 1
            task_id = tasks[0]["task_id"]
            assert task_id

            status: dict[str, Any] = {}
            with anyio.fail_after(60):
                while status.get("status") != "complete":
                    result = await anyio.to_thread.run_sync(
                        second.call_tool, "get_task_status", {"task_id": task_id, "wait_seconds": 10}
                    )
                    assert not result.get("isError"), result
                    status = result["structuredContent"]
            assert all(c["audio_url"] for c in status["clips"])
            listed = await anyio.to_thread.run_sync(second.call_tool, "list_tasks", {"status": "complete"})
            assert [t["task_id"] for t in listed["structuredContent"]["tasks"]] == [task_id]
        finally:
            second.close()
        # Nothing was paid twice.
        assert sandbox.state.stats.tasks_created == 1


async def test_every_stdout_line_is_a_json_rpc_message_even_at_debug_level(tmp_path: Path) -> None:
    env = server_env(tmp_path, SUNO_MCP_LOG_LEVEL="DEBUG")
    session = StdioSession(["serve", "--sandbox", "--sandbox-speed", "50"], env)
    try:
        await anyio.to_thread.run_sync(session.initialize)
        await anyio.to_thread.run_sync(session.request, "tools/list")
        await anyio.to_thread.run_sync(session.request, "resources/list")
        await anyio.to_thread.run_sync(session.request, "prompts/list")
        done = await anyio.to_thread.run_sync(
            session.call_tool, "generate_music", {"description": "debug noise", "wait_seconds": 10}
        )
        task_id = done["structuredContent"]["task_id"]
        await anyio.to_thread.run_sync(
            session.call_tool, "get_task_status", {"task_id": task_id, "wait_seconds": 5}
        )
        await anyio.to_thread.run_sync(session.call_tool, "get_task_status", {"task_id": "bad/id"})
        await anyio.to_thread.run_sync(session.call_tool, "no_such_tool", {})
    finally:
        session.close()
    assert session.stdout_lines
    for line in session.stdout_lines:
        message = json.loads(line)
        assert message["jsonrpc"] == "2.0"
        assert "id" in message or "method" in message
    assert "DEBUG" in session.stderr_text()  # the logs went somewhere: stderr
