"""Our client against the sandbox over loopback: both families, every fault kind.

Each fault is injected on exactly one request, so a test shows what the client does
with it: a read retries through it, a paid submit never repeats once it may have
been sent, and every failure arrives as the right typed error.

The sandbox runs on a fake clock that :func:`follow` moves between reads, as a poller's gaps
would: nothing here waits for the sandbox's latency.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from test_sandbox_server import FakeClock

from suno_mcp.domain.errors import (
    ContentPolicyError,
    InsufficientBalanceError,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    SunoError,
    UploadAnswerError,
    UpstreamConnectionError,
    UpstreamTimeoutError,
)
from suno_mcp.domain.models import CoverRequest, MusicRequest, Status, Task, TaskRef
from suno_mcp.sandbox import CONTENT_POLICY_TRIGGER, SandboxConfig, SandboxHandle, run_sandbox
from suno_mcp.upstream.downloads import download_to
from suno_mcp.upstream.families import ClipApi, TaskApi
from suno_mcp.upstream.retry import RetryPolicy
from suno_mcp.upstream.transport import Upstream
from tests.support.tls import TLS

KEY = "client-test-key"
STEP_S = 10.0  # sandbox seconds between two reads of follow(): ~15 reads from submit to complete
REQUEST = MusicRequest(gpt_description_prompt="a client test", prompt="", mv="chirp-v3-5")


@asynccontextmanager
async def apis(
    *, attempts: int = 4, read_timeout: float = 5.0, **config: float | str
) -> AsyncIterator[tuple[SandboxHandle, TaskApi, ClipApi, httpx.AsyncClient]]:
    sandbox_config = SandboxConfig(clip_seconds=3.0, slow_delay_s=0.3, **config)  # type: ignore[arg-type]
    async with (
        run_sandbox(sandbox_config, clock=FakeClock()) as sandbox,
        httpx.AsyncClient(timeout=read_timeout, verify=TLS) as http,
    ):
        # A 429's Retry-After (1 s from the sandbox) is honoured only up to 50 ms here: that the
        # wait is the Retry-After is test_retry's to show, with a fake sleep.
        retry = RetryPolicy(
            max_attempts=attempts, base_delay=0.01, max_delay=0.05, max_retry_after=0.05, rng=random.Random(1)
        )
        upstream = Upstream(
            http, base_url=sandbox.url, api_key=KEY, retry=retry, submit_read_timeout=read_timeout
        )
        yield sandbox, TaskApi(upstream), ClipApi(upstream), http


async def follow(sandbox: SandboxHandle, api: TaskApi | ClipApi, task: Task) -> Task:
    """Read the task until it is finished, moving the sandbox's clock on by STEP_S between reads."""
    clock = sandbox.state.clock
    assert isinstance(clock, FakeClock)
    ref = TaskRef(task.task_id, api.family, task.kind, tuple(c.id for c in task.clips))
    with anyio.fail_after(10):
        while True:
            try:
                found = (await api.fetch([ref])).get(task.task_id)
            except SunoError:
                found = None  # the poller, too, just tries again on its next tick
            if found is not None and found.status.finished:
                return found
            clock.advance(STEP_S)


def submits(sandbox: SandboxHandle, family: str) -> int:
    return sandbox.state.stats.requests["submit_music" if family == "task" else "generate"]


@pytest.mark.parametrize("family", ["task", "clip"])
async def test_a_music_task_runs_to_two_complete_clips_with_final_audio(family: str) -> None:
    async with apis() as (sandbox, task_api, clip_api, _):
        api = task_api if family == "task" else clip_api
        done = await follow(sandbox, api, await api.submit_music(REQUEST))
    assert done.status is Status.COMPLETE
    assert len(done.clips) == 2
    assert all(c.audio_url and c.audio_url.endswith(".wav") for c in done.clips)
    assert all(c.duration == pytest.approx(3.0) for c in done.clips)


TRANSIENT = ["429", "500", "502", "503", "malformed", "slow", "drop"]


