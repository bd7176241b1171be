"""The sandbox over real loopback HTTP: both API families, media, faults and counters.

Most tests drive time with a fake clock (no sleeping); one runs on the real clock at high speed.
"""

from __future__ import annotations

import io
import json
import time
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest

from suno_mcp.sandbox import CONTENT_POLICY_TRIGGER, SandboxConfig, SandboxHandle, run_sandbox
from suno_mcp.sandbox.audio import SAMPLE_RATE, render_pcm
from tests.support.tls import TLS

KEY = "test-key"
CLIP_S = 8.0
# Default timings are 30 s to preview and 120 s to complete, each scaled by up to +-10% jitter.
PAST_GENERATING = 17.0
MID_STREAM = 60.0
PAST_COMPLETE = 133.0

# Field names of the vendor's /suno/generate example (000_*.txt), which our clips must carry.
VENDOR_BATCH_FIELDS = {"id", "clips", "metadata", "major_model_version", "status", "created_at", "batch_size"}
VENDOR_CLIP_FIELDS = {
    "id",
    "video_url",
    "audio_url",
    "image_url",
    "image_large_url",
    "is_video_pending",
    "major_model_version",
    "model_name",
    "metadata",
    "is_liked",
    "user_id",
    "display_name",
    "handle",
    "is_handle_updated",
    "avatar_image_url",
    "is_trashed",
    "reaction",
    "created_at",
    "status",
    "title",
    "play_count",
    "upvote_count",
    "is_public",
}
VENDOR_METADATA_FIELDS = {
    "tags",
    "prompt",
    "gpt_description_prompt",
    "audio_prompt_id",
    "history",
    "concat_history",
    "type",
    "duration",
    "refund_credits",
    "stream",
    "infill",
    "has_vocal",
    "is_audio_upload_tos_accepted",
    "error_type",
    "error_message",
}
TASK_ITEM_FIELDS = {
    "id",
    "status",
    "audio_url",
    "video_url",
    "image_url",
    "title",
    "tags",
    "prompt",
    "duration",
    "created_at",
    "model_name",
    "error_message",
}


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@asynccontextmanager
async def open_sandbox(
    clock: FakeClock | None = None, **config: Any
) -> AsyncIterator[tuple[SandboxHandle, httpx.AsyncClient]]:
    config.setdefault("clip_seconds", CLIP_S)
    async with (
        run_sandbox(SandboxConfig(**config), clock=clock) as sandbox,
        httpx.AsyncClient(
            base_url=sandbox.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10.0, verify=TLS
        ) as client,
    ):
        yield sandbox, client


