"""The MCP surface, driven through an in-memory client against a fake upstream.

Tools, resources and prompts as a model sees them: schemas, results, progress and the
text of every kind of failure.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePath
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp import Client, MCPError

from suno_mcp.domain.errors import RateLimitedError
from suno_mcp.domain.models import MusicRequest
from suno_mcp.engine.poller import Timing
from suno_mcp.service.wiring import open_service
from tests.support.helpers_upstream import (
    AUDIO_BYTES,
    CLIP_DURATION,
    FAST_RETRY,
    FakeUpstream,
    connect,
    make_server,
    make_settings,
)

# Marked here as well as by conftest: parametrized async tests need the mark at collection time.
pytestmark = pytest.mark.anyio

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
UPSTREAM_TOOLS = TOOLS - {"list_tasks", "get_usage"}
SUBMIT = "/v1/suno/submit/music"
WAIT = 5  # seconds; the fake upstream reaches every milestone in well under one


def text_of(result: types.CallToolResult) -> str:
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    return first.text


def error_of(result: types.CallToolResult) -> str:
    """The text of a tool error, checked to be one the model can act on (not a traceback)."""
    assert result.is_error, result
    text = text_of(result)
    assert "Traceback" not in text
    assert 'File "' not in text
    return text


async def until_complete(client: Client, task_id: str) -> types.CallToolResult:
    """get_task_status with a wait until the task is complete (each wait ends at a milestone)."""
    for _ in range(4):
        result = await client.call_tool("get_task_status", {"task_id": task_id, "wait_seconds": WAIT})
        assert not result.is_error, text_of(result)
        if result.structured_content["status"] == "complete":
            return result
    raise AssertionError(f"task {task_id} did not complete: {text_of(result)}")


def audio_files(data_dir: Path) -> dict[str, bytes]:
    """The files saved under data_dir/audio, by name, with their contents."""
    audio = data_dir / "audio"
    return {p.name: p.read_bytes() for p in audio.iterdir()} if audio.exists() else {}


class Progress:
    """A progress callback that keeps what one tool call reported."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.messages: list[str] = []

    async def __call__(self, value: float, total: float | None, message: str | None) -> None:
        self.values.append(value)
        self.messages.append(message or "")

    def check(self, at_least: int = 2) -> None:
        """Enough notifications, strictly increasing (as MCP requires), each with a message."""
        assert len(self.values) >= at_least, self.values
        assert all(b > a for a, b in zip(self.values, self.values[1:], strict=False)), self.values
        assert all(self.messages), self.messages


def error_response(status: int, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"code": "error", "data": None, "message": message}, headers=headers)


# ---------------------------------------------------------------- tools/list


async def test_tools_list_offers_exactly_the_eight_tools_with_titles_and_output_schemas(
    tmp_path: Path,
) -> None:
    async with connect(tmp_path) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}

    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.title, tool.name
        assert len(tool.description or "") > 40, tool.name
        assert tool.output_schema is not None, tool.name
        assert tool.output_schema.get("type") == "object", tool.name