@pytest.mark.parametrize(
    ("family", "kind"),
    [("task", k) for k in TRANSIENT] + [("clip", k) for k in [*TRANSIENT, "code_error"]],
)
async def test_a_status_read_retries_through_any_single_transient_fault(family: str, kind: str) -> None:
    async with apis() as (sandbox, task_api, clip_api, _):
        api = task_api if family == "task" else clip_api
        task = await api.submit_music(REQUEST)
        ref = TaskRef(task.task_id, family, clip_ids=tuple(c.id for c in task.clips))  # type: ignore[arg-type]
        sandbox.state.inject(kind, "fetch" if family == "task" else "feed", 1)
        # The very read that met the fault still answers: the retry happened inside it.
        assert task.task_id in await api.fetch([ref])
        assert sandbox.state.stats.faults_fired[kind] == 1


async def test_a_code_error_body_on_a_task_read_is_a_typed_error_and_the_next_read_succeeds() -> None:
    # HTTP 200 with {"code": "error"} names no transient cause, so it is not retried inside
    # the read; the poller simply reads again on its next tick.
    async with apis() as (sandbox, task_api, _, _):
        task = await task_api.submit_music(REQUEST)
        ref = TaskRef(task.task_id, "task")
        sandbox.state.inject("code_error", "fetch", 1)
        with pytest.raises(SunoError):
            await task_api.fetch([ref])
        assert task.task_id in await task_api.fetch([ref])


@pytest.mark.parametrize("family", ["task", "clip"])
@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("429", RateLimitedError),
        ("500", ServerError),
        ("502", ServerError),
        ("503", ServerError),
        ("balance", InsufficientBalanceError),
        ("malformed", MalformedResponseError),
        ("code_error", SunoError),
        ("drop", UpstreamConnectionError),
    ],
)
async def test_a_faulted_submit_is_sent_once_and_raises_a_typed_error(
    family: str, kind: str, error: type[SunoError]
) -> None:
    async with apis() as (sandbox, task_api, clip_api, _):
        api = task_api if family == "task" else clip_api
        endpoint = "submit_music" if family == "task" else "generate"
        sandbox.state.inject(kind, endpoint, 1)
        with pytest.raises(error):
            await api.submit_music(REQUEST)
        assert submits(sandbox, family) == 1  # never repeated: it may have been charged
        # Only the dropped connection actually created (and would charge) a task.
        assert sandbox.state.stats.tasks_created == (1 if kind == "drop" else 0)


@pytest.mark.parametrize("family", ["task", "clip"])
async def test_a_slow_submit_past_the_read_timeout_is_a_timeout_that_may_have_been_sent(family: str) -> None:
    async with apis(read_timeout=0.1) as (sandbox, task_api, clip_api, _):
        api = task_api if family == "task" else clip_api
        sandbox.state.inject("slow", "submit_music" if family == "task" else "generate", 1)
        with pytest.raises(UpstreamTimeoutError) as caught:
            await api.submit_music(REQUEST)
        assert caught.value.request_sent is True
        assert submits(sandbox, family) == 1


@pytest.mark.parametrize("family", ["task", "clip"])
async def test_the_content_policy_trigger_is_refused_and_creates_nothing(family: str) -> None:
    async with apis() as (sandbox, task_api, clip_api, _):
        api = task_api if family == "task" else clip_api
        bad = MusicRequest(
            gpt_description_prompt=f"about {CONTENT_POLICY_TRIGGER}", prompt="", mv="chirp-v3-5"
        )
        with pytest.raises(ContentPolicyError):
            await api.submit_music(bad)
        assert sandbox.state.stats.tasks_created == 0


@pytest.mark.parametrize("family", ["task", "clip"])
async def test_a_clip_that_fails_upstream_ends_failed_with_its_message(family: str) -> None:
    async with apis() as (sandbox, task_api, clip_api, _):
        api = task_api if family == "task" else clip_api
        sandbox.state.inject("clip_fail", "submit_music" if family == "task" else "generate", 2)
        done = await follow(sandbox, api, await api.submit_music(REQUEST))
    assert done.status is Status.FAILED
    assert done.error
    assert all(c.audio_url is None for c in done.clips)


async def test_lyrics_come_back_with_a_title_and_text() -> None:
    async with apis() as (sandbox, task_api, _, _):
        task = await task_api.submit_lyrics("a song about lighthouses")
        done = await follow(sandbox, task_api, task)
    assert done.status is Status.COMPLETE
    assert done.lyrics_title
    assert done.lyrics_text
    assert "[" in done.lyrics_text  # section markers such as [Verse]


async def test_an_unknown_task_is_not_found() -> None:
    async with apis() as (_, task_api, clip_api, _):
        with pytest.raises(NotFoundError):
            await task_api.fetch_one("no-such-task")
        assert await clip_api.fetch([TaskRef("nope", "clip", clip_ids=("nope",))]) == {}


