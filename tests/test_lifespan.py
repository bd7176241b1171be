"""The service opens on the first tool call, not at start-up, and a failure to open it is explained."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import Client

from suno_mcp.server.app import build_server
from suno_mcp.service.backends import upstream_backend
from suno_mcp.settings import load_settings


async def test_listing_tools_resources_and_prompts_never_opens_the_backend(tmp_path: Path) -> None:
    opened: list[bool] = []

    @asynccontextmanager
    async def backend(settings: Any) -> AsyncIterator[Any]:
        opened.append(True)
        yield None

    server = build_server(load_settings(environ={}, data_dir=tmp_path), backend)
    async with Client(server) as client:
        await client.list_tools()
        await client.list_resources()
        await client.list_prompts()
        await client.read_resource("suno://models")
    assert opened == []
    assert not (tmp_path / "tasks.sqlite3").exists()


async def test_an_unwritable_data_directory_is_a_tool_error_that_names_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the data directory should be")
    settings = load_settings(environ={}, api_key="k", data_dir=blocker / "data")
    async with Client(build_server(settings, upstream_backend)) as client:
        result = await client.call_tool("list_tasks", {})
        again = await client.call_tool("get_task_status", {"task_id": "abc"})
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "SUNO_MCP_DATA_DIR" in text
    assert str(blocker / "data") in text
    assert again.is_error  # the server stays up and keeps explaining