async def test_tool_input_schemas_are_flat_with_descriptions_and_bounds(tmp_path: Path) -> None:
    async with connect(tmp_path) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}

    def prop(tool: str, name: str) -> dict[str, Any]:
        return dict(tools[tool].input_schema["properties"][name])

    def branch(schema: dict[str, Any]) -> dict[str, Any]:
        """The non-null type of an optional argument (nullable ones are spelled as a type list)."""
        assert "anyOf" not in schema
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        options = [k for k in kinds if k != "null"]
        assert len(options) == 1
        return {**schema, "type": options[0]}

    for tool in tools.values():
        schema = tool.input_schema
        assert schema["type"] == "object"
        for name, spec in schema["properties"].items():
            # Flat: each argument is a top-level scalar, not one wrapped object.
            assert "$ref" not in json.dumps(spec), (tool.name, name)
            assert branch(spec).get("type") in ("string", "number", "integer", "boolean"), (tool.name, name)
            # Described where it is, or named by the tool's description ("... as in generate_music").
            assert spec.get("description") or name in (tool.description or ""), (tool.name, name)

    assert set(tools["generate_music"].input_schema["properties"]) == {
        "description",
        "lyrics",
        "tags",
        "title",
        "instrumental",
        "model",
        "wait_seconds",
        "force_new",
    }
    assert branch(prop("generate_music", "description"))["maxLength"] == 500
    assert branch(prop("generate_music", "lyrics"))["maxLength"] == 5000
    assert branch(prop("generate_music", "title"))["maxLength"] == 80
    assert branch(prop("generate_music", "description"))["minLength"] == 1
    assert prop("generate_music", "wait_seconds")["minimum"] == 0
    assert prop("generate_music", "wait_seconds")["maximum"] == 50
    assert set(tools["extend_music"].input_schema["required"]) == {"clip_id", "continue_at"}
    assert prop("extend_music", "continue_at")["minimum"] == 0
    assert prop("extend_music", "continue_at")["maximum"] == 3600
    for tool, name in [
        ("extend_music", "clip_id"),
        ("get_task_status", "task_id"),
        ("get_complete_song", "clip_id"),
        ("download_audio", "task_id"),
        ("download_audio", "clip_id"),
    ]:
        # No pattern to read in every conversation: the server checks the whole rule itself and
        # names the field (tests/test_bad_input.py, tests/test_unseen_ids.py).
        assert "pattern" not in prop(tool, name), (tool, name)
    assert tools["get_task_status"].input_schema["required"] == ["task_id"]
    assert prop("list_tasks", "limit")["minimum"] == 1
    assert prop("list_tasks", "limit")["maximum"] == 200
    assert set(branch(prop("list_tasks", "status"))["enum"]) - {None} == {
        "pending",
        "running",
        "streaming",
        "complete",
        "failed",
        "unknown",
        "stalled",
    }
    assert branch(prop("generate_lyrics", "description"))["maxLength"] == 3000


async def test_tool_annotations_mark_reads_and_the_open_world(tmp_path: Path) -> None:
    async with connect(tmp_path) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}

    # A hint left out means the protocol's default: not read-only, destructive, open world.
    for name, tool in tools.items():
        assert tool.annotations is not None, name
    assert tools["get_task_status"].annotations.read_only_hint is True
    assert tools["list_tasks"].annotations.read_only_hint is True
    writers = ("generate_music", "extend_music", "generate_lyrics", "get_complete_song", "download_audio")
    for name in (*writers, "cover_music", "upload_audio"):
        assert not tools[name].annotations.read_only_hint, name
        assert tools[name].annotations.destructive_hint is False, name
    for name in UPSTREAM_TOOLS:
        assert tools[name].annotations.open_world_hint in (None, True), name
    assert tools["list_tasks"].annotations.open_world_hint is False
    assert tools["get_usage"].annotations.read_only_hint is True
    assert tools["get_usage"].annotations.open_world_hint is False


# ---------------------------------------------------------------- the happy path


