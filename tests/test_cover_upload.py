"""cover_music and upload_audio through the MCP server, over the fake upstream: what goes on the
wire, what the ledger keeps, and what is refused before anything is sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp import Client

from suno_mcp.domain.inputs import ArgumentError
from suno_mcp.service.wiring import open_service
from tests.support.helpers_upstream import FAST_RETRY, KEY, FakeUpstream, connect, make_settings

pytestmark = pytest.mark.anyio

WAIT = 5
GENERATE = "/suno/generate"
UPLOAD = "/v1/suno/uploads/audio-url"
SONG_URL = "https://files.example.com/Songs/Rainy%20Day.mp3"
LYRICS = "[Verse]\nRain on the window"


def text_of(result: types.CallToolResult) -> str:
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    return first.text


async def call(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return result.structured_content


async def complete_song(client: Client, **args: Any) -> dict[str, Any]:
    """A generated task whose clips are complete (the fake completes them within a few fetches)."""
    task = await call(client, "generate_music", {"lyrics": LYRICS, "tags": "lofi", "wait_seconds": 0, **args})
    for _ in range(10):
        if task["status"] == "complete":
            return task
        task = await call(client, "get_task_status", {"task_id": task["task_id"], "wait_seconds": WAIT})
    raise AssertionError(task)


def cover_bodies(fake: FakeUpstream) -> list[dict[str, Any]]:
    return [b for b in fake.bodies if b.get("task") == "cover"]


@pytest.mark.parametrize("api", ["task", "clip"])
async def test_a_cover_sends_the_vendors_cover_body_to_the_clip_api_with_the_clips_own_lyrics(
    tmp_path: Path, api: str
) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake, api=api) as client:
        song = await complete_song(client, title="Rain")
        clip_id = song["clips"][0]["id"]
        cover = await call(
            client, "cover_music", {"clip_id": clip_id, "tags": "jazz, brass", "wait_seconds": 0}
        )

    assert cover["kind"] == "cover"
    assert cover["api"] == "clip"  # the endpoint exists only there, with the same key
    assert cover_bodies(fake) == [
        {
            "task": "cover",
            "generation_type": "TEXT",
            "cover_clip_id": clip_id,
            "mv": "chirp-v3-5-tau",
            "prompt": LYRICS,
            "tags": "jazz, brass",
            "negative_tags": "",
            "title": "Rain",
            "continue_clip_id": None,
            "continue_at": None,
            "infill_start_s": None,
            "infill_end_s": None,
        }
    ]
    generate_auth = [r for r in fake.requests if r.url.path == GENERATE][-1].headers["authorization"]
    assert generate_auth == f"Bearer {KEY}"


async def test_a_cover_with_its_own_lyrics_title_and_styles_to_avoid_sends_them(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake) as client:
        song = await complete_song(client)
        await call(
            client,
            "cover_music",
            {
                "clip_id": song["clips"][1]["id"],
                "tags": "synthwave",
                "lyrics": "[Verse]\nNeon rain",
                "title": "Neon",
                "negative_tags": "acoustic, folk",
                "model": "chirp-v3-5",
                "wait_seconds": 0,
            },
        )

    (body,) = cover_bodies(fake)
    assert (body["prompt"], body["title"], body["negative_tags"]) == (
        "[Verse]\nNeon rain",
        "Neon",
        "acoustic, folk",
    )


async def test_the_same_cover_twice_is_sent_once_and_the_second_says_it_was_reused(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake) as client:
        song = await complete_song(client)
        args = {"clip_id": song["clips"][0]["id"], "tags": "jazz", "wait_seconds": 0}
        first = await call(client, "cover_music", args)
        second = await call(client, "cover_music", args)

    assert len(cover_bodies(fake)) == 1
    assert second["deduplicated"] is True
    assert second["task_id"] == first["task_id"]


async def test_a_cover_of_a_clip_still_generating_is_refused_naming_the_clip_and_the_wait(
    tmp_path: Path,
) -> None:
    fake = FakeUpstream(hold_at="queued")
    async with connect(tmp_path, fake) as client:
        song = await call(client, "generate_music", {"lyrics": LYRICS, "wait_seconds": 0})
        song = await call(client, "get_task_status", {"task_id": song["task_id"], "wait_seconds": 0})
        clip_id = song["clips"][0]["id"]
        refused = await client.call_tool("cover_music", {"clip_id": clip_id, "tags": "jazz"})

    assert refused.is_error
    text = text_of(refused)
    assert f"clip_id: clip {clip_id} is not complete" in text
    assert "get_task_status" in text
    assert fake.counts[GENERATE] == 0


async def test_a_cover_of_a_clip_whose_lyrics_are_unknown_asks_for_lyrics(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake) as client:
        upload = await call(client, "upload_audio", {"url": SONG_URL})
        refused = await client.call_tool("cover_music", {"clip_id": upload["clips"][0]["id"], "tags": "jazz"})

    assert refused.is_error
    assert "lyrics: the lyrics of clip" in text_of(refused)
    assert fake.counts[GENERATE] == 0


@pytest.mark.parametrize(
    "answer",
    [
        {"status": "success", "id": "{id}"},
        {"status": "success", "clip_id": "{id}"},
        {"status": "success", "data": {"id": "{id}"}},
        {"code": "success", "data": {"clip_id": "{id}", "status": "complete"}},
    ],
    ids=["id", "clip_id", "data.id", "data.clip_id"],
)
async def test_an_upload_reads_the_clip_id_wherever_the_answer_puts_it_and_keeps_an_upload_row(
    tmp_path: Path, answer: dict[str, Any]
) -> None:
    fake = FakeUpstream(upload_answer=answer)
    async with connect(tmp_path, fake) as client:
        upload = await call(client, "upload_audio", {"url": SONG_URL})
        listed = await call(client, "list_tasks", {})

    assert fake.bodies == [{"url": SONG_URL}]
    assert (upload["kind"], upload["api"], upload["status"]) == ("upload", "clip", "complete")
    (clip,) = upload["clips"]
    assert clip["id"].startswith("m_upload-")
    assert clip["title"] == "Rainy Day"
    assert "extend_music" in upload["next_step"]
    (row,) = listed["tasks"]
    assert (row["kind"], row["clip_ids"]) == ("upload", [clip["id"]])
    assert SONG_URL in row["request"]


async def test_an_upload_answer_without_an_id_is_an_error_naming_the_keys_received_and_not_kept(
    tmp_path: Path,
) -> None:
    fake = FakeUpstream(upload_answer={"status": "success", "data": {"state": "ok"}})
    async with connect(tmp_path, fake) as client:
        refused = await client.call_tool("upload_audio", {"url": SONG_URL})
        fake.upload_answer = {"status": "success", "id": "{id}"}
        again = await call(client, "upload_audio", {"url": SONG_URL})

    assert refused.is_error
    text = text_of(refused)
    assert "status, data, data.state" in text
    assert "Nothing was paid" in text
    assert KEY not in text
    assert "Traceback" not in text
    # A refused upload is not "unknown" (nothing was paid), so asking again sends it again.
    assert fake.counts[UPLOAD] == 2
    assert again["deduplicated"] is False


async def test_the_same_url_uploaded_twice_is_sent_once(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake) as client:
        first = await call(client, "upload_audio", {"url": SONG_URL})
        second = await call(client, "upload_audio", {"url": SONG_URL})
        other = await call(client, "upload_audio", {"url": SONG_URL.replace("Songs", "songs")})

    assert fake.counts[UPLOAD] == 2  # a path differing in case is another file
    assert second["deduplicated"] is True
    assert second["clips"] == first["clips"]
    assert other["clips"] != first["clips"]


@pytest.mark.parametrize("api", ["task", "clip"])
async def test_extending_an_upload_sends_the_upload_model_without_being_told(
    tmp_path: Path, api: str
) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake, api=api) as client:
        upload = await call(client, "upload_audio", {"url": SONG_URL})
        clip_id = upload["clips"][0]["id"]
        await call(client, "extend_music", {"clip_id": clip_id, "continue_at": 30, "wait_seconds": 0})
        refused = await client.call_tool(
            "extend_music", {"clip_id": clip_id, "continue_at": 30, "model": "chirp-v4", "wait_seconds": 0}
        )

    (body,) = [b for b in fake.bodies if "continue_clip_id" in b]
    assert body["mv"] == "chirp-v3-5-upload"
    assert body["continue_clip_id"] == clip_id
    assert "task_id" not in body  # an upload is no task-API task
    assert refused.is_error
    assert "model: chirp-v4 has no documented model for continuing uploaded audio" in text_of(refused)


async def test_extending_a_task_api_clip_sends_its_task_as_the_follow_up(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with connect(tmp_path, fake) as client:
        song = await complete_song(client)
        await call(
            client, "extend_music", {"clip_id": song["clips"][0]["id"], "continue_at": 60, "wait_seconds": 0}
        )

    extension = fake.bodies[-1]
    assert extension["task_id"] == song["task_id"]
    assert extension["mv"] == "chirp-v3-5"


async def test_the_service_itself_checks_covers_and_extensions_against_its_ledger_before_sending(
    tmp_path: Path,
) -> None:
    fake = FakeUpstream()
    settings = make_settings(tmp_path, api="task")
    async with open_service(settings, transport=httpx.MockTransport(fake), retry=FAST_RETRY) as service:
        with pytest.raises(ArgumentError, match="clip_id: no clip c-unknown is known here"):
            await service.cover_request(
                clip_id="c-unknown", tags="jazz", lyrics=None, title=None, negative_tags=None, model=None
            )
        # A clip the ledger does not know: no follow-up task and no duration to check against.
        extension = await service.extend_request(
            clip_id="c-unknown",
            continue_at=30,
            lyrics=None,
            tags=None,
            title=None,
            instrumental=False,
            model=None,
            task_id=None,
        )

    assert (extension.continue_clip_id, extension.continue_at, extension.task_id) == ("c-unknown", 30, None)
    assert fake.requests == []


async def test_the_models_resource_names_the_cover_and_upload_models(tmp_path: Path) -> None:
    async with connect(tmp_path) as client:
        resource = await client.read_resource("suno://models")
    content = resource.contents[0]
    assert isinstance(content, types.TextResourceContents)
    models = {m["name"]: m for m in json.loads(content.text)["models"]}
    assert models["chirp-v3-5"]["cover_model"] == "chirp-v3-5-tau"
    assert models["chirp-v3-5"]["upload_model"] == "chirp-v3-5-upload"
    assert "cover_model" not in models["chirp-v4"]
