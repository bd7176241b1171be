"""Spending against the sandbox: two server processes on one data directory share one budget, and
get_usage agrees with the sandbox's own count of what it was asked to make."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from suno_mcp.server.app import build_server
from suno_mcp.service.backends import SandboxOptions, sandbox_backend
from suno_mcp.settings import load_settings
from tests.support.processes import sandbox_process
from tests.support.stdio_session import StdioSession, server_env


@pytest.mark.slow
def test_two_server_processes_on_one_data_directory_send_exactly_the_budget(tmp_path: Path) -> None:
    with sandbox_process("--speed", "50", env=server_env(tmp_path / "sandbox")) as (url, _):
        env = server_env(
            tmp_path / "data",
            GPTPROTO_API_KEY="budget-key",
            GPTPROTO_BASE_URL=url,
            SUNO_MCP_BUDGET="5/day",
            SUNO_MCP_CONFIRM="never",
        )
        sessions = [StdioSession([], env) for _ in range(2)]
        try:
            for session in sessions:
                session.initialize()
            results: list[dict[str, Any]] = []
            lock = threading.Lock()

            def fire(session: StdioSession, base: int) -> None:
                for n in range(10):
                    got = session.call_tool(
                        "generate_music", {"description": f"song {base + n}", "wait_seconds": 0}
                    )
                    with lock:
                        results.append(got)

            threads = [threading.Thread(target=fire, args=(s, 100 * i)) for i, s in enumerate(sessions)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            assert not any(thread.is_alive() for thread in threads)
        finally:
            for session in sessions:
                session.close()
        stats = httpx.get(f"{url}/_sandbox/stats", timeout=10).json()
    assert stats["tasks_created"] == 5
    refused = [r for r in results if r.get("isError")]
    assert len(refused) == 15
    assert all("SUNO_MCP_BUDGET" in r["content"][0]["text"] for r in refused)


async def test_usage_matches_the_sandboxs_own_count_after_faults_and_lost_answers(tmp_path: Path) -> None:
    backend = sandbox_backend(SandboxOptions(speed=1000.0, clip_seconds=2.0))
    settings = load_settings(environ={}, data_dir=tmp_path, max_requests_per_second=1000.0)
    server = build_server(settings, backend)
    async with Client(server) as client:
        first = await client.call_tool("generate_music", {"description": "usage 0", "wait_seconds": 5})
        assert not first.is_error
        sandbox_url = str((first.structured_content or {})["clips"][0].get("audio_url") or "")
        sandbox_url = sandbox_url or str((first.structured_content or {})["clips"][0]["preview_url"])
        base = sandbox_url.split("/sandbox/")[0]
        async with httpx.AsyncClient() as http:

            async def inject(kind: str) -> None:
                answer = await http.post(
                    f"{base}/_sandbox/faults", json={"kind": kind, "endpoint": "submit_music", "count": 1}
                )
                assert answer.status_code < 300, answer.text

            await inject("invalid_prompt")  # refused: nothing made, nothing paid
            refused = await client.call_tool("generate_music", {"description": "usage 1", "wait_seconds": 0})
            await inject("drop")  # made upstream, answer lost: may have been charged
            lost = await client.call_tool("generate_music", {"description": "usage 2", "wait_seconds": 0})
            await inject("500")  # a gateway failing: may have been charged (the sandbox made nothing)
            failing = await client.call_tool("generate_music", {"description": "usage 3", "wait_seconds": 0})
            await client.call_tool("generate_lyrics", {"description": "usage lyrics", "wait_seconds": 5})
            stats = (await http.get(f"{base}/_sandbox/stats")).json()
        usage = await client.call_tool("get_usage", {})
    assert refused.is_error
    assert lost.is_error
    assert failing.is_error
    doc = usage.structured_content or {}
    day = doc["periods"][1]
    made_upstream = stats["tasks_created"]  # music (the dropped one included) and lyrics
    # Everything the sandbox made is counted, plus the 500 that may have been taken by a real gateway.
    assert day["requests"] == made_upstream + 1
    assert day["maybe_charged"] == 2
    assert json.dumps(doc).count('"lyrics"') >= 1