@pytest.mark.parametrize("api", ["task", "clip"])
async def test_generate_waits_for_previews_and_status_then_waits_for_two_complete_clips(
    tmp_path: Path, api: str
) -> None:
    fake = FakeUpstream(hold_at="streaming")
    to_playable, to_final = Progress(), Progress()

    async with connect(tmp_path, fake, api=api) as client:
        playable = await client.call_tool(
            "generate_music",
            {"description": "lofi rain", "wait_seconds": WAIT},
            progress_callback=to_playable,
        )
        fake.hold_at = None
        task_id = playable.structured_content["task_id"]
        done = await client.call_tool(
            "get_task_status", {"task_id": task_id, "wait_seconds": WAIT}, progress_callback=to_final
        )

    # The generate call returned as soon as previews were playable, not final files.
    assert not playable.is_error, text_of(playable)
    assert playable.structured_content["status"] == "streaming"
    previews = playable.structured_content["clips"]
    assert len(previews) == 2
    assert [c["preview_url"] for c in previews] == [fake.preview_url(c["id"]) for c in previews]
    assert all("audio_url" not in c for c in previews)  # left out until there is one
    assert "PREVIEW (not final)" in text_of(playable)
    assert f"get_task_status(task_id='{task_id}', wait_seconds=45)" in text_of(playable)

    assert not done.is_error, text_of(done)
    result = done.structured_content
    assert result["task_id"] == task_id
    assert result["api"] == api
    assert result["status"] == "complete"
    assert [c["status"] for c in result["clips"]] == ["complete", "complete"]
    assert [c["id"] for c in result["clips"]] == [c["id"] for c in previews]
    urls = [c["audio_url"] for c in result["clips"]]
    assert urls == [fake.audio_url(c["id"]) for c in result["clips"]]
    assert all(c["duration"] == CLIP_DURATION for c in result["clips"])

    text = text_of(done)
    assert len(text.encode()) < 2048
    assert task_id in text
    for url in urls:
        assert url in text
    assert "Next:" in text
    assert "download_audio" in text
    links = [b for b in done.content if isinstance(b, types.ResourceLink)]
    assert sorted(str(link.uri) for link in links) == sorted(urls)

    # Progress arrived during each wait, each value above the last, with messages that follow the task.
    to_playable.check()
    to_final.check(at_least=1)
    before_preview = "generating" if api == "task" else "queued"  # the clip API has no running stage
    assert before_preview in " ".join(to_playable.messages)
    assert "streaming" in to_playable.messages[-1]
    assert "complete" in to_final.messages[-1]


async def test_generate_lyrics_returns_the_written_lyrics_and_title(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake) as client:
        result = await client.call_tool(
            "generate_lyrics", {"description": "a song about rain", "wait_seconds": WAIT}
        )

    assert not result.is_error, text_of(result)
    assert fake.bodies == [{"prompt": "a song about rain"}]
    assert result.structured_content["status"] == "complete"
    assert result.structured_content["lyrics_title"] == "Rain Song"
    assert "Rain on the window" in text_of(result)
    assert "generate_music(lyrics=" in text_of(result)


async def test_get_complete_song_asks_the_clip_api_to_join_the_chain(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake) as client:
        result = await client.call_tool("get_complete_song", {"clip_id": "clip-9-1", "wait_seconds": WAIT})

    assert not result.is_error, text_of(result)
    assert fake.bodies == [{"clip_id": "clip-9-1", "is_infill": False}]
    assert result.structured_content["kind"] == "concat"
    assert result.structured_content["api"] == "clip"
    assert result.structured_content["status"] in ("streaming", "complete")


# ---------------------------------------------------------------- what is sent


async def test_inspiration_mode_sends_the_description_as_gpt_description_prompt(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake) as client:
        result = await client.call_tool("generate_music", {"description": "  lofi rain ", "wait_seconds": 0})

    assert not result.is_error, text_of(result)
    assert fake.counts[SUBMIT] == 1
    (body,) = fake.bodies
    assert body["gpt_description_prompt"] == "lofi rain"
    assert not body.get("prompt")
    assert "tags" not in body
    assert "title" not in body
    assert body["mv"] == "chirp-v3-5"
    assert body["make_instrumental"] is False


async def test_custom_mode_sends_lyrics_as_prompt_with_tags_title_and_model_as_mv(tmp_path: Path) -> None:
    fake = FakeUpstream()
    arguments = {
        "lyrics": "[Verse]\nRain on the window",
        "tags": "lo-fi, piano",
        "title": "Window",
        "model": "chirp-v4-5",
        "wait_seconds": 0,
    }
    async with connect(tmp_path, fake, api="clip") as client:
        result = await client.call_tool("generate_music", arguments)

    assert not result.is_error, text_of(result)
    assert fake.counts["/suno/generate"] == 1
    (body,) = fake.bodies
    assert body["prompt"] == "[Verse]\nRain on the window"
    assert body["tags"] == "lo-fi, piano"
    assert body["title"] == "Window"
    assert body["mv"] == "chirp-v4-5"
    assert "gpt_description_prompt" not in body


async def test_the_default_model_comes_from_settings(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake, default_model="chirp-v5") as client:
        result = await client.call_tool("generate_music", {"description": "lofi rain", "wait_seconds": 0})

    assert not result.is_error, text_of(result)
    assert fake.bodies[0]["mv"] == "chirp-v5"


