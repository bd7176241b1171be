"""The API key never appears in output, logs, errors, reprs or files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from suno_mcp.sandbox.runner import run_sandbox
from suno_mcp.sandbox.state import CONTENT_POLICY_TRIGGER, SandboxConfig
from suno_mcp.settings import load_settings
from suno_mcp.upstream.transport import Upstream
from tests.support.stdio_session import StdioSession, server_env

CANARY = "sk-CANARY-7f3a9c-do-not-print"


def _calls(task_id: str | None, clip_id: str | None) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("generate_music", {"description": "a secret-keeping song", "wait_seconds": 20}),
        ("generate_music", {"description": f"uses {CONTENT_POLICY_TRIGGER}"}),
        ("generate_music", {"description": "x", "lyrics": "y"}),
        ("generate_lyrics", {"description": "secrets", "wait_seconds": 10}),
        ("get_task_status", {"task_id": "no-such-task"}),
        ("get_task_status", {"task_id": "../../etc/passwd"}),
        ("list_tasks", {}),
        ("download_audio", {}),
        ("upload_audio", {"url": "https://user:pw@example.com/a.mp3"}),
        ("cover_music", {"clip_id": "no-such-clip", "tags": "jazz"}),
    ]
    if task_id and clip_id:
        calls += [
            ("get_task_status", {"task_id": task_id, "wait_seconds": 10}),
            ("extend_music", {"clip_id": clip_id, "continue_at": 1, "wait_seconds": 10}),
            ("get_complete_song", {"clip_id": clip_id, "wait_seconds": 10}),
            ("cover_music", {"clip_id": clip_id, "tags": "jazz", "wait_seconds": 10}),
            ("download_audio", {"task_id": task_id}),
        ]
    return calls


def _drive(session: StdioSession) -> list[dict[str, Any]]:
    session.initialize()
    results = [session.request("tools/list")]
    first = session.call_tool(*_calls(None, None)[0])
    results.append(first)
    task = first.get("structuredContent") or {}
    clip_id = task["clips"][0]["id"] if task.get("clips") else None
    for name, args in _calls(task.get("task_id"), clip_id)[1:]:
        results.append(session.call_tool(name, args))
    for uri in ("suno://tasks", "suno://models"):
        results.append(session.request("resources/read", {"uri": uri}))
    return results


def _all_files(root: Path) -> list[str]:
    return [p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file()]


@pytest.mark.slow  # drives the console script as a subprocess
async def test_the_key_appears_nowhere_through_every_tool_and_error_path(tmp_path: Path) -> None:
    # The sandbox demands exactly this key, so the key is really used on every request.
    config = SandboxConfig(speed=100, clip_seconds=3, api_key=CANARY)
    async with run_sandbox(config) as sandbox:
        env = server_env(
            tmp_path,
            GPTPROTO_API_KEY=CANARY,
            GPTPROTO_BASE_URL=sandbox.url,
            SUNO_MCP_LOG_LEVEL="DEBUG",
            SUNO_MCP_EXPECTED_PREVIEW_S="0.3",
            SUNO_MCP_EXPECTED_COMPLETE_S="1.2",
        )
        sandbox.state.inject("429", "fetch", 1)
        session = StdioSession([], env)
        try:
            with anyio.fail_after(120):
                results = await anyio.to_thread.run_sync(_drive, session)
        finally:
            session.close()
        # A wrong key takes the authentication-error path.
        wrong = StdioSession([], {**env, "GPTPROTO_API_KEY": CANARY + "-wrong"})
        try:
            await anyio.to_thread.run_sync(wrong.initialize)
            rejected = await anyio.to_thread.run_sync(
                wrong.call_tool, "generate_music", {"description": "nope"}
            )
        finally:
            wrong.close()
    assert rejected["isError"] is True
    assert "rejected" in rejected["content"][0]["text"]
    assert any(r.get("isError") for r in results)  # error paths were really taken

    everything = [
        json.dumps(results),
        json.dumps(rejected),
        b"".join(session.stdout_lines + wrong.stdout_lines).decode(),
        session.stderr_text() + b"".join(session.stderr_chunks).decode("utf-8", "replace"),
        b"".join(wrong.stderr_chunks).decode("utf-8", "replace"),
    ]
    everything.extend(await anyio.to_thread.run_sync(_all_files, tmp_path))
    assert len(everything) > 5
    for blob in everything:
        assert CANARY not in blob
        assert "CANARY-7f3a9c" not in blob


async def test_settings_and_client_reprs_hide_the_key(tmp_path: Path) -> None:
    settings = load_settings(environ={"GPTPROTO_API_KEY": CANARY}, data_dir=tmp_path)
    async with httpx.AsyncClient() as http:
        upstream = Upstream(http, base_url="https://x.test", api_key=CANARY)
    for text in (
        repr(settings),
        str(settings),
        repr(upstream),
        settings.model_dump_json(),
        str(vars(upstream)),
    ):
        assert CANARY not in text
