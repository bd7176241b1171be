"""Output schemas are plain (no references, nullable as type lists) and still describe our results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from mcp import Client
from pydantic import TypeAdapter

from suno_mcp.backends import upstream_backend
from suno_mcp.ledger import SavedFile
from suno_mcp.models import Status
from suno_mcp.results import ClipResult, TaskResult, compact_schema
from suno_mcp.server import build_server
from suno_mcp.settings import load_settings


def _full_result() -> dict[str, Any]:
    clip = ClipResult(
        id="c1", status=Status.COMPLETE, audio_url="https://x/a.mp3", duration=61.5, local_file="/a"
    )
    saved = SavedFile(
        clip_id="c1", task_id="t1", path="/a", url="https://x/a.mp3", bytes=10, mime_type="audio/mpeg"
    )
    result = TaskResult(
        task_id="t1",
        kind="music",
        api="clip",
        status=Status.COMPLETE,
        clips=[clip, ClipResult(id="c2", status=Status.FAILED, error="no")],
        next_step="done",
        files=[saved],
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
    schema = compact_schema(TypeAdapter(TaskResult).json_schema())
    validator = Draft202012Validator(schema)
    good = _full_result()
    assert list(validator.iter_errors(good)) == []
    for broken in (
        {**good, "status": "nearly"},
        {**good, "task_id": 7},
        {**good, "clips": [{**good["clips"][0], "duration": "long"}]},
        {**good, "files": [{"clip_id": "c1"}]},
    ):
        assert list(validator.iter_errors(broken)), broken


@pytest.mark.parametrize("value", [None, "x"])
def test_a_nullable_text_field_takes_text_or_null(value: str | None) -> None:
    schema = compact_schema(TypeAdapter(ClipResult).json_schema())
    assert schema["properties"]["title"]["type"] == ["string", "null"]
    doc = ClipResult(id="c", status=Status.RUNNING, title=value).model_dump(mode="json")
    assert list(Draft202012Validator(schema).iter_errors(doc)) == []