async def test_instrumental_sends_make_instrumental_and_needs_no_lyrics(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake) as client:
        result = await client.call_tool(
            "generate_music", {"tags": "ambient, subtle", "instrumental": True, "wait_seconds": 0}
        )

    assert not result.is_error, text_of(result)
    (body,) = fake.bodies
    assert body["make_instrumental"] is True
    assert body["tags"] == "ambient, subtle"


async def test_extend_music_sends_the_clip_the_second_and_the_task(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake) as client:
        result = await client.call_tool(
            "extend_music",
            {
                "clip_id": "clip-7-0",
                "continue_at": 61.5,
                "task_id": "task-7",
                "lyrics": "[Bridge]\nStill raining",
                "wait_seconds": 0,
            },
        )

    assert not result.is_error, text_of(result)
    assert fake.counts[SUBMIT] == 1
    (body,) = fake.bodies
    assert body["continue_clip_id"] == "clip-7-0"
    assert body["continue_at"] == 61.5
    assert body["task_id"] == "task-7"
    assert body["prompt"] == "[Bridge]\nStill raining"


async def test_extend_music_past_the_end_of_a_known_clip_is_refused_before_any_submit(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake) as client:
        started = await client.call_tool("generate_music", {"description": "lofi rain", "wait_seconds": 0})
        task_id = started.structured_content["task_id"]
        done = await until_complete(client, task_id)
        clip_id = done.structured_content["clips"][0]["id"]
        assert done.structured_content["clips"][0]["duration"] == CLIP_DURATION
        submits_before = fake.submits

        refused = await client.call_tool(
            "extend_music", {"clip_id": clip_id, "continue_at": CLIP_DURATION + 10, "wait_seconds": 0}
        )
        allowed = await client.call_tool(
            "extend_music", {"clip_id": clip_id, "continue_at": CLIP_DURATION - 10, "wait_seconds": 0}
        )

    text = error_of(refused)
    assert "continue_at" in text
    assert f"{CLIP_DURATION:g}" in text
    assert not allowed.is_error, text_of(allowed)
    assert fake.submits == submits_before + 1  # only the allowed one


# ---------------------------------------------------------------- the duplicate guard


async def test_the_same_generate_twice_submits_once_and_says_it_was_reused(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake) as client:
        first = await client.call_tool("generate_music", {"description": "lofi rain", "wait_seconds": 0})
        # Blind to case and spacing: the same request in other words is the same request.
        second = await client.call_tool("generate_music", {"description": "Lofi   RAIN", "wait_seconds": 0})

    assert not first.is_error
    assert not second.is_error
    assert fake.counts[SUBMIT] == 1
    assert first.structured_content["deduplicated"] is False
    assert second.structured_content["deduplicated"] is True
    assert second.structured_content["task_id"] == first.structured_content["task_id"]
    assert "reused" in text_of(second)
    assert "nothing new was paid" in text_of(second)


async def test_force_new_submits_an_identical_request_again(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake) as client:
        first = await client.call_tool("generate_music", {"description": "lofi rain", "wait_seconds": 0})
        again = await client.call_tool(
            "generate_music", {"description": "lofi rain", "wait_seconds": 0, "force_new": True}
        )

    assert not again.is_error, text_of(again)
    assert fake.counts[SUBMIT] == 2
    assert again.structured_content["deduplicated"] is False
    assert again.structured_content["task_id"] != first.structured_content["task_id"]


# ---------------------------------------------------------------- list_tasks, resources, prompts


