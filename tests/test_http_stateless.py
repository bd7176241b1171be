"""Stateless streamable HTTP: no sessions, so any replica answers any request.

Each POST gets a transport of its own; the service (HTTP client, ledger, poller) is still opened
once per process, a waited call's progress rides on its own POST's response stream, and a spending
question that cannot be asked (no back channel) is refused at once instead of hanging.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp_types as types
from mcp import Client
from mcp.client.context import ClientRequestContext

from suno_mcp.sandbox.runner import run_sandbox
from suno_mcp.sandbox.state import SandboxConfig
from suno_mcp.server.app import build_server
from suno_mcp.server.http import build_http_app
from suno_mcp.service.backends import SandboxOptions, sandbox_backend, upstream_backend
from suno_mcp.service.core import SunoService
from suno_mcp.settings import Settings, load_settings
from tests.support.http_app import MCP_HEADERS, bearer_client, messages, serving, tool_call

CALL_LIMIT_S = 30


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return load_settings(environ={}, data_dir=tmp_path, http_stateless=True, **overrides)


def _result(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    final = messages(response)[-1]
    assert "result" in final, final
    result: dict[str, Any] = final["result"]
    return result


async def test_a_tools_call_without_initialize_or_session_id_is_answered_by_any_replica(
    tmp_path: Path,
) -> None:
    async with run_sandbox(SandboxConfig(speed=100)) as sandbox:
        # Two replicas of one deployment: one ledger, one upstream, no shared memory.
        settings = _settings(tmp_path, base_url=sandbox.url, api_key="sandbox-key")
        first, second = (build_server(settings, upstream_backend) for _ in range(2))
        async with (
            serving(build_http_app(first, settings, "127.0.0.1")) as one,
            serving(build_http_app(second, settings, "127.0.0.1")) as two,
            httpx.AsyncClient(timeout=CALL_LIMIT_S) as http,
        ):
            submit = {"description": "a song sent to one replica", "wait_seconds": 0}
            made = await http.post(
                f"{one}/mcp", json=tool_call("generate_music", submit), headers=MCP_HEADERS
            )
            task_id = _result(made)["structuredContent"]["task_id"]
            asked = await http.post(
                f"{two}/mcp", json=tool_call("get_task_status", {"task_id": task_id}), headers=MCP_HEADERS
            )
            listed = await http.post(f"{two}/mcp", json=tool_call("list_tasks", {}), headers=MCP_HEADERS)
    assert "mcp-session-id" not in made.headers
    assert _result(asked)["structuredContent"]["task_id"] == task_id
    assert [t["task_id"] for t in _result(listed)["structuredContent"]["tasks"]] == [task_id]
    # The second replica answered from the shared ledger: the upstream saw one submit.
    assert sandbox.state.stats.requests["submit_music"] == 1


def _counting(backend: Any, opened: list[int]) -> Any:
    @asynccontextmanager
    async def counted(settings: Settings) -> AsyncIterator[SunoService]:
        opened.append(1)
        async with backend(settings) as service:
            yield service

    return counted


async def test_the_service_is_opened_once_for_the_process_however_many_requests_come(tmp_path: Path) -> None:
    opened: list[int] = []
    settings = _settings(tmp_path)
    server = build_server(settings, _counting(sandbox_backend(SandboxOptions(speed=100)), opened))
    async with (
        serving(build_http_app(server, settings, "127.0.0.1")) as url,
        httpx.AsyncClient(timeout=CALL_LIMIT_S) as http,
    ):
        for n in range(3):
            answer = await http.post(
                f"{url}/mcp", json=tool_call("get_usage", {}, request_id=n), headers=MCP_HEADERS
            )
            assert _result(answer)["isError"] is False
        async with bearer_client(url, None, mode="legacy") as client:
            listed = await client.call_tool("list_tasks", {})
    assert not listed.is_error
    assert len(opened) == 1


async def test_a_waited_call_streams_its_progress_on_its_own_post_before_the_result(tmp_path: Path) -> None:
    # At speed 100 the first audio plays after about 0.3 s: several polls, each reported, come first
    # (the first one at once, after the call's first read).
    settings = _settings(tmp_path)
    server = build_server(settings, sandbox_backend(SandboxOptions(speed=100)))
    call = tool_call(
        "generate_music", {"description": "progress over one post", "wait_seconds": 20}, progress="p-1"
    )
    async with (
        serving(build_http_app(server, settings, "127.0.0.1")) as url,
        httpx.AsyncClient(timeout=CALL_LIMIT_S) as http,
    ):
        with anyio.fail_after(CALL_LIMIT_S):
            answer = await http.post(f"{url}/mcp", json=call, headers=MCP_HEADERS)
    assert answer.headers["content-type"].startswith("text/event-stream")
    *notes, final = messages(answer)
    assert final["id"] == 1
    assert final["result"]["isError"] is False, final
    assert final["result"]["structuredContent"]["status"] in ("streaming", "complete")
    assert notes, "no progress notification reached the POST's stream"
    assert {n["method"] for n in notes} == {"notifications/progress"}
    assert {n["params"]["progressToken"] for n in notes} == {"p-1"}
    progress = [n["params"]["progress"] for n in notes]
    assert progress == sorted(progress)
    assert len(set(progress)) == len(progress)
    assert all(n["params"]["message"] for n in notes)


def accepting(
    asked: list[str],
) -> Callable[[ClientRequestContext, types.ElicitRequestParams], Awaitable[types.ElicitResult]]:
    """A client's answer to every question: yes, send it; each question's text is kept in ``asked``."""

    async def elicit(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"send": True})

    return elicit


@asynccontextmanager
async def asking_server_and_client(tmp_path: Path, mode: str, asked: list[str]) -> AsyncIterator[Client]:
    """A stateless server that asks before every paid call, and a client of protocol ``mode`` that
    answers yes to each question (kept in ``asked``)."""
    settings = _settings(tmp_path, confirm="always")
    server = build_server(settings, sandbox_backend(SandboxOptions(speed=100)))
    async with (
        serving(build_http_app(server, settings, "127.0.0.1")) as url,
        bearer_client(url, None, mode=mode, elicitation_callback=accepting(asked)) as client,
    ):
        yield client


async def test_a_spending_question_with_no_way_to_ask_is_refused_at_once_instead_of_hanging(
    tmp_path: Path,
) -> None:
    asked: list[str] = []
    # The client can answer questions, but a stateless POST has nowhere for its answer to land.
    async with asking_server_and_client(tmp_path, "legacy", asked) as client:
        with anyio.fail_after(CALL_LIMIT_S):
            result = await client.call_tool(
                "generate_music", {"description": "ask me first", "wait_seconds": 0}
            )
            usage = await client.call_tool("get_usage", {})
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "cannot ask" in text
    assert "Nothing was sent" in text
    assert asked == []
    assert usage.structured_content is not None
    assert [p["requests"] for p in usage.structured_content["periods"]] == [0, 0, 0]


async def test_a_client_of_the_input_required_revision_is_asked_even_without_sessions(tmp_path: Path) -> None:
    # From 2026-07-28 on the question is the call's result and the answer comes with the retry:
    # both are ordinary requests, so stateless replicas can ask.
    asked: list[str] = []
    async with asking_server_and_client(tmp_path, "2026-07-28", asked) as client:
        with anyio.fail_after(CALL_LIMIT_S):
            result = await client.call_tool(
                "generate_music", {"description": "ask me across requests", "wait_seconds": 0}
            )
    assert not result.is_error, result.content
    assert len(asked) == 1
    assert "ask me across requests" in asked[0]
