"""The HTTP client of both API families against ``httpx.MockTransport``: wire shapes, parsing,
error mapping, id checks, secrecy of the key and audio downloads.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from suno_mcp.domain.errors import (
    AuthenticationError,
    ConfigurationError,
    ContentPolicyError,
    InsufficientBalanceError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    SunoError,
    TransportError,
    UpstreamConnectionError,
    UpstreamTimeoutError,
)
from suno_mcp.domain.ids import check_id
from suno_mcp.domain.models import MusicRequest, Status, TaskRef
from suno_mcp.upstream.downloads import download_to
from suno_mcp.upstream.families import ClipApi, TaskApi
from suno_mcp.upstream.retry import RetryPolicy
from suno_mcp.upstream.transport import RAW_ANSWER_MAX, Upstream

# Marked here as well as by conftest: parametrized async tests need the mark at collection time.
pytestmark = pytest.mark.anyio

BASE = "https://upstream.test"
KEY = "k-123"
TASK_ID = "736a6f88-bd29-4b1e-b110-37132a5325ac"
AUDIO = "https://cdn1.suno.ai/7070ec00.mp3"

Reply = Callable[[httpx.Request], httpx.Response]


class Script:
    """A fake upstream: answers requests with the given replies in order (the last one repeats)
    and records every request it saw."""

    def __init__(self, *replies: Reply) -> None:
        self._replies = replies
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._replies[min(len(self.requests), len(self._replies)) - 1](request)

    @property
    def last_json(self) -> Any:
        return json.loads(self.requests[-1].content)


def reply_json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return lambda request: httpx.Response(status, json=body, headers=headers)


def reply_raw(content: bytes, status: int = 200, content_type: str = "text/html") -> Reply:
    return lambda request: httpx.Response(status, content=content, headers={"content-type": content_type})


def reply_raising(exc_type: type[httpx.TransportError]) -> Reply:
    def reply(request: httpx.Request) -> httpx.Response:
        raise exc_type("simulated network failure", request=request)

    return reply


@asynccontextmanager
async def upstream(
    script: Script, *, api_key: str | None = KEY, max_attempts: int = 1
) -> AsyncIterator[Upstream]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(script)) as http:
        policy = RetryPolicy(max_attempts=max_attempts, base_delay=0.0, max_delay=0.0)
        yield Upstream(http, base_url=BASE, api_key=api_key, retry=policy)


def fetch_answer(*items: dict[str, Any]) -> dict[str, Any]:
    return {"code": "success", "data": list(items), "message": ""}


def fetch_item(**fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": TASK_ID,
        "status": "queued",
        "audio_url": "",
        "video_url": "",
        "image_url": "",
        "title": "Before the Charge",
        "tags": "cinematic,epic",
        "prompt": "[Verse] drums",
        "duration": None,
        "created_at": "2025-07-08T06:45:04Z",
        "model_name": "chirp-v3-5",
        "error_message": None,
    }
    item.update(fields)
    return item


def suno_clip(clip_id: str, status: str, audio_url: str = "", **metadata: Any) -> dict[str, Any]:
    """A clip object the way /suno/generate and /v1/suno/feed show it (trimmed vendor example)."""
    return {
        "id": clip_id,
        "video_url": "",
        "audio_url": audio_url,
        "image_url": None,
        "image_large_url": None,
        "is_video_pending": False,
        "major_model_version": "v3",
        "model_name": "chirp-v3",
        "metadata": {
            "tags": "heavy metal",
            "prompt": "[Verse]\nStars they shine above me",
            "gpt_description_prompt": None,
            "type": "gen",
            "duration": None,
            "stream": True,
            "error_type": None,
            "error_message": None,
            **metadata,
        },
        "is_liked": False,
        "display_name": "AmbientLens971",
        "created_at": "2024-07-22T07:56:36.710Z",
        "status": status,
        "title": "Starry ",
        "play_count": 0,
        "is_public": False,
    }


# The shape of the vendor's /suno/generate example answer: a batch id, its clips and batch metadata.
VENDOR_GENERATE_ANSWER: dict[str, Any] = {
    "id": "3d5f0ee4-1d7b-410a-bafd-60a3978284d1",
    "clips": [
        suno_clip("7070ec00-462e-42ac-9b9f-1074977f473f", "submitted"),
        suno_clip("00e6b9e4-c29c-4cfe-8d7a-5b3f06ff5b90", "submitted"),
    ],
    "metadata": {"tags": "heavy metal", "type": "gen", "duration": None, "stream": True},
    "major_model_version": "v3",
    "status": "complete",
    "created_at": "2024-07-22T07:56:36.699Z",
    "batch_size": 1,
}


# ---------------------------------------------------------------- task API: submit


async def test_submit_music_posts_every_wire_field_with_the_bearer_key() -> None:
    script = Script(reply_json({"code": "success", "data": TASK_ID, "message": ""}))
    request = MusicRequest(
        gpt_description_prompt="an anthemic dancepop song",
        prompt="[Verse] all night long",
        tags="dance,pop",
        title="All Night",
        make_instrumental=True,
        mv="chirp-v3-5",
        continue_clip_id="clip-123456",
        continue_at=30.5,
        task_id="task-001",
    )
    async with upstream(script) as up:
        task = await TaskApi(up).submit_music(request)

    sent = script.requests[0]
    assert (sent.method, sent.url.path) == ("POST", "/v1/suno/submit/music")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert script.last_json == {
        "gpt_description_prompt": "an anthemic dancepop song",
        "prompt": "[Verse] all night long",
        "tags": "dance,pop",
        "title": "All Night",
        "make_instrumental": True,
        "mv": "chirp-v3-5",
        "continue_clip_id": "clip-123456",
        "continue_at": 30.5,
        "task_id": "task-001",
    }
    assert (task.task_id, task.api, task.kind, task.status) == (TASK_ID, "task", "music", Status.PENDING)


async def test_submit_music_leaves_unset_fields_out_of_the_body() -> None:
    script = Script(reply_json({"code": "success", "data": TASK_ID, "message": ""}))
    async with upstream(script) as up:
        await TaskApi(up).submit_music(MusicRequest(gpt_description_prompt="calm piano", mv="chirp-v3-5"))

    assert script.last_json == {
        "gpt_description_prompt": "calm piano",
        "make_instrumental": False,
        "mv": "chirp-v3-5",
    }


INSPIRATION = MusicRequest(gpt_description_prompt="calm piano", prompt="", mv="chirp-v3-5")
INSTRUMENTAL = MusicRequest(tags="ambient,piano", title="Still", make_instrumental=True, mv="chirp-v3-5")
SONG = MusicRequest(prompt="[Verse] waves", tags="folk", mv="chirp-v3-0")
EXTEND = MusicRequest(prompt="", mv="chirp-v3-5", continue_clip_id="clip-1", continue_at=8.0, task_id="t-0")


@pytest.mark.parametrize(
    ("request_", "task_body", "clip_body"),
    [
        pytest.param(
            INSPIRATION,
            {"gpt_description_prompt": "calm piano", "make_instrumental": False, "mv": "chirp-v3-5"},
            {
                "gpt_description_prompt": "calm piano",
                "prompt": "",
                "make_instrumental": False,
                "mv": "chirp-v3-5",
            },
            id="inspiration",
        ),
        pytest.param(
            INSTRUMENTAL,
            {
                "prompt": "",
                "tags": "ambient,piano",
                "title": "Still",
                "make_instrumental": True,
                "mv": "chirp-v3-5",
            },
            {
                "prompt": "",
                "tags": "ambient,piano",
                "title": "Still",
                "make_instrumental": True,
                "mv": "chirp-v3-5",
            },
            id="custom-instrumental-without-lyrics",
        ),
        pytest.param(
            SONG,
            {"prompt": "[Verse] waves", "tags": "folk", "make_instrumental": False, "mv": "chirp-v3-0"},
            {"prompt": "[Verse] waves", "tags": "folk", "make_instrumental": False, "mv": "chirp-v3-0"},
            id="custom-with-lyrics",
        ),
        pytest.param(
            EXTEND,
            {
                "make_instrumental": False,
                "mv": "chirp-v3-5",
                "continue_clip_id": "clip-1",
                "continue_at": 8,
                "task_id": "t-0",
            },
            {
                "prompt": "",
                "make_instrumental": False,
                "mv": "chirp-v3-5",
                "continue_clip_id": "clip-1",
                "continue_at": 8,
                "task_id": "t-0",
            },
            id="extend-follow-up",
        ),
    ],
)
async def test_each_family_gets_the_body_its_examples_show(
    request_: MusicRequest, task_body: dict[str, Any], clip_body: dict[str, Any]
) -> None:
    task_script = Script(reply_json({"code": "success", "data": TASK_ID, "message": ""}))
    clip_script = Script(reply_json(VENDOR_GENERATE_ANSWER))
    async with upstream(task_script) as up:
        await TaskApi(up).submit_music(request_)
    async with upstream(clip_script) as up:
        await ClipApi(up).submit_music(request_)

    assert task_script.last_json == task_body
    assert clip_script.last_json == clip_body


def test_the_fingerprint_body_is_the_same_whichever_family_sends_it() -> None:
    # The duplicate guard hashes wire_body(); the per-family shaping must not leak into it.
    assert INSPIRATION.wire_body() == {
        "gpt_description_prompt": "calm piano",
        "prompt": "",
        "make_instrumental": False,
        "mv": "chirp-v3-5",
    }


async def test_submit_music_sends_a_whole_continue_at_as_an_integer() -> None:
    script = Script(reply_json({"code": "success", "data": TASK_ID, "message": ""}))
    async with upstream(script) as up:
        await TaskApi(up).submit_music(
            MusicRequest(continue_clip_id="clip-123456", continue_at=8.0, mv="chirp-v3-5")
        )

    sent = script.last_json
    assert sent["continue_at"] == 8
    assert type(sent["continue_at"]) is int


async def test_submit_lyrics_posts_only_the_prompt() -> None:
    script = Script(reply_json({"code": "success", "data": "lyr-1", "message": ""}))
    async with upstream(script) as up:
        task = await TaskApi(up).submit_lyrics("a song about the sea")

    sent = script.requests[0]
    assert (sent.method, sent.url.path) == ("POST", "/v1/suno/submit/lyrics")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert script.last_json == {"prompt": "a song about the sea"}
    assert (task.task_id, task.kind, task.status) == ("lyr-1", "lyrics", Status.PENDING)


@pytest.mark.parametrize(
    "answer",
    [
        {"code": "success", "data": None, "message": ""},
        {"code": "success", "data": "", "message": ""},
        {"code": "success", "data": "  ", "message": ""},
        {"code": "success", "data": "two words", "message": ""},
        {"code": "success", "data": ["x"], "message": ""},
        {"code": "success", "data": {"state": "ok"}, "message": ""},
        {"code": "success", "data": True, "message": ""},
        {"code": "success", "message": "accepted"},
    ],
    ids=repr,
)
async def test_submit_answer_without_any_task_id_is_malformed_and_kept(answer: Any) -> None:
    script = Script(reply_json(answer))
    async with upstream(script) as up:
        with pytest.raises(MalformedResponseError) as caught:
            await TaskApi(up).submit_music(MusicRequest(prompt="x", mv="chirp-v3-5"))

    assert caught.value.raw_answer is not None
    assert json.loads(caught.value.raw_answer) == answer


@pytest.mark.parametrize(
    ("answer", "task_id"),
    [
        ({"code": "success", "data": TASK_ID, "message": ""}, TASK_ID),
        ({"code": "success", "data": {"task_id": TASK_ID}, "message": ""}, TASK_ID),
        ({"code": "success", "data": {"id": TASK_ID, "status": "SUBMITTED"}}, TASK_ID),
        ({"code": "success", "data": {"taskId": TASK_ID}}, TASK_ID),
        ({"code": "success", "task_id": TASK_ID}, TASK_ID),
        ({"id": TASK_ID}, TASK_ID),
        ({"code": "success", "data": 123456789}, "123456789"),
        ({"code": "success", "data": "../etc/passwd"}, "../etc/passwd"),
        ({"code": "success", "data": "suno:task/1+2"}, "suno:task/1+2"),
    ],
    ids=repr,
)
async def test_submit_answer_keeps_the_task_id_wherever_it_is(answer: Any, task_id: str) -> None:
    script = Script(reply_json(answer))
    async with upstream(script) as up:
        task = await TaskApi(up).submit_music(MusicRequest(prompt="x", mv="chirp-v3-5"))

    assert task.task_id == task_id
    assert task.raw_answer is not None
    assert json.loads(task.raw_answer) == answer


async def test_a_task_with_an_odd_submitted_id_is_followable_at_its_encoded_path() -> None:
    odd = "suno:task/1+2"
    script = Script(
        reply_json({"code": "success", "data": {"task_id": odd}}),
        reply_json(fetch_answer(fetch_item(id="clip-1", status="completed", audio_url=AUDIO))),
    )
    async with upstream(script) as up:
        api = TaskApi(up)
        submitted = await api.submit_music(MusicRequest(prompt="x", mv="chirp-v3-5"))
        tasks = await api.fetch([TaskRef(submitted.task_id, "task")])

    assert script.requests[1].url.raw_path == b"/v1/suno/fetch/suno%3Atask%2F1%2B2"
    assert tasks[odd].status is Status.COMPLETE


async def test_the_raw_submit_answer_is_cut_to_its_limit_and_never_holds_the_key() -> None:
    answer = {"code": "success", "data": TASK_ID, "echo": f"Bearer {KEY}", "pad": "p" * 5000}
    script = Script(reply_json(answer))
    async with upstream(script) as up:
        task = await TaskApi(up).submit_music(MusicRequest(prompt="x", mv="chirp-v3-5"))

    assert task.raw_answer is not None
    assert len(task.raw_answer) == RAW_ANSWER_MAX
    assert KEY not in task.raw_answer
    assert "Bearer ***" in task.raw_answer
    assert "raw_answer" not in task.model_dump()


async def test_an_unreadable_submit_answer_is_kept_on_the_error() -> None:
    script = Script(reply_raw(b"<html>accepted " + KEY.encode() + b"</html>", 200))
    async with upstream(script) as up:
        with pytest.raises(MalformedResponseError) as caught:
            await TaskApi(up).submit_music(MusicRequest(prompt="x", mv="chirp-v3-5"))

    assert caught.value.raw_answer == "<html>accepted ***</html>"


# ---------------------------------------------------------------- task API: fetch


async def test_fetch_gets_the_task_path_with_the_bearer_key() -> None:
    script = Script(reply_json(fetch_answer(fetch_item())))
    async with upstream(script) as up:
        await TaskApi(up).fetch_one(TASK_ID)

    sent = script.requests[0]
    assert (sent.method, str(sent.url)) == ("GET", f"{BASE}/v1/suno/fetch/{TASK_ID}")
    assert sent.headers["authorization"] == f"Bearer {KEY}"


async def test_fetch_with_one_item_gives_one_clip() -> None:
    item = fetch_item(
        status="completed", audio_url=AUDIO, duration=182.4, video_url="https://cdn1.suno.ai/v.mp4"
    )
    script = Script(reply_json(fetch_answer(item)))
    async with upstream(script) as up:
        task = await TaskApi(up).fetch_one(TASK_ID)

    assert (task.task_id, task.api, task.status) == (TASK_ID, "task", Status.COMPLETE)
    [clip] = task.clips
    assert clip.id == TASK_ID
    assert clip.audio_url == AUDIO
    assert clip.preview_url is None
    assert clip.duration == 182.4
    assert clip.video_url == "https://cdn1.suno.ai/v.mp4"
    assert (clip.title, clip.tags, clip.model) == ("Before the Charge", "cinematic,epic", "chirp-v3-5")
    assert clip.lyrics == "[Verse] drums"


async def test_fetch_with_two_items_gives_two_clips() -> None:
    script = Script(
        reply_json(
            fetch_answer(
                fetch_item(id="clip-a", status="completed", audio_url=AUDIO),
                fetch_item(id="clip-b", status="completed", audio_url=AUDIO.replace("7070", "0e6b")),
            )
        )
    )
    async with upstream(script) as up:
        task = await TaskApi(up).fetch_one(TASK_ID)

    assert [c.id for c in task.clips] == ["clip-a", "clip-b"]
    assert task.status is Status.COMPLETE


@pytest.mark.parametrize(
    ("raw", "audio_url", "expected"),
    [
        ("queued", "", Status.PENDING),
        ("processing", "", Status.RUNNING),
        ("completed", AUDIO, Status.COMPLETE),
        ("failed", "", Status.FAILED),
    ],
)
async def test_fetch_normalizes_task_statuses(raw: str, audio_url: str, expected: Status) -> None:
    script = Script(reply_json(fetch_answer(fetch_item(status=raw, audio_url=audio_url))))
    async with upstream(script) as up:
        task = await TaskApi(up).fetch_one(TASK_ID)

    assert task.status is expected
    assert task.clips[0].status is expected
    assert task.clips[0].raw_status == raw


async def test_processing_item_with_an_audio_url_is_streaming_with_a_preview_only() -> None:
    script = Script(reply_json(fetch_answer(fetch_item(status="processing", audio_url=AUDIO))))
    async with upstream(script) as up:
        task = await TaskApi(up).fetch_one(TASK_ID)

    [clip] = task.clips
    assert clip.status is Status.STREAMING
    assert clip.preview_url == AUDIO
    assert clip.audio_url is None
    assert task.status is Status.STREAMING


async def test_completed_item_without_audio_is_not_complete_yet() -> None:
    script = Script(reply_json(fetch_answer(fetch_item(status="completed", audio_url=""))))
    async with upstream(script) as up:
        task = await TaskApi(up).fetch_one(TASK_ID)

    assert task.status is Status.RUNNING


async def test_unknown_status_is_running_and_keeps_the_raw_word() -> None:
    script = Script(reply_json(fetch_answer(fetch_item(status="mastering"))))
    async with upstream(script) as up:
        task = await TaskApi(up).fetch_one(TASK_ID)

    assert task.clips[0].status is Status.RUNNING
    assert task.clips[0].raw_status == "mastering"
    assert task.raw_status == "mastering"


async def test_unknown_fields_in_a_fetch_answer_are_ignored() -> None:
    item = fetch_item(status="completed", audio_url=AUDIO, brand_new_field={"nested": [1, 2]}, score=0.9)
    script = Script(reply_json({**fetch_answer(item), "trace_id": "abc", "extra": None}))
    async with upstream(script) as up:
        task = await TaskApi(up).fetch_one(TASK_ID)

    assert task.status is Status.COMPLETE
    assert task.clips[0].audio_url == AUDIO


async def test_failed_task_carries_the_upstream_error_message() -> None:
    item = fetch_item(status="failed", audio_url="https://cdn1.suno.ai/None.mp3", error_message="bad lyrics")
    script = Script(reply_json(fetch_answer(item)))
    async with upstream(script) as up:
        task = await TaskApi(up).fetch_one(TASK_ID)

    assert task.status is Status.FAILED
    assert task.error == "bad lyrics"
    assert (task.clips[0].audio_url, task.clips[0].preview_url) == (None, None)


async def test_lyrics_fetch_gives_title_and_text() -> None:
    item = {"id": "lyr-1", "status": "complete", "title": "Sea Song", "text": "[Verse]\nWaves roll in"}
    script = Script(reply_json(fetch_answer(item)))
    async with upstream(script) as up:
        task = await TaskApi(up).fetch_one("lyr-1", "lyrics")

    assert (task.kind, task.status) == ("lyrics", Status.COMPLETE)
    assert task.lyrics_title == "Sea Song"
    assert task.lyrics_text == "[Verse]\nWaves roll in"


NOT_FOUND = {"code": "error", "data": None, "message": "Task not found"}


@pytest.mark.parametrize(
    "answer",
    [
        {
            "code": "success",
            "data": {"id": "lyr:1", "status": "complete", "title": "Sea", "text": "[Verse] waves"},
        },
        {"code": "success", "data": [{"title": "Sea", "lyrics": "[Verse] waves"}]},
        {"title": "Sea", "text": "[Verse] waves", "status": "SUCCESS"},
        {"data": {"title": "Sea", "lyric": "[Verse] waves"}},
    ],
    ids=["wrapped-object", "wrapped-list", "bare", "data-no-status"],
)
async def test_a_lyrics_task_unknown_to_fetch_is_read_from_the_lyrics_path(answer: dict[str, Any]) -> None:
    script = Script(reply_json(NOT_FOUND, 404), reply_json(answer))
    async with upstream(script) as up:
        task = await TaskApi(up).fetch_one("lyr:1", "lyrics")

    assert [r.url.raw_path for r in script.requests] == [
        b"/v1/suno/fetch/lyr%3A1",
        b"/v1/suno/generate/lyrics/lyr%3A1",
    ]
    assert (task.task_id, task.kind, task.status) == ("lyr:1", "lyrics", Status.COMPLETE)
    assert (task.lyrics_title, task.lyrics_text) == ("Sea", "[Verse] waves")


async def test_a_lyrics_task_still_being_written_on_the_lyrics_path_is_running() -> None:
    script = Script(reply_json(NOT_FOUND), reply_json({"code": "success", "data": {"status": "processing"}}))
    async with upstream(script) as up:
        task = await TaskApi(up).fetch_one("lyr-1", "lyrics")

    assert task.status is Status.RUNNING


async def test_a_lyrics_task_neither_path_knows_is_left_out() -> None:
    script = Script(reply_json(NOT_FOUND))
    async with upstream(script) as up:
        tasks = await TaskApi(up).fetch([TaskRef("lyr-1", "task", kind="lyrics")])

    assert tasks == {}
    assert len(script.requests) == 2


async def test_a_music_task_unknown_to_fetch_is_not_looked_for_elsewhere() -> None:
    script = Script(reply_json(NOT_FOUND))
    async with upstream(script) as up:
        with pytest.raises(NotFoundError):
            await TaskApi(up).fetch_one("t-1")

    assert len(script.requests) == 1


async def test_fetch_of_several_tasks_leaves_out_the_ones_the_upstream_does_not_know() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/gone"):
            return httpx.Response(200, json={"code": "error", "data": None, "message": "Task not found"})
        return httpx.Response(200, json=fetch_answer(fetch_item(id="here", status="queued")))

    script = Script(handler)
    async with upstream(script) as up:
        tasks = await TaskApi(up).fetch([TaskRef("here", "task"), TaskRef("gone", "task")])

    assert list(tasks) == ["here"]
    assert len(script.requests) == 2


# ---------------------------------------------------------------- clip API


async def test_generate_posts_to_suno_generate_and_parses_the_vendor_example() -> None:
    script = Script(reply_json(VENDOR_GENERATE_ANSWER))
    request = MusicRequest(gpt_description_prompt="an anthemic dancepop song", mv="chirp-v3-5")
    async with upstream(script) as up:
        task = await ClipApi(up).submit_music(request)

    sent = script.requests[0]
    assert (sent.method, sent.url.path) == ("POST", "/suno/generate")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    # The vendor's scenario-4 body: inspiration mode sends an empty prompt on this family.
    assert script.last_json == {
        "gpt_description_prompt": "an anthemic dancepop song",
        "mv": "chirp-v3-5",
        "prompt": "",
        "make_instrumental": False,
    }
    assert (task.task_id, task.api) == ("3d5f0ee4-1d7b-410a-bafd-60a3978284d1", "clip")
    assert [c.id for c in task.clips] == [
        "7070ec00-462e-42ac-9b9f-1074977f473f",
        "00e6b9e4-c29c-4cfe-8d7a-5b3f06ff5b90",
    ]
    # The batch says "complete" but its clips were only submitted: the clips decide.
    assert task.status is Status.PENDING
    assert task.raw_status == "submitted"
    clip = task.clips[0]
    assert (clip.audio_url, clip.preview_url, clip.image_url) == (None, None, None)
    assert (clip.tags, clip.model, clip.title) == ("heavy metal", "chirp-v3", "Starry")
    assert clip.lyrics == "[Verse]\nStars they shine above me"


async def test_generate_answer_wrapped_in_code_and_data_is_unwrapped_and_kept() -> None:
    answer = {"code": "success", "data": VENDOR_GENERATE_ANSWER, "message": ""}
    script = Script(reply_json(answer))
    async with upstream(script) as up:
        task = await ClipApi(up).submit_music(MusicRequest(prompt="x", mv="chirp-v3-5"))

    assert task.task_id == "3d5f0ee4-1d7b-410a-bafd-60a3978284d1"
    assert [c.id for c in task.clips] == [
        "7070ec00-462e-42ac-9b9f-1074977f473f",
        "00e6b9e4-c29c-4cfe-8d7a-5b3f06ff5b90",
    ]
    assert task.raw_answer is not None
    assert task.raw_answer.startswith('{"code":"success"')


async def test_concat_answer_wrapped_in_data_is_unwrapped() -> None:
    script = Script(reply_json({"code": "success", "data": suno_clip("whole-1", "queued")}))
    async with upstream(script) as up:
        task = await ClipApi(up).concat("last-clip")

    assert (task.task_id, [c.id for c in task.clips]) == ("whole-1", ["whole-1"])


async def test_generate_answer_without_clips_is_malformed_and_kept() -> None:
    script = Script(reply_json({"code": "success", "data": {"state": "accepted"}}))
    async with upstream(script) as up:
        with pytest.raises(MalformedResponseError) as caught:
            await ClipApi(up).submit_music(MusicRequest(prompt="x", mv="chirp-v3-5"))

    assert caught.value.raw_answer == '{"code":"success","data":{"state":"accepted"}}'


async def test_clips_with_odd_ids_are_kept_and_asked_for_in_the_feed() -> None:
    odd = ["m_2e584f32:1", "a/b", "c+d"]
    script = Script(
        reply_json({"id": "batch:1", "clips": [suno_clip(i, "submitted") for i in odd]}),
        reply_json([suno_clip(i, "queued") for i in odd]),
    )
    async with upstream(script) as up:
        api = ClipApi(up)
        task = await api.submit_music(MusicRequest(prompt="x", mv="chirp-v3-5"))
        tasks = await api.fetch([TaskRef(task.task_id, "clip", clip_ids=tuple(c.id for c in task.clips))])

    assert task.task_id == "batch:1"
    assert script.requests[1].url.params["ids"] == "m_2e584f32:1,a/b,c+d"
    assert b"c%2Bd" in script.requests[1].url.raw_path  # a '+' is not read back as a space
    assert [c.id for c in tasks["batch:1"].clips] == odd


async def test_feed_asks_for_the_clips_of_several_tasks_in_one_request() -> None:
    script = Script(
        reply_json(
            [
                suno_clip("a1", "complete", AUDIO, duration=120.0),
                suno_clip("a2", "streaming", AUDIO),
                suno_clip("b1", "queued"),
                suno_clip("b2", "submitted"),
            ]
        )
    )
    refs = [
        TaskRef("batch-a", "clip", clip_ids=("a1", "a2")),
        TaskRef("batch-b", "clip", clip_ids=("b1", "b2")),
    ]
    async with upstream(script) as up:
        tasks = await ClipApi(up).fetch(refs)

    assert len(script.requests) == 1
    sent = script.requests[0]
    assert (sent.method, sent.url.path) == ("GET", "/v1/suno/feed")
    assert sent.url.params["ids"] == "a1,a2,b1,b2"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert tasks["batch-a"].status is Status.STREAMING
    assert tasks["batch-b"].status is Status.PENDING
    assert [c.id for c in tasks["batch-a"].clips] == ["a1", "a2"]


async def test_feed_sends_comma_separated_ids_and_reads_a_bare_array() -> None:
    script = Script(reply_json([suno_clip("a", "queued"), suno_clip("b", "queued")]))
    async with upstream(script) as up:
        clips = await ClipApi(up).feed(["a", "b"])

    assert script.requests[0].url.params["ids"] == "a,b"
    assert sorted(clips) == ["a", "b"]


async def test_feed_with_more_ids_than_one_request_holds_is_split() -> None:
    ids = [f"c{i}" for i in range(ClipApi.MAX_IDS_PER_FEED + 1)]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json=[suno_clip(i, "queued") for i in request.url.params["ids"].split(",")]
        )

    script = Script(handler)
    async with upstream(script) as up:
        clips = await ClipApi(up).feed(ids)

    assert len(script.requests) == 2
    assert sorted(clips) == sorted(ids)


async def test_feed_leaves_out_tasks_whose_clips_the_upstream_does_not_know() -> None:
    script = Script(reply_json([suno_clip("a1", "queued")]))
    refs = [TaskRef("batch-a", "clip", clip_ids=("a1",)), TaskRef("batch-z", "clip", clip_ids=("z1",))]
    async with upstream(script) as up:
        tasks = await ClipApi(up).fetch(refs)

    assert list(tasks) == ["batch-a"]


@pytest.mark.parametrize(
    ("raw", "audio_url", "expected"),
    [
        ("submitted", "", Status.PENDING),
        ("queued", "", Status.PENDING),
        ("streaming", AUDIO, Status.STREAMING),
        ("complete", AUDIO, Status.COMPLETE),
        ("error", "https://cdn1.suno.ai/None.mp3", Status.FAILED),
    ],
)
async def test_feed_follows_the_suno_clip_lifecycle(raw: str, audio_url: str, expected: Status) -> None:
    script = Script(reply_json([suno_clip("a", raw, audio_url)]))
    async with upstream(script) as up:
        clips = await ClipApi(up).feed(["a"])

    assert clips["a"].status is expected
    assert clips["a"].raw_status == raw


async def test_streaming_clip_audio_is_a_preview_not_the_final_file() -> None:
    script = Script(reply_json([suno_clip("a", "streaming", AUDIO)]))
    async with upstream(script) as up:
        clips = await ClipApi(up).feed(["a"])

    assert (clips["a"].preview_url, clips["a"].audio_url) == (AUDIO, None)


async def test_complete_clip_has_final_audio_and_metadata_duration() -> None:
    clip = {**suno_clip("a", "complete", AUDIO, duration=184.32), "video_url": "https://cdn1.suno.ai/a.mp4"}
    script = Script(reply_json([clip]))
    async with upstream(script) as up:
        clips = await ClipApi(up).feed(["a"])

    assert clips["a"].audio_url == AUDIO
    assert clips["a"].preview_url is None
    assert clips["a"].duration == 184.32
    assert clips["a"].video_url == "https://cdn1.suno.ai/a.mp4"


async def test_errored_clip_drops_its_junk_url_and_keeps_the_error_message() -> None:
    clip = suno_clip(
        "a", "error", "https://cdn1.suno.ai/None.mp3", error_message="Unable to generate: artist name"
    )
    script = Script(reply_json([clip]))
    async with upstream(script) as up:
        tasks = await ClipApi(up).fetch([TaskRef("batch", "clip", clip_ids=("a",))])

    [parsed] = tasks["batch"].clips
    assert (parsed.audio_url, parsed.preview_url) == (None, None)
    assert parsed.error == "Unable to generate: artist name"
    assert tasks["batch"].status is Status.FAILED
    assert tasks["batch"].error == "Unable to generate: artist name"


async def test_concat_posts_the_clip_id_and_parses_the_one_clip_answer() -> None:
    script = Script(reply_json(suno_clip("whole-1", "queued")))
    async with upstream(script) as up:
        task = await ClipApi(up).concat("last-clip")

    sent = script.requests[0]
    assert (sent.method, sent.url.path) == ("POST", "/suno/generate/concat/v2")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert script.last_json == {"clip_id": "last-clip", "is_infill": False}
    assert (task.task_id, task.kind, task.api) == ("whole-1", "concat", "clip")
    assert [c.id for c in task.clips] == ["whole-1"]


# ---------------------------------------------------------------- error mapping (both families)


async def _task_submit(up: Upstream) -> object:
    return await TaskApi(up).submit_music(MusicRequest(prompt="x", mv="chirp-v3-5"))


async def _task_fetch(up: Upstream) -> object:
    return await TaskApi(up).fetch_one(TASK_ID)


async def _clip_generate(up: Upstream) -> object:
    return await ClipApi(up).submit_music(MusicRequest(prompt="x", mv="chirp-v3-5"))


async def _clip_feed(up: Upstream) -> object:
    return await ClipApi(up).feed(["a", "b"])


CALLS = pytest.mark.parametrize(
    "call",
    [_task_submit, _task_fetch, _clip_generate, _clip_feed],
    ids=["task-submit", "task-fetch", "clip-generate", "clip-feed"],
)

ERROR_CASES = [
    pytest.param(
        reply_json({"code": "error", "data": None, "message": "invalid token"}, 401),
        AuthenticationError,
        "invalid token",
        id="401-auth",
    ),
    pytest.param(
        reply_json({"code": "error", "data": None, "message": "user quota is not enough"}, 403),
        InsufficientBalanceError,
        "user quota is not enough",
        id="403-balance",
    ),
    pytest.param(
        reply_json({"code": "error", "data": None, "message": "Task not found"}, 404),
        NotFoundError,
        "Task not found",
        id="404-not-found",
    ),
    pytest.param(
        reply_json({"code": "error", "data": None, "message": "Task not found"}),
        NotFoundError,
        "Task not found",
        id="200-task-not-found",
    ),
    pytest.param(
        reply_json(
            {"code": "error", "data": None, "message": "Your prompt violates our content policy"}, 503
        ),
        ContentPolicyError,
        "content policy",
        id="503-content-policy",
    ),
    pytest.param(
        reply_json({"code": "error", "data": None, "message": "internal error"}, 500),
        ServerError,
        "internal error",
        id="500-server",
    ),
    pytest.param(reply_raw(b"<html>502 Bad Gateway</html>", 502), ServerError, "Bad Gateway", id="502-html"),
    pytest.param(reply_raw(b"", 503), ServerError, "HTTP 503", id="503-empty"),
    pytest.param(
        reply_json({"code": "error", "data": None, "message": "Invalid prompt: prompt cannot be empty"}, 400),
        InvalidRequestError,
        "prompt cannot be empty",
        id="400-invalid",
    ),
    pytest.param(
        reply_json({"code": "error", "data": None, "message": "Invalid prompt: prompt cannot be empty"}),
        InvalidRequestError,
        "prompt cannot be empty",
        id="200-code-error-invalid",
    ),
    pytest.param(
        reply_json({"code": "error", "data": None, "message": "insufficient balance"}),
        InsufficientBalanceError,
        "insufficient balance",
        id="200-code-error-balance",
    ),
    pytest.param(
        reply_json(
            {"error": {"message": "Invalid API key", "type": "authentication_error", "code": 401}}, 401
        ),
        AuthenticationError,
        "Invalid API key",
        id="401-error-object",
    ),
    pytest.param(
        reply_json(
            {"error": {"message": "clip is still generating", "type": "invalid_request", "code": "x"}}
        ),
        InvalidRequestError,
        "clip is still generating",
        id="200-error-object",
    ),
    pytest.param(
        reply_json({"error": {"message": "upstream overloaded", "type": "server_error", "code": None}}, 502),
        ServerError,
        "upstream overloaded",
        id="502-error-object",
    ),
    pytest.param(
        reply_raw(b"<html>hello</html>", 200), MalformedResponseError, "not JSON", id="200-not-json"
    ),
]


@CALLS
@pytest.mark.parametrize(("reply", "error_type", "message"), ERROR_CASES)
async def test_upstream_error_answers_become_typed_errors(
    call: Callable[[Upstream], Any], reply: Reply, error_type: type[SunoError], message: str
) -> None:
    script = Script(reply)
    async with upstream(script) as up:
        with pytest.raises(error_type) as caught:
            await call(up)

    assert type(caught.value) is error_type
    assert message in caught.value.message
    assert KEY not in str(caught.value)
    assert len(script.requests) == 1


@CALLS
async def test_429_becomes_rate_limited_with_retry_after(call: Callable[[Upstream], Any]) -> None:
    script = Script(reply_json({"code": "error", "message": "slow down"}, 429, headers={"Retry-After": "7"}))
    async with upstream(script) as up:
        with pytest.raises(RateLimitedError) as caught:
            await call(up)

    assert caught.value.retry_after == 7.0
    assert caught.value.status_code == 429
    assert KEY not in str(caught.value)


async def test_429_without_retry_after_has_no_retry_after() -> None:
    script = Script(reply_json({"code": "error", "message": "slow down"}, 429))
    async with upstream(script) as up:
        with pytest.raises(RateLimitedError) as caught:
            await _task_fetch(up)

    assert caught.value.retry_after is None


@CALLS
@pytest.mark.parametrize(
    ("exc_type", "error_type", "request_sent"),
    [
        (httpx.ConnectError, UpstreamConnectionError, False),
        (httpx.ConnectTimeout, UpstreamTimeoutError, False),
        (httpx.ReadTimeout, UpstreamTimeoutError, True),
        (httpx.RemoteProtocolError, UpstreamConnectionError, True),
        (httpx.ReadError, UpstreamConnectionError, True),
        (httpx.WriteError, UpstreamConnectionError, True),
    ],
)
async def test_network_failures_become_transport_errors_that_say_whether_the_request_left(
    call: Callable[[Upstream], Any],
    exc_type: type[httpx.TransportError],
    error_type: type[TransportError],
    request_sent: bool,
) -> None:
    script = Script(reply_raising(exc_type))
    async with upstream(script) as up:
        with pytest.raises(error_type) as caught:
            await call(up)

    assert type(caught.value) is error_type
    assert caught.value.request_sent is request_sent
    assert isinstance(caught.value.__cause__, exc_type)
    assert KEY not in str(caught.value)


# ---------------------------------------------------------------- the key


@CALLS
@pytest.mark.parametrize("api_key", [None, ""], ids=["none", "empty"])
async def test_missing_api_key_is_a_configuration_error_before_any_request(
    call: Callable[[Upstream], Any], api_key: str | None
) -> None:
    script = Script(reply_json({"code": "success", "data": TASK_ID}))
    async with upstream(script, api_key=api_key, max_attempts=3) as up:
        with pytest.raises(ConfigurationError, match="GPTPROTO_API_KEY"):
            await call(up)

    assert script.requests == []


async def test_the_key_does_not_appear_in_the_upstream_repr() -> None:
    async with upstream(Script(reply_json({}))) as up:
        shown = repr(up)

    assert KEY not in shown
    assert BASE in shown
    assert KEY not in str(up)


# ---------------------------------------------------------------- ids


# What can never be an id: empty, overlong, whitespace, control or invisible characters.
BAD_IDS = ["a b", " a", "", "x" * 129, "abc\n", "a\tb", "a\x00b", "a\x7fb", "a\u200bb"]
# Odd but possible upstream ids: they are followed, percent-encoded in URLs.
ODD_IDS = ["a/b", "..", ".", "../etc", "a?b=1", "a#frag", "a%2Fb", "m_1:2.3+4", "é"]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_check_id_refuses_what_can_never_be_an_id(bad: str) -> None:
    with pytest.raises(ValueError, match="printable characters without spaces"):
        check_id(bad)


@pytest.mark.parametrize("good", ["a", "x" * 128, TASK_ID, "clip_1-B", *ODD_IDS])
def test_check_id_accepts_any_printable_id_without_spaces(good: str) -> None:
    assert check_id(good) == good


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
async def test_bad_ids_are_refused_before_any_request(bad: str) -> None:
    script = Script(reply_json(fetch_answer(fetch_item())))
    async with upstream(script) as up:
        with pytest.raises(ValueError, match="task_id"):
            await TaskApi(up).fetch_one(bad)
        with pytest.raises(ValueError, match="clip_id"):
            await ClipApi(up).feed(["good", bad])
        with pytest.raises(ValueError, match="clip_id"):
            await ClipApi(up).concat(bad)

    assert script.requests == []


@pytest.mark.parametrize(
    ("odd", "path"),
    [
        ("a/b", "/v1/suno/fetch/a%2Fb"),
        ("..", "/v1/suno/fetch/%2E%2E"),
        (".", "/v1/suno/fetch/%2E"),
        ("../etc", "/v1/suno/fetch/..%2Fetc"),
        ("a?b=1", "/v1/suno/fetch/a%3Fb%3D1"),
        ("a#frag", "/v1/suno/fetch/a%23frag"),
        ("a%2Fb", "/v1/suno/fetch/a%252Fb"),
        ("m_1:2.3+4", "/v1/suno/fetch/m_1%3A2.3%2B4"),
        ("é", "/v1/suno/fetch/%C3%A9"),
    ],
)
async def test_an_odd_task_id_is_fetched_as_one_percent_encoded_path_segment(odd: str, path: str) -> None:
    script = Script(reply_json(fetch_answer(fetch_item(id=odd, status="queued"))))
    async with upstream(script) as up:
        task = await TaskApi(up).fetch_one(odd)

    assert script.requests[0].url.raw_path.decode() == path
    assert (task.task_id, task.clips[0].id) == (odd, odd)


# ---------------------------------------------------------------- downloads


def _audio_reply(body: bytes, content_type: str = "audio/wav") -> Reply:
    return lambda request: httpx.Response(200, content=body, headers={"content-type": content_type})


def _streamed_reply(
    chunks: list[bytes], *, fail_after: bool = False, content_type: str = "audio/wav"
) -> Reply:
    """A body sent chunk by chunk with no Content-Length; optionally dropped after the chunks."""

    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk
        if fail_after:
            raise httpx.ReadError("connection dropped mid-body")

    return lambda request: httpx.Response(200, content=body(), headers={"content-type": content_type})


def _entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


async def _download(script: Script, directory: Path, *, max_bytes: int = 1000, attempts: int = 1) -> Any:
    async with httpx.AsyncClient(transport=httpx.MockTransport(script)) as http:
        return await download_to(
            http,
            AUDIO,
            str(directory),
            "song",
            max_bytes=max_bytes,
            retry=RetryPolicy(max_attempts=attempts, base_delay=0.0, max_delay=0.0),
        )


async def test_download_saves_a_wav_body_under_the_wav_extension(tmp_path: Path) -> None:
    body = b"RIFF" + bytes(range(200))
    script = Script(_audio_reply(body))
    got = await _download(script, tmp_path / "audio")

    assert got.path == str(tmp_path / "audio" / "song.wav")
    assert await anyio.Path(got.path).read_bytes() == body
    assert (got.bytes, got.content_type, got.extension) == (len(body), "audio/wav", "wav")
    assert _entries(tmp_path / "audio") == ["song.wav"]


async def test_download_names_an_mpeg_body_mp3_despite_content_type_parameters(tmp_path: Path) -> None:
    script = Script(_audio_reply(b"ID3" + b"\x00" * 50, "Audio/MPEG; charset=binary"))
    got = await _download(script, tmp_path)

    assert got.extension == "mp3"
    assert _entries(tmp_path) == ["song.mp3"]


async def test_download_assembles_a_streamed_body(tmp_path: Path) -> None:
    script = Script(_streamed_reply([b"RIFF", b"a" * 300, b"b" * 300]))
    got = await _download(script, tmp_path)

    assert await anyio.Path(got.path).read_bytes() == b"RIFF" + b"a" * 300 + b"b" * 300
    assert _entries(tmp_path) == ["song.wav"]


async def test_download_sends_no_authorization_header(tmp_path: Path) -> None:
    script = Script(_audio_reply(b"RIFF"))
    await _download(script, tmp_path)

    sent = script.requests[0]
    assert "authorization" not in sent.headers
    assert str(sent.url) == AUDIO


async def test_download_refuses_an_html_page(tmp_path: Path) -> None:
    script = Script(reply_raw(b"<html>expired</html>", 200, "text/html"))
    with pytest.raises(MalformedResponseError, match="text/html"):
        await _download(script, tmp_path)

    assert _entries(tmp_path) == []


async def test_download_refuses_a_declared_length_over_the_limit(tmp_path: Path) -> None:
    script = Script(_audio_reply(b"x" * 1001))
    with pytest.raises(MalformedResponseError, match="larger than"):
        await _download(script, tmp_path, max_bytes=1000)

    assert _entries(tmp_path) == []


async def test_download_refuses_a_streamed_body_that_grows_over_the_limit(tmp_path: Path) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        response = _streamed_reply([b"x" * 600, b"x" * 600])(request)
        assert "content-length" not in response.headers  # only the streamed check can catch it
        return response

    with pytest.raises(MalformedResponseError, match="larger than"):
        await _download(Script(reply), tmp_path, max_bytes=1000)

    assert _entries(tmp_path) == []


async def test_download_dropped_mid_body_leaves_no_partial_file(tmp_path: Path) -> None:
    script = Script(_streamed_reply([b"RIFF", b"a" * 100], fail_after=True))
    with pytest.raises(UpstreamConnectionError):
        await _download(script, tmp_path)

    assert _entries(tmp_path) == []


async def test_failed_download_leaves_an_earlier_file_untouched(tmp_path: Path) -> None:
    (tmp_path / "song.wav").write_bytes(b"the good old take")
    script = Script(_streamed_reply([b"RIFF", b"new"], fail_after=True))
    with pytest.raises(UpstreamConnectionError):
        await _download(script, tmp_path)

    assert _entries(tmp_path) == ["song.wav"]
    assert (tmp_path / "song.wav").read_bytes() == b"the good old take"


async def test_download_dropped_once_is_retried_into_one_whole_file(tmp_path: Path) -> None:
    script = Script(_streamed_reply([b"RIFF", b"half"], fail_after=True), _audio_reply(b"RIFF-whole"))
    got = await _download(script, tmp_path, attempts=2)

    assert len(script.requests) == 2
    assert await anyio.Path(got.path).read_bytes() == b"RIFF-whole"
    assert _entries(tmp_path) == ["song.wav"]


@pytest.mark.parametrize("status", [401, 403, 404, 410])
async def test_expired_audio_link_is_not_found_rather_than_an_account_problem(
    tmp_path: Path, status: int
) -> None:
    script = Script(reply_raw(b"<Error><Code>AccessDenied</Code></Error>", status, "application/xml"))
    with pytest.raises(NotFoundError, match="expired") as caught:
        await _download(script, tmp_path, attempts=3)

    assert caught.value.status_code == status
    assert len(script.requests) == 1
    assert _entries(tmp_path) == []


async def test_audio_host_failing_is_a_server_error(tmp_path: Path) -> None:
    script = Script(reply_raw(b"oops", 500, "text/plain"))
    with pytest.raises(ServerError):
        await _download(script, tmp_path)

    assert _entries(tmp_path) == []
