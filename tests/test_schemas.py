"""Output schemas are plain (no references, nullable as type lists) and still describe our results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from mcp import Client
from mcp_types import ListToolsResult
from pydantic import TypeAdapter

from suno_mcp.domain.models import Status
from suno_mcp.server.app import build_server
from suno_mcp.server.results import ClipResult, TaskResult
from suno_mcp.service.backends import upstream_backend
from suno_mcp.settings import load_settings


def _full_result() -> dict[str, Any]:
    clip = ClipResult(
        id="c1", status=Status.COMPLETE, audio_url="https://x/a.mp3", duration=61.5, local_file="/a"
    )
    result = TaskResult(
        task_id="t1",
        kind="music",
        api="clip",
        status=Status.COMPLETE,
        clips=[clip, ClipResult(id="c2", status=Status.FAILED, error="no")],
        next_step="done",
    )
    return result.model_dump(mode="json")


async def test_every_output_schema_is_free_of_references_and_nullable_any_of(tmp_path: Path) -> None:
    server = build_server(load_settings(environ={}, data_dir=tmp_path), upstream_backend)
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
    schemas = [t.output_schema for t in tools]
    assert all(schemas)
    text = json.dumps(schemas)
    assert "$ref" not in text
    assert "$defs" not in text
    assert '{"type": "null"}' not in text


def test_the_compact_schema_accepts_what_the_model_makes_and_refuses_what_it_would_not() -> None:
    schema = TypeAdapter(TaskResult).json_schema()
    assert "$defs" not in json.dumps(schema)
    validator = Draft202012Validator(schema)
    good = _full_result()
    assert list(validator.iter_errors(good)) == []
    for broken in (
        {**good, "status": 3},
        {**good, "task_id": 7},
        {**good, "clips": [{**good["clips"][0], "duration": "long"}]},
        {**good, "clips": [{"status": "complete"}]},
        {**good, "clips": [{**good["clips"][0], "duration": None}]},
    ):
        assert list(validator.iter_errors(broken)), broken


@pytest.mark.parametrize("value", [None, "x"])
def test_an_optional_field_is_left_out_when_unknown_and_text_when_known(value: str | None) -> None:
    schema = TypeAdapter(ClipResult).json_schema()
    assert schema["properties"]["title"] == {}  # an optional text field is listed by name alone
    assert schema["properties"]["duration"] == {"type": "number"}  # other optional fields keep their type
    doc = ClipResult(id="c", status=Status.RUNNING, title=value).model_dump(mode="json")
    assert ("title" in doc) is (value is not None)
    assert list(Draft202012Validator(schema).iter_errors(doc)) == []


def test_a_required_field_that_may_be_unknown_stays_nullable_and_present() -> None:
    schema = TypeAdapter(TaskResult).json_schema()
    assert schema["properties"]["task_id"]["type"] == ["string", "null"]
    doc = TaskResult(task_id=None, kind="music", api="task", status=Status.UNKNOWN, next_step="x")
    dumped = doc.model_dump(mode="json")
    assert dumped["task_id"] is None
    assert list(Draft202012Validator(schema).iter_errors(dumped)) == []


# What every conversation pays for before its first word: the tools/list result as a client on
# 2025-11-25 receives it, compact JSON as the SDK writes it on the wire (on 2026-07-28 the SDK adds
# the same cache hints and serverInfo stamp to every result; they are not the tools'). Ten tools
# were 20,743 bytes before output schemas lost their enums and their optional strings' types,
# hints their defaults, id arguments their pattern (the server checks ids itself) and the
# descriptions their repeats ("as in generate_music"); 14,583 after. The limit is 15 KiB.
TOOL_LIST_LIMIT = 15_360


def _wire_size(listed: ListToolsResult) -> int:
    return len(
        json.dumps(
            {"tools": listed.model_dump(by_alias=True, exclude_none=True, mode="json")["tools"]},
            separators=(",", ":"),
        )
    )


async def test_the_tool_list_stays_small_and_every_tool_publishes_an_output_schema(tmp_path: Path) -> None:
    server = build_server(load_settings(environ={}, data_dir=tmp_path), upstream_backend)
    async with Client(server) as client:
        listed = await client.list_tools()
    assert all(tool.output_schema for tool in listed.tools)
    assert len(listed.tools) == 10
    assert _wire_size(listed) <= TOOL_LIST_LIMIT
    text = json.dumps([t.input_schema for t in listed.tools])
    assert '"title"' not in text.replace('"title": {', "")  # generated titles are gone, the argument stays
    assert '{"type": "null"}' not in text


async def test_the_compact_input_schema_accepts_and_refuses_what_the_server_does(tmp_path: Path) -> None:
    server = build_server(load_settings(environ={}, data_dir=tmp_path), upstream_backend)
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        validator = Draft202012Validator(tools["generate_music"].input_schema)
        assert list(validator.iter_errors({"description": "rain", "tags": None})) == []
        assert list(validator.iter_errors({"description": "", "wait_seconds": 51}))
        refused = await client.call_tool("generate_music", {"description": "", "wait_seconds": 51})
    assert refused.is_error


async def test_a_tool_added_after_a_listing_is_listed_compact_and_a_removed_one_leaves(
    tmp_path: Path,
) -> None:
    server = build_server(load_settings(environ={}, data_dir=tmp_path), upstream_backend)

    def late(choice: Status | None = None) -> str:
        """A tool registered after the first tools/list."""
        return str(choice)

    # Asked of the server itself: a client keeps the tool list for an hour (the cache hint).
    before = {t.name for t in await server.list_tools()}
    server.add_tool(late)
    listed = {t.name: t for t in await server.list_tools()}
    server.remove_tool("late")
    after = {t.name for t in await server.list_tools()}
    schema = json.dumps(listed["late"].input_schema)
    assert "$ref" not in schema  # compacted: the enum is inlined, not referenced
    assert "title" not in listed["late"].input_schema["properties"]["choice"]
    assert set(listed) == before | {"late"}
    assert after == before