async def test_extension_and_concat_through_the_clip_api_make_one_clip_as_long_as_the_chain() -> None:
    async with apis() as (sandbox, _, clip_api, _):
        first = await follow(sandbox, clip_api, await clip_api.submit_music(REQUEST))
        parent = first.clips[0]
        extend = MusicRequest(prompt="", mv="chirp-v3-5", continue_clip_id=parent.id, continue_at=2.0)
        extension = await follow(sandbox, clip_api, await clip_api.submit_music(extend))
        whole = await follow(sandbox, clip_api, await clip_api.concat(extension.clips[0].id))
    assert whole.kind == "concat"
    assert whole.clips[0].duration == pytest.approx(2.0 + 3.0)


@pytest.mark.parametrize("kind", ["expired", "drop", "500"])
async def test_downloads_survive_or_explain_media_faults(kind: str, tmp_path: Path) -> None:
    async with apis() as (sandbox, task_api, _, http):
        done = await follow(sandbox, task_api, await task_api.submit_music(REQUEST))
        url = done.clips[0].audio_url
        assert url is not None
        sandbox.state.inject(kind, "media", 1)
        if kind == "expired":
            with pytest.raises(NotFoundError, match="expired"):
                await download_to(http, url, str(tmp_path), "song", max_bytes=10**8)
            return
        got = await download_to(
            http,
            url,
            str(tmp_path),
            "song",
            max_bytes=10**8,
            retry=RetryPolicy(base_delay=0.01, max_delay=0.02),
        )
    assert got.extension == "wav"
    assert got.bytes == (tmp_path / "song.wav").stat().st_size


@pytest.mark.parametrize("shape", [None, "upload_clip_id", "upload_data_id"])
async def test_an_upload_is_read_in_every_shape_the_sandbox_answers_and_continued_with_the_upload_model(
    shape: str | None,
) -> None:
    async with apis() as (sandbox, _, clip_api, _):
        song = await follow(sandbox, clip_api, await clip_api.submit_music(REQUEST))
        assert song.clips[0].audio_url is not None
        if shape is not None:
            sandbox.state.inject(shape, "upload")
        uploaded = await clip_api.upload_audio(song.clips[0].audio_url)
        (clip,) = uploaded.clips
        assert (uploaded.kind, uploaded.status, clip.status) == ("upload", Status.COMPLETE, Status.COMPLETE)
        assert sandbox.state.clips[clip.id].kind == "upload"
        continued = await follow(
            sandbox,
            clip_api,
            await clip_api.submit_music(
                MusicRequest(prompt="", mv="chirp-v3-5-upload", continue_clip_id=clip.id, continue_at=1.5)
            ),
        )
    assert continued.status is Status.COMPLETE


async def test_an_upload_answer_without_an_id_raises_an_error_naming_the_keys_and_keeping_the_answer() -> (
    None
):
    async with apis() as (sandbox, _, clip_api, _):
        song = await follow(sandbox, clip_api, await clip_api.submit_music(REQUEST))
        assert song.clips[0].audio_url is not None
        sandbox.state.inject("upload_no_id", "upload")
        with pytest.raises(UploadAnswerError, match="the keys received: status") as caught:
            await clip_api.upload_audio(song.clips[0].audio_url)
    assert caught.value.raw_answer == '{"status":"success"}'
    assert caught.value.charged == "no"


async def test_a_cover_of_a_complete_clip_is_two_new_clips_in_the_new_style() -> None:
    async with apis() as (sandbox, _, clip_api, _):
        song = await follow(sandbox, clip_api, await clip_api.submit_music(REQUEST))
        source = song.clips[0]
        request = CoverRequest(
            cover_clip_id=source.id, mv="chirp-v3-5-tau", prompt="", tags="fast jazz", negative_tags="piano"
        )
        cover = await follow(sandbox, clip_api, await clip_api.cover(request))
    assert cover.kind == "cover"
    assert cover.status is Status.COMPLETE
    assert len(cover.clips) == 2
    assert {c.tags for c in cover.clips} == {"fast jazz"}
    assert all(sandbox.state.clips[c.id].cover_of == source.id for c in cover.clips)
    assert sandbox.state.stats.created_by_endpoint == {"generate": 1, "cover": 1}
