"""Over streamable HTTP, against an upstream answering 429 past a low limit: the poller's pacing
is its own business, so no status read tells the person about a rate limit. The sandbox and our
server are processes of their own; the server is pointed at the sandbox as at the real vendor."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client
from mcp_types import CallToolResult

from tests.support.processes import http_server_process, log_file, sandbox_process
from tests.support.stdio_session import server_env

pytestmark = pytest.mark.slow

TASKS = 6
READS = 8
SPACING_S = 0.3
BOUND_S = 90.0
# "429" standing alone (not inside an id or a number), or the words.
RATE_PATTERN = re.compile(r"(?<![\w.\-/])429(?![\w.\-])|rate[ -]limit|too many requests", re.IGNORECASE)


def text_of(result: CallToolResult) -> str:
    parts = [getattr(block, "text", "") for block in result.content]
    return " ".join([*parts, repr(result.structured_content)])


async def test_no_status_read_mentions_a_rate_limit_while_the_upstream_answers_429(tmp_path: Path) -> None:
    with (
        log_file(tmp_path, "sandbox.log") as sandbox_log,
        log_file(tmp_path, "server.log") as server_log,
        sandbox_process("--speed", "10", env=server_env(tmp_path), log=sandbox_log) as (sandbox_url, _),
    ):
        # A ceiling far above the upstream's limit, so the poller really meets its 429s.
        env = server_env(
            tmp_path / "data", GPTPROTO_API_KEY="any", GPTPROTO_BASE_URL=sandbox_url, SUNO_MCP_MAX_RPS="50"
        )
        with http_server_process(env, log=server_log) as (mcp_url, _):
            async with httpx.AsyncClient(base_url=sandbox_url) as admin, Client(mcp_url) as client:
                task_ids = []
                with anyio.fail_after(BOUND_S):
                    for n in range(TASKS):
                        submitted = await client.call_tool(
                            "generate_music",
                            {"description": f"a song about the sea, take {n}", "wait_seconds": 0},
                        )
                        assert not submitted.is_error, text_of(submitted)
                        assert submitted.structured_content is not None
                        task_ids.append(submitted.structured_content["task_id"])
                    # From now on the upstream takes one request a second.
                    answer = await admin.post("/_sandbox/rate_limit", json={"rps": 1, "burst": 1})
                    assert answer.json()["rate_limit"]["rps"] == 1

                    results: list[CallToolResult] = []

                    async def follow(task_id: str) -> None:
                        for k in range(READS):
                            wait = 2 if k == READS - 1 else 0  # the waited path too, at the end
                            results.append(
                                await client.call_tool(
                                    "get_task_status", {"task_id": task_id, "wait_seconds": wait}
                                )
                            )
                            await anyio.sleep(SPACING_S)  # the reads' own spacing, not a wait for something

                    async with anyio.create_task_group() as tg:
                        for task_id in task_ids:
                            tg.start_soon(follow, task_id)
                stats = (await admin.get("/_sandbox/stats")).json()

    assert stats["rate_limited"].get("fetch", 0) > 0, stats  # the poller did meet 429s
    assert len(results) == TASKS * READS
    for result in results:
        assert not result.is_error, text_of(result)
        assert not RATE_PATTERN.search(text_of(result)), text_of(result)