async def test_list_tasks_shows_tasks_newest_first_and_filters_by_status(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake) as client:
        ok = await client.call_tool("generate_music", {"description": "lofi rain", "wait_seconds": 0})
        task_id = ok.structured_content["task_id"]
        await until_complete(client, task_id)
        fake.fail(SUBMIT, error_response(400, "Invalid prompt: refused"), times=1)
        failed = await client.call_tool("generate_music", {"description": "jazz storm", "wait_seconds": 0})
        assert failed.is_error

        everything = await client.call_tool("list_tasks", {})
        complete = await client.call_tool("list_tasks", {"status": "complete"})
        rejected = await client.call_tool("list_tasks", {"status": "failed"})
        running = await client.call_tool("list_tasks", {"status": "running"})
        one = await client.call_tool("list_tasks", {"limit": 1})

    assert everything.structured_content["count"] == 2
    assert [t["status"] for t in everything.structured_content["tasks"]] == ["failed", "complete"]
    assert [t["task_id"] for t in complete.structured_content["tasks"]] == [task_id]
    assert complete.structured_content["tasks"][0]["title"] == "Rain on the Window"
    assert len(complete.structured_content["tasks"][0]["clip_ids"]) == 2
    assert [t["status"] for t in rejected.structured_content["tasks"]] == ["failed"]
    assert "Invalid prompt" in rejected.structured_content["tasks"][0]["error"]
    assert running.structured_content == {"tasks": [], "count": 0}
    assert one.structured_content["count"] == 1


async def test_task_and_model_resources_read_as_json(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake) as client:
        started = await client.call_tool("generate_music", {"description": "lofi rain", "wait_seconds": 0})
        task_id = started.structured_content["task_id"]
        await until_complete(client, task_id)

        templates = await client.list_resource_templates()
        tasks = await client.read_resource("suno://tasks")
        task = await client.read_resource(f"suno://tasks/{task_id}")
        models = await client.read_resource("suno://models")

    assert any(t.uri_template == "suno://tasks/{task_id}" for t in templates.resource_templates)

    def body(result: types.ReadResourceResult) -> Any:
        (content,) = result.contents
        assert isinstance(content, types.TextResourceContents)
        assert content.mime_type == "application/json"
        return json.loads(content.text)

    listed = body(tasks)
    assert [t["task_id"] for t in listed["tasks"]] == [task_id]
    one = body(task)
    assert one["task_id"] == task_id
    assert one["status"] == "complete"
    assert [c["audio_url"] for c in one["clips"]] == [fake.audio_url(c["id"]) for c in one["clips"]]
    catalog = body(models)
    assert catalog["default"] == "chirp-v3-5"
    assert {"chirp-v3-5", "chirp-v4-5", "chirp-v5"} <= {m["name"] for m in catalog["models"]}
    assert all(m["lyrics_max_chars"] in (3000, 5000) for m in catalog["models"])


async def test_prompts_list_and_render_with_their_arguments(tmp_path: Path) -> None:
    async with connect(tmp_path) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        song = await client.get_prompt(
            "write_a_full_song", {"idea": "a lighthouse keeper's last night", "style": "sea shanty"}
        )
        instrumental = await client.get_prompt(
            "instrumental_for_use_case", {"use_case": "podcast intro", "mood": "warm and curious"}
        )

    assert set(prompts) == {"write_a_full_song", "instrumental_for_use_case"}
    assert [a.name for a in prompts["write_a_full_song"].arguments or []][:1] == ["idea"]
    assert any(
        a.name == "use_case" and a.required for a in prompts["instrumental_for_use_case"].arguments or []
    )

    def rendered(result: types.GetPromptResult) -> str:
        (message,) = result.messages
        assert isinstance(message.content, types.TextContent)
        return message.content.text

    assert "a lighthouse keeper's last night" in rendered(song)
    assert "sea shanty" in rendered(song)
    assert "generate_lyrics" in rendered(song)
    assert "podcast intro" in rendered(instrumental)
    assert "warm and curious" in rendered(instrumental)
    assert "instrumental=true" in rendered(instrumental)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_an_unknown_prompt_or_a_missing_argument_is_invalid_params_that_names_the_fix(
    tmp_path: Path, mode: str
) -> None:
    server = make_server(make_settings(tmp_path), FakeUpstream())
    async with Client(server, mode=mode) as client:
        with pytest.raises(MCPError) as unknown:
            await client.get_prompt("write_a_song")
        with pytest.raises(MCPError) as missing:
            await client.get_prompt("instrumental_for_use_case", {"mood": "calm"})

    # -32602 is what the spec gives an invalid prompt name; the SDK alone answers code 0 on a
    # 2025 connection and an anonymous -32603 on a 2026-07-28 one.
    assert unknown.value.code == types.INVALID_PARAMS
    assert "write_a_full_song" in unknown.value.error.message
    assert missing.value.code == types.INVALID_PARAMS
    assert "use_case" in missing.value.error.message