def pcm_of(wav_bytes: bytes) -> tuple[int, bytes]:
    """Sample rate and frames of a WAV file (raises if it is not one)."""
    with wave.open(io.BytesIO(wav_bytes)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return w.getframerate(), w.readframes(w.getnframes())


def seconds_of(pcm: bytes) -> float:
    return len(pcm) / 2 / SAMPLE_RATE


async def submit_music(client: httpx.AsyncClient, **body: Any) -> str:
    response = await client.post("/v1/suno/submit/music", json=body)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["code"] == "success"
    assert payload["message"] == ""
    task_id: str = payload["data"]
    return task_id


async def fetch_items(client: httpx.AsyncClient, task_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/suno/fetch/{task_id}")
    assert response.status_code == 200, response.text
    assert response.json()["code"] == "success"
    items: list[dict[str, Any]] = response.json()["data"]
    return items


async def generate(client: httpx.AsyncClient, **body: Any) -> list[dict[str, Any]]:
    response = await client.post("/suno/generate", json=body)
    assert response.status_code == 200, response.text
    clips: list[dict[str, Any]] = response.json()["clips"]
    return clips


async def feed(client: httpx.AsyncClient, *ids: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/suno/feed", params={"ids": ",".join(ids)})
    assert response.status_code == 200, response.text
    clips: list[dict[str, Any]] = response.json()
    return clips


async def completed_clip_ids(client: httpx.AsyncClient, clock: FakeClock, **body: Any) -> list[str]:
    """Generate through the clip API and let the clips complete."""
    ids = [c["id"] for c in await generate(client, **body)]
    clock.advance(PAST_COMPLETE)
    return ids


async def download(client: httpx.AsyncClient, url: str) -> bytes:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-length"] == str(len(response.content))
    return response.content


# -- task API --------------------------------------------------------------------------------


async def test_task_api_music_task_goes_queued_processing_completed_with_two_clips() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (_, client):
        task_id = await submit_music(client, prompt="a tense pre-battle anthem", tags="epic, cinematic")

        items = await fetch_items(client, task_id)
        assert len(items) == 2
        assert {i["status"] for i in items} == {"queued"}
        assert all(i["audio_url"] == "" and i["duration"] is None for i in items)

        clock.advance(PAST_GENERATING)
        assert {i["status"] for i in await fetch_items(client, task_id)} == {"processing"}

        clock.advance(MID_STREAM - PAST_GENERATING)
        items = await fetch_items(client, task_id)
        assert {i["status"] for i in items} == {"processing"}
        assert all("/sandbox/preview/" in i["audio_url"] for i in items)

        clock.advance(PAST_COMPLETE - MID_STREAM)
        items = await fetch_items(client, task_id)
        assert {i["status"] for i in items} == {"completed"}
        for item in items:
            assert item.keys() >= TASK_ITEM_FIELDS
            assert item["audio_url"].endswith(f"/sandbox/audio/{item['id']}.wav")
            assert item["image_url"].endswith(f"/sandbox/image/{item['id']}.png")
            assert item["duration"] == CLIP_S
            assert isinstance(item["duration"], float)
            assert item["created_at"].endswith("Z")
            assert item["tags"] == "epic, cinematic"
            assert item["prompt"] == "a tense pre-battle anthem"
            assert item["model_name"] == "chirp-v3-0"
            assert item["error_message"] is None
        assert items[0]["id"] != items[1]["id"]


async def test_task_api_reports_the_requested_model_without_the_upload_suffix() -> None:
    async with open_sandbox(FakeClock()) as (_, client):
        task_id = await submit_music(client, gpt_description_prompt="lofi beats", mv="chirp-v3-5-upload")
        assert {i["model_name"] for i in await fetch_items(client, task_id)} == {"chirp-v3-5"}


async def test_unknown_task_id_is_404_task_not_found() -> None:
    async with open_sandbox() as (_, client):
        response = await client.get("/v1/suno/fetch/no-such-task")
        assert response.status_code == 404
        assert response.json() == {"code": "error", "data": None, "message": "Task not found"}


async def test_music_submit_without_prompt_is_400_with_the_vendor_message() -> None:
    async with open_sandbox() as (sandbox, client):
        response = await client.post("/v1/suno/submit/music", json={"prompt": "", "tags": "rock"})
        assert response.status_code == 400
        assert response.json() == {
            "code": "error",
            "data": None,
            "message": "Invalid prompt: prompt cannot be empty",
        }
        clip_response = await client.post("/suno/generate", json={"mv": "chirp-v3-5"})
        assert clip_response.status_code == 400
        assert clip_response.json()["error"]["message"] == "Invalid prompt: prompt cannot be empty"
        assert sandbox.state.stats.tasks_created == 0


async def test_submit_with_a_wrongly_typed_field_is_400() -> None:
    async with open_sandbox() as (_, client):
        response = await client.post(
            "/v1/suno/submit/music", json={"prompt": "x", "make_instrumental": "yes"}
        )
        assert response.status_code == 400
        assert response.json()["code"] == "error"
        not_json = await client.post("/v1/suno/submit/music", content=b"{nope")
        assert not_json.status_code == 400


async def test_lyrics_task_completes_with_a_title_and_sectioned_text() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (_, client):
        response = await client.post("/v1/suno/submit/lyrics", json={"prompt": "a song about rainy cities"})
        assert response.status_code == 200
        task_id = response.json()["data"]

        [item] = await fetch_items(client, task_id)
        assert item["id"] == task_id
        assert item["status"] == "queued"
        assert item["text"] == ""

        clock.advance(6.0)  # lyrics take ~5 s, +-10%
        [item] = await fetch_items(client, task_id)
        assert item["status"] == "completed"
        assert {"id", "status", "title", "text", "tags", "created_at"} <= item.keys()
        assert item["title"]
        assert "[Verse]" in item["text"]
        assert "[Chorus]" in item["text"]
        assert "Rainy" in item["text"] or "Cities" in item["text"]


# -- clip API --------------------------------------------------------------------------------


async def test_clip_api_generate_answers_in_the_shape_of_the_vendor_example() -> None:
    async with open_sandbox(FakeClock()) as (_, client):
        response = await client.post(
            "/suno/generate",
            json={"gpt_description_prompt": "an anthemic dancepop song", "mv": "chirp-v3-5", "prompt": ""},
        )
        assert response.status_code == 200
        batch = response.json()
        assert set(batch) == VENDOR_BATCH_FIELDS
        assert batch["status"] == "complete"
        assert batch["batch_size"] == 1
        assert batch["major_model_version"] == "v3"
        assert len(batch["clips"]) == 2
        for clip in batch["clips"]:
            assert set(clip) == VENDOR_CLIP_FIELDS
            assert set(clip["metadata"]) == VENDOR_METADATA_FIELDS
            assert clip["status"] == "submitted"
            assert clip["audio_url"] == ""
            assert clip["image_url"] is None
            assert clip["model_name"] == "chirp-v3-5"
            assert clip["metadata"]["type"] == "gen"
            assert clip["metadata"]["gpt_description_prompt"] == "an anthemic dancepop song"
            assert clip["metadata"]["has_vocal"] is True
            assert "[Verse]" in clip["metadata"]["prompt"]  # inspiration mode writes lyrics


async def test_clip_api_feed_follows_submitted_queued_streaming_complete() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (_, client):
        ids = [c["id"] for c in await generate(client, prompt="[Verse]\nhello", tags="heavy metal")]

        assert {c["status"] for c in await feed(client, *ids)} == {"submitted"}
        clock.advance(PAST_GENERATING)
        assert {c["status"] for c in await feed(client, *ids)} == {"queued"}

        clock.advance(MID_STREAM - PAST_GENERATING)
        clips = await feed(client, *ids)
        assert {c["status"] for c in clips} == {"streaming"}
        assert all(c["audio_url"].endswith(f"/sandbox/preview/{c['id']}.wav") for c in clips)
        assert all(c["metadata"]["duration"] is None for c in clips)

        clock.advance(PAST_COMPLETE - MID_STREAM)
        clips = await feed(client, *ids)
        assert [c["id"] for c in clips] == ids
        for clip in clips:
            assert clip["status"] == "complete"
            assert clip["audio_url"].endswith(f"/sandbox/audio/{clip['id']}.wav")
            assert clip["image_url"].endswith(f"/sandbox/image/{clip['id']}.png")
            assert clip["image_large_url"]
            assert clip["metadata"]["duration"] == CLIP_S
            assert clip["metadata"]["tags"] == "heavy metal"


async def test_feed_leaves_out_unknown_ids_and_answers_an_empty_list_for_none_known() -> None:
    async with open_sandbox(FakeClock()) as (_, client):
        ids = [c["id"] for c in await generate(client, gpt_description_prompt="jazz")]
        assert [c["id"] for c in await feed(client, "unknown-1", ids[1], "unknown-2")] == [ids[1]]
        assert await feed(client, "unknown-1") == []
        assert await feed(client) == []


# -- media -----------------------------------------------------------------------------------


async def test_preview_is_a_playable_partial_wav_that_grows_while_streaming() -> None:
    clock = FakeClock()
    async with open_sandbox(clock, clip_seconds=20.0) as (_, client):
        [clip, _] = await generate(client, gpt_description_prompt="synthwave drive", make_instrumental=True)
        preview_url = f"/sandbox/preview/{clip['id']}.wav"
        assert (await client.get(preview_url)).status_code == 404  # nothing streamed yet

        clock.advance(MID_STREAM)
        [streaming] = await feed(client, clip["id"])
        rate, early = pcm_of(await download(client, streaming["audio_url"]))
        assert rate == SAMPLE_RATE
        assert 5.0 <= seconds_of(early) < 20.0

        clock.advance(45.0)
        _, later = pcm_of(await download(client, preview_url))
        assert seconds_of(later) > seconds_of(early)
        assert later.startswith(early)

        clock.advance(PAST_COMPLETE)
        [done] = await feed(client, clip["id"])
        _, final = pcm_of(await download(client, done["audio_url"]))
        assert final.startswith(later)


async def test_final_wav_is_404_until_complete_then_has_the_clips_duration() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (_, client):
        task_id = await submit_music(client, prompt="calm piano", tags="piano, ambient")
        items = await fetch_items(client, task_id)
        assert (await client.get(f"/sandbox/audio/{items[0]['id']}.wav")).status_code == 404

        clock.advance(PAST_COMPLETE)
        for item in await fetch_items(client, task_id):
            response = await client.get(item["audio_url"])
            assert response.headers["content-type"] == "audio/wav"
            rate, pcm = pcm_of(await download(client, item["audio_url"]))
            assert rate == SAMPLE_RATE
            assert seconds_of(pcm) == pytest.approx(item["duration"], abs=1 / SAMPLE_RATE)
            assert max(pcm) > 0  # not silence


async def test_cover_image_is_a_png() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (_, client):
        [clip_id, _] = await completed_clip_ids(client, clock, gpt_description_prompt="folk")
        [clip] = await feed(client, clip_id)
        small = await download(client, clip["image_url"])
        large = await download(client, clip["image_large_url"])
        assert small.startswith(b"\x89PNG\r\n\x1a\n")
        assert large.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(large) > len(small)


async def test_media_urls_follow_the_host_the_client_used() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        [clip_id, _] = await completed_clip_ids(client, clock, gpt_description_prompt="rock")
        response = await client.get(
            "/v1/suno/feed", params={"ids": clip_id}, headers={"Host": "music.example:9999"}
        )
        assert response.json()[0]["audio_url"] == f"http://music.example:9999/sandbox/audio/{clip_id}.wav"
        [clip] = await feed(client, clip_id)
        assert clip["audio_url"].startswith(sandbox.url + "/")


async def test_unknown_clip_media_is_404() -> None:
    async with open_sandbox() as (_, client):
        for path in ("/sandbox/audio/nope.wav", "/sandbox/preview/nope.wav", "/sandbox/image/nope.png"):
            assert (await client.get(path)).status_code == 404


# -- extensions and concat --------------------------------------------------------------------


async def test_extension_continues_the_parent_music_seamlessly_from_continue_at() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        [parent_id, _] = await completed_clip_ids(client, clock, prompt="la la", tags="pop")
        task_id = await submit_music(client, continue_clip_id=parent_id, continue_at=5)
        clock.advance(PAST_COMPLETE)
        items = await fetch_items(client, task_id)
        assert len(items) == 2
        assert {i["status"] for i in items} == {"completed"}

        [ext] = await feed(client, items[0]["id"])
        assert ext["metadata"]["history"] == [
            {"id": parent_id, "continue_at": 5.0, "type": "gen", "source": "web", "infill": False}
        ]
        _, parent_pcm = pcm_of(await download(client, f"/sandbox/audio/{parent_id}.wav"))
        _, ext_pcm = pcm_of(await download(client, ext["audio_url"]))
        assert seconds_of(ext_pcm) == CLIP_S
        # The extension is the same endless piece, picked up at 5 s: no seam, no restart.
        style = sandbox.state.clips[parent_id].style
        assert parent_pcm[: 5 * SAMPLE_RATE * 2] + ext_pcm == render_pcm(style, 5 + CLIP_S)


async def test_concat_of_an_extension_chain_has_the_chain_duration_and_audio() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (_, client):
        [root_id, _] = await completed_clip_ids(client, clock, gpt_description_prompt="blues")
        [ext1_id, _] = await completed_clip_ids(client, clock, continue_clip_id=root_id, continue_at=5.5)
        [ext2_id, _] = await completed_clip_ids(client, clock, continue_clip_id=ext1_id, continue_at=3)

        response = await client.post(
            "/suno/generate/concat/v2", json={"clip_id": ext2_id, "is_infill": False}
        )
        assert response.status_code == 200
        concat = response.json()
        assert set(concat) == VENDOR_CLIP_FIELDS
        assert concat["status"] == "queued"
        assert concat["id"] not in (root_id, ext1_id, ext2_id)
        assert concat["metadata"]["type"] == "concat"
        assert [h["id"] for h in concat["metadata"]["concat_history"]] == [root_id, ext1_id, ext2_id]

        clock.advance(PAST_COMPLETE)
        [done] = await feed(client, concat["id"])
        assert done["status"] == "complete"
        assert done["metadata"]["duration"] == pytest.approx(5.5 + 3 + CLIP_S)

        _, whole = pcm_of(await download(client, done["audio_url"]))
        _, root = pcm_of(await download(client, f"/sandbox/audio/{root_id}.wav"))
        _, ext1 = pcm_of(await download(client, f"/sandbox/audio/{ext1_id}.wav"))
        _, ext2 = pcm_of(await download(client, f"/sandbox/audio/{ext2_id}.wav"))
        cut1, cut2 = round(5.5 * SAMPLE_RATE) * 2, 3 * SAMPLE_RATE * 2
        assert whole == root[:cut1] + ext1[:cut2] + ext2
        assert seconds_of(whole) == pytest.approx(5.5 + 3 + CLIP_S)


async def test_extending_an_unknown_clip_is_404_in_each_familys_error_shape() -> None:
    async with open_sandbox() as (_, client):
        task = await client.post("/v1/suno/submit/music", json={"continue_clip_id": "nope", "continue_at": 1})
        assert task.status_code == 404
        assert task.json()["code"] == "error"
        assert task.json()["data"] is None
        clip = await client.post("/suno/generate", json={"continue_clip_id": "nope", "continue_at": 1})
        assert clip.status_code == 404
        assert set(clip.json()["error"]) == {"message", "type", "code"}
        concat = await client.post("/suno/generate/concat/v2", json={"clip_id": "nope", "is_infill": False})
        assert concat.status_code == 404
        assert "error" in concat.json()


async def test_extending_past_the_parents_end_is_400() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        [parent_id, _] = await completed_clip_ids(client, clock, gpt_description_prompt="funk")
        for at in (CLIP_S + 0.5, -1):
            response = await client.post(
                "/v1/suno/submit/music", json={"continue_clip_id": parent_id, "continue_at": at}
            )
            assert response.status_code == 400
            assert "continue_at" in response.json()["message"]
        assert sandbox.state.stats.tasks_created == 1


async def test_uploaded_model_suffix_is_accepted_for_continuations() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (_, client):
        [parent_id, _] = await completed_clip_ids(client, clock, gpt_description_prompt="house")
        clips = await generate(client, continue_clip_id=parent_id, continue_at=2, mv="chirp-v3-5-upload")
        assert {c["model_name"] for c in clips} == {"chirp-v3-5"}
        assert clips[0]["metadata"]["history"][0]["type"] == "upload"


# -- auth and content policy ----------------------------------------------------------------


async def test_missing_or_wrong_key_is_401_in_each_familys_shape() -> None:
    async with (
        run_sandbox(SandboxConfig(api_key="right-key")) as sandbox,
        httpx.AsyncClient(base_url=sandbox.url) as client,
    ):
        body = {"prompt": "x"}
        no_key = await client.post("/v1/suno/submit/music", json=body)
        assert no_key.status_code == 401
        assert no_key.json()["code"] == "error"

        wrong = await client.post("/suno/generate", json=body, headers={"Authorization": "Bearer wrong"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["type"] == "authentication_error"

        bare = await client.post("/v1/suno/submit/music", json=body, headers={"Authorization": "right-key"})
        assert bare.status_code == 401

        right = await client.post(
            "/v1/suno/submit/music", json=body, headers={"Authorization": "Bearer right-key"}
        )
        assert right.status_code == 200
        assert sandbox.state.stats.tasks_created == 1


async def test_any_bearer_key_is_accepted_when_none_is_configured() -> None:
    async with run_sandbox() as sandbox, httpx.AsyncClient(base_url=sandbox.url) as client:
        ok = await client.get(
            "/v1/suno/feed", params={"ids": "x"}, headers={"Authorization": "Bearer anything"}
        )
        assert ok.status_code == 200
        empty = await client.get("/v1/suno/feed", params={"ids": "x"}, headers={"Authorization": "Bearer"})
        assert empty.status_code == 401


@pytest.mark.parametrize(
    "field", ["prompt", "gpt_description_prompt", "tags", "title"], ids=lambda f: f"in-{f}"
)
async def test_forbidden_word_is_refused_with_503_by_the_content_policy_and_creates_nothing(
    field: str,
) -> None:
    body = {"prompt": "a song", field: f"something {CONTENT_POLICY_TRIGGER.upper()} here"}
    async with open_sandbox() as (sandbox, client):
        task = await client.post("/v1/suno/submit/music", json=body)
        assert task.status_code == 503
        assert task.json()["code"] == "error"
        assert "content policy" in task.json()["message"]
        clip = await client.post("/suno/generate", json=body)
        assert clip.status_code == 503
        assert "content policy" in clip.json()["error"]["message"]
        assert sandbox.state.stats.tasks_created == 0


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "status"), [("429", 429), ("500", 500), ("503", 503)])
async def test_injected_error_faults_answer_in_each_familys_error_shape(kind: str, status: int) -> None:
    async with open_sandbox(slow_delay_s=0.0, retry_after_s=7) as (sandbox, client):
        sandbox.state.inject(kind, "submit_music")
        sandbox.state.inject(kind, "generate")

        task = await client.post("/v1/suno/submit/music", json={"prompt": "x"})
        assert task.status_code == status
        assert task.json()["code"] == "error"
        assert task.json()["data"] is None

        clip = await client.post("/suno/generate", json={"prompt": "x"})
        assert clip.status_code == status
        assert set(clip.json()["error"]) == {"message", "type", "code"}

        if kind == "429":
            assert task.headers["retry-after"] == clip.headers["retry-after"] == "7"
        assert sandbox.state.stats.tasks_created == 0
        assert sandbox.state.stats.faults_fired[kind] == 2


async def test_502_fault_answers_a_gateway_html_page() -> None:
    async with open_sandbox() as (sandbox, client):
        sandbox.state.inject("502", "fetch")
        response = await client.get("/v1/suno/fetch/anything")
        assert response.status_code == 502
        assert response.headers["content-type"].startswith("text/html")


async def test_malformed_fault_answers_200_with_a_body_that_is_not_json() -> None:
    async with open_sandbox() as (sandbox, client):
        sandbox.state.inject("malformed", "submit_music")
        response = await client.post("/v1/suno/submit/music", json={"prompt": "x"})
        assert response.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            response.json()
        assert sandbox.state.stats.tasks_created == 0


async def test_code_error_fault_is_200_code_error_on_the_task_api_and_500_on_the_clip_api() -> None:
    async with open_sandbox() as (sandbox, client):
        sandbox.state.inject("code_error", "submit_music")
        sandbox.state.inject("code_error", "feed")
        task = await client.post("/v1/suno/submit/music", json={"prompt": "x"})
        assert task.status_code == 200
        assert task.json()["code"] == "error"
        assert task.json()["data"] is None
        clip = await client.get("/v1/suno/feed", params={"ids": "x"})
        assert clip.status_code == 500
        assert "error" in clip.json()
        assert sandbox.state.stats.tasks_created == 0


async def test_slow_fault_delays_the_answer_then_answers_normally() -> None:
    async with open_sandbox(slow_delay_s=0.3) as (sandbox, client):
        sandbox.state.inject("slow", "submit_music")
        started = time.monotonic()
        task_id = await submit_music(client, prompt="x")
        assert time.monotonic() - started >= 0.3
        assert task_id in sandbox.state.tasks
        sandbox.state.inject("slow", "feed")
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/v1/suno/feed", params={"ids": "x"}, timeout=0.05)


async def test_drop_fault_breaks_the_connection_mid_response_after_creating_the_task() -> None:
    async with open_sandbox() as (sandbox, client):
        sandbox.state.inject("drop", "submit_music")
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/v1/suno/submit/music", json={"prompt": "x"})
        # The dangerous real-world case: the task exists though the client never heard so.
        assert sandbox.state.stats.tasks_created == 1
        assert len(sandbox.state.tasks) == 1
        # The server survives and answers the next request normally.
        assert await feed(client, "x") == []


async def test_drop_fault_on_media_cuts_a_download_short() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        [clip_id, _] = await completed_clip_ids(client, clock, gpt_description_prompt="metal")
        sandbox.state.inject("drop", "media")
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"/sandbox/audio/{clip_id}.wav")
        pcm_of(await download(client, f"/sandbox/audio/{clip_id}.wav"))


async def test_expired_fault_makes_a_media_url_answer_403() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        [clip_id, _] = await completed_clip_ids(client, clock, gpt_description_prompt="ska")
        sandbox.state.inject("expired")  # media is the only endpoint it can hit
        assert (await client.get("/v1/suno/feed", params={"ids": clip_id})).status_code == 200
        assert (await client.get(f"/sandbox/audio/{clip_id}.wav")).status_code == 403
        assert (await client.get(f"/sandbox/audio/{clip_id}.wav")).status_code == 200


async def test_clip_fail_fault_ends_task_clips_failed_with_a_message() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        sandbox.state.inject("clip_fail", "submit_music", count=2)
        task_id = await submit_music(client, prompt="x")
        assert {i["status"] for i in await fetch_items(client, task_id)} == {"queued"}
        clock.advance(PAST_COMPLETE)
        items = await fetch_items(client, task_id)
        assert {i["status"] for i in items} == {"failed"}
        assert all(i["error_message"] for i in items)
        assert (await client.get(f"/sandbox/audio/{items[0]['id']}.wav")).status_code == 404


async def test_clip_fail_fault_can_fail_one_clip_of_two_on_the_clip_api() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        sandbox.state.inject("clip_fail", "generate", count=1)
        ids = [c["id"] for c in await generate(client, prompt="x")]
        clock.advance(PAST_COMPLETE)
        failed, ok = await feed(client, *ids)
        assert failed["status"] == "error"
        assert failed["audio_url"].endswith("None.mp3")
        assert failed["metadata"]["error_type"]
        assert failed["metadata"]["error_message"]
        assert ok["status"] == "complete"


async def test_injected_faults_hit_only_their_endpoint_and_only_count_times() -> None:
    async with open_sandbox() as (sandbox, client):
        sandbox.state.inject("500", "fetch", count=2)
        assert (await client.get("/v1/suno/feed", params={"ids": "x"})).status_code == 200
        statuses = [(await client.get("/v1/suno/fetch/t")).status_code for _ in range(3)]
        assert statuses == [500, 500, 404]


async def test_faults_can_be_injected_and_cleared_over_http() -> None:
    async with open_sandbox() as (_, client):
        added = await client.post("/_sandbox/faults", json={"kind": "503", "endpoint": "feed", "count": 3})
        assert added.status_code == 200
        assert added.json()["pending"] == [{"kind": "503", "endpoint": "feed", "count": 3}]
        assert (await client.get("/v1/suno/feed")).status_code == 503

        bad = await client.post("/_sandbox/faults", json={"kind": "expired", "endpoint": "feed"})
        assert bad.status_code == 400

        assert (await client.delete("/_sandbox/faults")).status_code == 200
        assert (await client.get("/v1/suno/feed")).status_code == 200


async def test_probabilistic_faults_repeat_exactly_with_the_same_seed() -> None:
    async def statuses(seed: int) -> list[int]:
        async with open_sandbox(seed=seed, faults="429:0.2,500:0.1@fetch,503:0.1") as (_, client):
            return [(await client.get("/v1/suno/fetch/t")).status_code for _ in range(40)]

    first, again, other = await statuses(7), await statuses(7), await statuses(8)
    assert first == again
    assert first != other
    assert {429, 500, 503, 404} <= set(first)


async def test_same_seed_and_requests_render_the_same_audio() -> None:
    async def first_clip_audio(seed: int) -> bytes:
        clock = FakeClock()
        async with open_sandbox(clock, seed=seed) as (_, client):
            [clip_id, _] = await completed_clip_ids(client, clock, gpt_description_prompt="bossa nova")
            return await download(client, f"/sandbox/audio/{clip_id}.wav")

    assert await first_clip_audio(3) == await first_clip_audio(3)


# -- counting --------------------------------------------------------------------------------


async def test_requests_responses_and_created_tasks_are_counted_and_served_as_json() -> None:
    async with open_sandbox() as (sandbox, client):
        sandbox.state.inject("429", "submit_music")
        body = {"prompt": "counted"}
        assert (await client.post("/v1/suno/submit/music", json=body)).status_code == 429
        task_id = await submit_music(client, **body)
        await fetch_items(client, task_id)
        await client.get("/v1/suno/fetch/missing")
        await client.post("/v1/suno/submit/music", json={"prompt": "x"}, headers={"Authorization": ""})

        stats = sandbox.state.stats
        assert stats.requests["submit_music"] == 3
        assert stats.requests["fetch"] == 2
        assert stats.responses[("submit_music", 429)] == 1
        assert stats.responses[("submit_music", 200)] == 1
        assert stats.responses[("submit_music", 401)] == 1
        assert stats.responses[("fetch", 404)] == 1
        assert stats.tasks_created == 1
        assert stats.clips_created == 2
        assert stats.faults_fired["429"] == 1

        served = (await client.get("/_sandbox/stats", headers={"Authorization": ""})).json()
        assert served["requests"]["submit_music"] == 3
        assert served["responses"]["submit_music"] == {"200": 1, "401": 1, "429": 1}
        assert served["tasks_created"] == 1


async def test_submits_by_fingerprint_reveal_a_request_that_was_paid_for_twice() -> None:
    async with open_sandbox() as (sandbox, client):
        sandbox.state.inject("500", "submit_music")
        body = {"prompt": "only once", "tags": "pop"}
        await client.post("/v1/suno/submit/music", json=body)  # refused: not paid
        await submit_music(client, **body)
        assert max(sandbox.state.stats.submits_by_fingerprint.values()) == 1

        await submit_music(client, tags="pop", prompt="only once")  # same body, other key order
        assert sorted(sandbox.state.stats.submits_by_fingerprint.values()) == [2]


# -- running ---------------------------------------------------------------------------------


async def test_at_speed_1000_a_real_clock_task_completes_in_about_a_tenth_of_a_second() -> None:
    async with open_sandbox(speed=1000.0) as (_, client):
        task_id = await submit_music(client, gpt_description_prompt="quick jingle", make_instrumental=True)
        seen: list[str] = []
        with anyio.fail_after(10):
            while True:
                items = await fetch_items(client, task_id)
                status = items[0]["status"]
                if not seen or seen[-1] != status:
                    seen.append(status)
                if status == "completed":
                    break
                await anyio.sleep(0.01)  # polling interval inside the bounded wait
        assert seen[-1] == "completed"
        assert set(seen) <= {"queued", "processing", "completed"}
        pcm_of(await download(client, items[0]["audio_url"]))


async def test_sandbox_writes_nothing_to_stdout_and_frees_its_port(capfd: pytest.CaptureFixture[str]) -> None:
    async with open_sandbox() as (sandbox, client):
        sandbox.state.inject("drop", "feed")
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/v1/suno/feed")
        url = sandbox.url
    assert capfd.readouterr().out == ""
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(url + "/_sandbox/stats")
