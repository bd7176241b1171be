"""tools/list is answered from the shipped listing until the tools are needed, and says exactly
what registering them would."""

from __future__ import annotations

from pathlib import Path

import mcp_types as types
from mcp import Client

from suno_mcp.server.app import build_server
from suno_mcp.server.listing import (
    ToolShape,
    default_shape,
    listed_tools,
    live_listing,
    made_with,
    read_listing,
)
from suno_mcp.service.backends import upstream_backend
from suno_mcp.settings import load_settings

REGENERATE = "the shipped tools.json is stale: run `python -m suno_mcp.server.listing` and commit it"


def _dumped(tools: list[types.Tool]) -> list[dict[str, object]]:
    """The tools as they go out (what a client reads back leaves the unset fields None)."""
    return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]


async def _live(shape: ToolShape) -> list[dict[str, object]]:
    return _dumped([types.Tool.model_validate(tool) for tool in (await live_listing(shape))["tools"]])


async def test_the_shipped_listing_is_what_the_tools_make_with_the_default_settings() -> None:
    shipped = read_listing()
    assert shipped is not None
    live = await live_listing(default_shape())
    assert shipped["tools"] == live["tools"], REGENERATE
    assert shipped["shape"] == live["shape"], REGENERATE
    # Made with other library versions it is never used: the start-up would lose what it is for.
    assert shipped["made_with"] == made_with(), REGENERATE


async def test_a_default_server_lists_its_tools_before_registering_them_and_a_call_registers_them(
    tmp_path: Path,
) -> None:
    server = build_server(load_settings(environ={}, data_dir=tmp_path), upstream_backend)
    async with Client(server) as client:
        before = (await client.list_tools()).tools
        assert server.pending_registrations  # listed, not registered
        # An argument out of bounds: refused by the registered tool's model, before its body runs.
        refused = await client.call_tool("get_task_status", {"task_id": "t-1", "wait_seconds": -1})
        assert not server.pending_registrations
        after = (await client.list_tools()).tools
    assert refused.is_error
    assert "wait_seconds" in str(refused.content)
    assert _dumped(after) == _dumped(before)
    assert _dumped(before) == await _live(default_shape())


async def test_a_server_with_other_waits_lists_what_its_own_tools_make(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"SUNO_MCP_MAX_WAIT": "120", "SUNO_MCP_DUPLICATE_WINDOW": "60"}, data_dir=tmp_path
    )
    server = build_server(settings, upstream_backend)
    assert server.shipped_tools is None
    async with Client(server) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert tools["get_task_status"].input_schema["properties"]["wait_seconds"]["maximum"] == 120
    assert "within 60 seconds" in (tools["generate_music"].description or "")
    assert _dumped(list(tools.values())) == await _live(ToolShape.of(settings))


def test_a_listing_made_for_other_settings_or_library_versions_is_not_used() -> None:
    shipped = read_listing()
    assert shipped is not None
    shape = default_shape()
    assert listed_tools(shipped, shape) is not None
    other_library = {**shipped, "made_with": {**shipped["made_with"], "pydantic": "0.0.0"}}
    assert listed_tools(other_library, shape) is None
    assert (
        listed_tools(shipped, ToolShape(shape.default_wait, shape.max_wait + 1, shape.duplicate_window))
        is None
    )
    assert listed_tools(None, shape) is None


async def test_resources_and_prompts_left_for_later_are_there_for_the_first_request_that_asks(
    tmp_path: Path,
) -> None:
    server = build_server(load_settings(environ={}, data_dir=tmp_path), upstream_backend)
    async with Client(server) as client:
        templates = (await client.list_resource_templates()).resource_templates
    assert [t.uri_template for t in templates] == ["suno://tasks/{task_id}"]
    server = build_server(load_settings(environ={}, data_dir=tmp_path), upstream_backend)
    async with Client(server) as client:
        models = await client.read_resource("suno://models")
        prompts = (await client.list_prompts()).prompts
        resources = (await client.list_resources()).resources
    assert "chirp" in str(models.contents[0])
    assert [p.name for p in prompts] == ["write_a_full_song", "instrumental_for_use_case"]
    # The player's resource comes with the server's extension, and stays first.
    assert [str(r.uri) for r in resources][:2] == ["ui://suno-mcp/player.html", "suno://models"]