# ---------------------------------------------------------------- upstream failures


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(
            error_response(403, "insufficient balance"), ["insufficient balance", "Top up"], id="403-balance"
        ),
        pytest.param(
            error_response(429, "too many requests", **{"retry-after": "7"}),
            ["Rate limited", "try again in about 7 s", "Nothing was charged"],
            id="429",
        ),
        pytest.param(
            error_response(503, "prompt rejected by content policy"),
            ["content policy", "Rephrase"],
            id="503-content-policy",
        ),
        pytest.param(
            error_response(400, "Invalid prompt: prompt cannot be empty"),
            ["invalid", "Fix the arguments"],
            id="400",
        ),
    ],
)
async def test_a_refused_submit_is_a_tool_error_that_says_what_to_do(
    tmp_path: Path, answer: httpx.Response, expected: list[str]
) -> None:
    fake = FakeUpstream()
    fake.fail(SUBMIT, answer)
    async with connect(tmp_path, fake) as client:
        result = await client.call_tool("generate_music", {"description": "lofi rain", "wait_seconds": 0})
        listed = await client.call_tool("list_tasks", {})

    text = error_of(result)
    for phrase in expected:
        assert phrase in text
    assert fake.counts[SUBMIT] == 1  # a paid request is never repeated by the retry policy
    assert [t["status"] for t in listed.structured_content["tasks"]] == ["failed"]


async def test_a_429_on_a_submit_slows_the_requests_down_and_clean_submits_bring_the_rate_back(
    tmp_path: Path,
) -> None:
    fake = FakeUpstream()
    fake.fail(SUBMIT, error_response(429, "too many requests"), times=1)
    ceiling = 100.0  # requests/s: halved by the 429, four submits take ~60 ms
    settings = make_settings(tmp_path, max_requests_per_second=ceiling)
    quiet = Timing(first_poll_s=3600.0)  # no poll's clean answer mixes in
    async with open_service(
        settings, transport=httpx.MockTransport(fake), retry=FAST_RETRY, timing=quiet
    ) as service:
        limiter = service.poller.limiter
        with pytest.raises(RateLimitedError):
            await service.submit_music(MusicRequest(gpt_description_prompt="song 0", mv="chirp-v3-5"))
        assert limiter.rate == pytest.approx(ceiling / 2)
        for n in range(1, 4):
            await service.submit_music(MusicRequest(gpt_description_prompt=f"song {n}", mv="chirp-v3-5"))
        # Each clean answer creeps it up.
        assert limiter.rate == pytest.approx(ceiling / 2 + 3 * 0.02 * ceiling)
    assert fake.counts[SUBMIT] == 4


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_a_server_error_on_a_submit_is_recorded_as_unknown_and_never_paid_again(
    tmp_path: Path, status: int
) -> None:
    fake = FakeUpstream()
    fake.fail(SUBMIT, error_response(status, "gateway trouble"))
    async with connect(tmp_path, fake) as client:
        result = await client.call_tool("generate_music", {"description": "lofi rain", "wait_seconds": 0})
        listed = await client.call_tool("list_tasks", {})
        again = await client.call_tool("generate_music", {"description": "lofi rain", "wait_seconds": 0})

    text = error_of(result)
    assert "may have been accepted and charged" in text
    assert "list_tasks" in text
    assert [t["status"] for t in listed.structured_content["tasks"]] == ["unknown"]
    # The identical request is answered from the ledger: a gateway error may hide a paid job.
    assert again.structured_content["deduplicated"] is True
    assert fake.counts[SUBMIT] == 1


async def test_a_rejected_api_key_tells_the_model_to_set_gptproto_api_key(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake, api_key="not-the-key") as client:
        result = await client.call_tool("generate_music", {"description": "lofi rain", "wait_seconds": 0})

    text = error_of(result)
    assert "rejected" in text
    assert "GPTPROTO_API_KEY" in text
    assert "not-the-key" not in text
    assert fake.counts[SUBMIT] == 1


async def test_without_an_api_key_tools_are_listed_and_calls_explain_the_setup_without_requests(
    tmp_path: Path,
) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake, api_key=None) as client:
        tools = await client.list_tools()
        generate = await client.call_tool("generate_music", {"description": "lofi rain", "wait_seconds": 0})
        status = await client.call_tool("get_task_status", {"task_id": "task-1"})
        listed = await client.call_tool("list_tasks", {})

    assert {t.name for t in tools.tools} == TOOLS
    text = error_of(generate)
    assert "GPTPROTO_API_KEY" in text
    assert "restart" in text
    assert "GPTPROTO_API_KEY" in error_of(status)
    assert not listed.is_error
    assert listed.structured_content["count"] == 0  # nothing was recorded as sent
    assert fake.total == 0


async def test_a_dropped_connection_on_submit_may_have_been_charged_and_is_listed_as_unknown(
    tmp_path: Path,
) -> None:
    fake = FakeUpstream()
    fake.fail(SUBMIT, httpx.RemoteProtocolError("Server disconnected without sending a response."))
    async with connect(tmp_path, fake) as client:
        result = await client.call_tool("generate_music", {"description": "lofi rain", "wait_seconds": 0})
        unknown = await client.call_tool("list_tasks", {"status": "unknown"})
        # The duplicate guard does not hide an unknown submit: resubmitting needs force_new.
        again = await client.call_tool("generate_music", {"description": "lofi rain", "wait_seconds": 0})

    text = error_of(result)
    assert "charged" in text
    assert "list_tasks" in text
    assert "unknown" in text
    assert fake.counts[SUBMIT] == 1  # never retried: it may have been taken
    (task,) = unknown.structured_content["tasks"]
    assert task["status"] == "unknown"
    assert task["task_id"] is None
    assert again.structured_content["deduplicated"] is True
    assert again.structured_content["status"] == "unknown"
    assert "list_tasks" in text_of(again)


async def test_an_unreadable_answer_to_a_submit_may_have_been_charged_and_is_listed_as_unknown(
    tmp_path: Path,
) -> None:
    fake = FakeUpstream()
    fake.fail(SUBMIT, httpx.Response(200, content=b"<html>upstream hiccup</html>"))
    async with connect(tmp_path, fake) as client:
        result = await client.call_tool("generate_music", {"description": "lofi rain", "wait_seconds": 0})
        unknown = await client.call_tool("list_tasks", {"status": "unknown"})

    text = error_of(result)
    assert "not JSON" in text
    assert "charged" in text
    assert "list_tasks" in text
    assert fake.counts[SUBMIT] == 1
    assert unknown.structured_content["count"] == 1


async def test_a_timeout_looking_up_a_task_is_a_tool_error_that_says_to_try_again(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.fail("/v1/suno/fetch/", httpx.ReadTimeout("timed out"))
    async with connect(tmp_path, fake) as client:
        result = await client.call_tool("get_task_status", {"task_id": "task-elsewhere"})

    text = error_of(result)
    assert "did not answer in time" in text
    assert "get_task_status" in text
    assert fake.counts["/v1/suno/fetch/task-elsewhere"] >= 2  # reads are retried


async def test_a_timeout_while_following_a_known_task_keeps_its_last_state_and_says_so(
    tmp_path: Path,
) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake) as client:
        started = await client.call_tool("generate_music", {"description": "lofi rain", "wait_seconds": 0})
        task_id = started.structured_content["task_id"]
        fake.fail("/v1/suno/fetch/", httpx.ReadTimeout("timed out"))
        result = await client.call_tool("get_task_status", {"task_id": task_id})

    assert not result.is_error, text_of(result)
    assert result.structured_content["task_id"] == task_id
    assert "last status check failed" in result.structured_content["error"]
    assert "did not answer in time" in text_of(result)
    assert f"get_task_status(task_id='{task_id}'" in text_of(result)


async def test_an_unknown_task_id_is_a_tool_error_pointing_at_list_tasks(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake) as client:
        result = await client.call_tool("get_task_status", {"task_id": "task-404"})

    text = error_of(result)
    assert "Not found" in text
    assert "task-404" in text
    assert "list_tasks" in text
    assert fake.counts["/v1/suno/fetch/task-404"] >= 1


async def test_an_unreadable_status_answer_is_a_tool_error(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.fail("/v1/suno/fetch/", httpx.Response(200, content=b'{"code": "success", "data": [', headers={}))
    async with connect(tmp_path, fake) as client:
        result = await client.call_tool("get_task_status", {"task_id": "task-elsewhere"})

    text = error_of(result)
    assert "could not read" in text
    assert "not JSON" in text


# ---------------------------------------------------------------- download_audio


async def test_download_audio_saves_final_clips_under_the_data_dir_with_safe_names(tmp_path: Path) -> None:
    fake = FakeUpstream(title="../../etc/passwd: Rain? Night*")
    async with connect(tmp_path, fake) as client:
        started = await client.call_tool("generate_music", {"description": "lofi rain", "wait_seconds": 0})
        task_id = started.structured_content["task_id"]
        await until_complete(client, task_id)

        result = await client.call_tool("download_audio", {"task_id": task_id})
        status = await client.call_tool("get_task_status", {"task_id": task_id})

    assert not result.is_error, text_of(result)
    files = result.structured_content["files"]
    assert len(files) == 2
    assert result.structured_content["directory"] == str(tmp_path / "audio")
    # Exactly these files, whole, under data_dir/audio, named from the title without its path tricks.
    assert audio_files(tmp_path) == {f"etc-passwd-rain-night-{f['clip_id']}.mp3": AUDIO_BYTES for f in files}
    for saved in files:
        path = PurePath(saved["path"])
        assert path.parent == PurePath(tmp_path / "audio")
        assert re.fullmatch(r"[a-z0-9-]+\.mp3", path.name), path.name
        assert saved["bytes"] == len(AUDIO_BYTES)
        assert saved["mime_type"] == "audio/mpeg"
        assert saved["url"] == fake.audio_url(saved["clip_id"])
        assert path.name in text_of(result)

    links = [b for b in result.content if isinstance(b, types.ResourceLink)]
    local = sorted(str(link.uri) for link in links if str(link.uri).startswith("file://"))
    assert local == sorted(PurePath(f["path"]).as_uri() for f in files)
    assert {str(link.uri) for link in links} >= {f["url"] for f in files}
    assert fake.counts["/audio/" + files[0]["clip_id"] + ".mp3"] == 1
    assert {c["local_file"] for c in status.structured_content["clips"]} == {f["path"] for f in files}


async def test_download_audio_of_one_clip_saves_only_that_clip(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake, api="clip") as client:
        started = await client.call_tool("generate_music", {"description": "lofi rain", "wait_seconds": 0})
        task_id = started.structured_content["task_id"]
        done = await until_complete(client, task_id)
        clip_id = done.structured_content["clips"][1]["id"]
        result = await client.call_tool("download_audio", {"clip_id": clip_id})

    assert not result.is_error, text_of(result)
    (saved,) = result.structured_content["files"]
    assert saved["clip_id"] == clip_id
    assert audio_files(tmp_path) == {PurePath(saved["path"]).name: AUDIO_BYTES}


async def test_download_audio_before_completion_is_a_clear_tool_error(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake) as client:
        started = await client.call_tool("generate_music", {"description": "lofi rain", "wait_seconds": 0})
        task_id = started.structured_content["task_id"]
        result = await client.call_tool("download_audio", {"task_id": task_id})

    text = error_of(result)
    assert "no final audio yet" in text
    assert "get_task_status" in text
    assert audio_files(tmp_path) == {}
    assert not any(r.url.host == "cdn.test" for r in fake.requests)


async def test_download_audio_of_an_unknown_task_is_a_tool_error(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake) as client:
        result = await client.call_tool("download_audio", {"task_id": "task-never"})

    text = error_of(result)
    assert "task-never" in text
    assert "list_tasks" in text
    assert fake.total == 0
