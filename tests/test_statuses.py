"""Every status word the vendor documents, the words of gateways of the same shape, and the rule
for words never seen; task-level verdicts; the stalled status the poller sets."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from suno_mcp.domain.models import Status, TaskRef, failure_text, normalize_status
from suno_mcp.server.texts import progress_message
from suno_mcp.upstream.families import ClipApi, TaskApi
from suno_mcp.upstream.retry import RetryPolicy
from suno_mcp.upstream.transport import Upstream

pytestmark = pytest.mark.anyio

AUDIO = "https://cdn1.suno.ai/7070ec00.mp3"

WORDS = {
    # task API, documented
    "queued": Status.PENDING,
    "processing": Status.RUNNING,
    "completed": Status.COMPLETE,
    "failed": Status.FAILED,
    # clip API, documented
    "submitted": Status.PENDING,
    "streaming": Status.STREAMING,
    "complete": Status.COMPLETE,
    "error": Status.FAILED,
    # gateways of the same shape
    "NOT_START": Status.PENDING,
    "SUBMITTED": Status.PENDING,
    "QUEUED": Status.PENDING,
    "IN_PROGRESS": Status.RUNNING,
    "in-progress": Status.RUNNING,
    "SUCCESS": Status.COMPLETE,
    "FAILURE": Status.FAILED,
    "pending": Status.PENDING,
    "running": Status.RUNNING,
    "succeeded": Status.COMPLETE,
    "cancelled": Status.FAILED,
    "canceled": Status.FAILED,
    "timeout": Status.FAILED,
    "timed out": Status.FAILED,
    "expired": Status.FAILED,
    "rejected": Status.FAILED,
    "aborted": Status.FAILED,
}


@pytest.mark.parametrize(("word", "status"), list(WORDS.items()))
def test_every_known_status_word_has_its_status(word: str, status: Status) -> None:
    assert normalize_status(word) is status
    assert normalize_status(f"  {word.upper()} ") is status


@pytest.mark.parametrize(
    "word",
    [
        "CREATE_TASK_FAILED",
        "GENERATE_AUDIO_FAILED",
        "SENSITIVE_WORD_ERROR",
        "user_cancel",
        "job-timeout",
        "expire",
        "REJECT",
        "errored",
        "abort_by_user",
        "permission_denied",
        "refused",
        "banned",
        "violation",
    ],
)
def test_an_unknown_word_that_sounds_like_an_end_fails_the_task(word: str) -> None:
    assert normalize_status(word) is Status.FAILED


@pytest.mark.parametrize("word", ["mastering", "TEXT_SUCCESS", "FIRST_SUCCESS", "uploading", "unknown", ""])
def test_any_other_unknown_word_is_followed_as_running(word: str) -> None:
    assert normalize_status(word) is Status.RUNNING


@pytest.mark.parametrize(
    ("raw", "reason", "text"),
    [
        ("failed", "bad lyrics", "bad lyrics"),
        ("error", None, "the upstream reported the clip as failed without a reason"),
        ("cancelled", "user stopped it", "the upstream reported 'cancelled': user stopped it"),
        ("SENSITIVE_WORD_ERROR", None, "the upstream reported 'SENSITIVE_WORD_ERROR' without a reason"),
    ],
)
def test_a_failure_shows_the_vendors_word_unless_it_is_plain(raw: str, reason: str | None, text: str) -> None:
    assert failure_text(raw, reason, "clip") == text


# ---------------------------------------------------------------- through the client


async def fetch(body: Any, *, kind: str = "music") -> Any:
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json=body))
    ) as http:
        up = Upstream(http, base_url="https://upstream.test", api_key="k", retry=RetryPolicy(max_attempts=1))
        return await TaskApi(up).fetch_one("task-1", kind)  # type: ignore[arg-type]


def item(clip_id: str, status: str, **fields: Any) -> dict[str, Any]:
    return {"id": clip_id, "status": status, "audio_url": "", **fields}


async def test_a_task_level_failure_ends_the_task_while_its_clips_still_say_queued() -> None:
    body = {
        "code": "success",
        "data": {
            "task_id": "task-1",
            "status": "FAILURE",
            "fail_reason": "upstream generation error",
            "data": [item("c1", "queued"), item("c2", "queued")],
        },
    }
    task = await fetch(body)

    assert task.status is Status.FAILED
    assert task.status.finished
    assert task.raw_status == "FAILURE"
    assert task.error == "upstream generation error"  # a plain failure word needs no quoting
    assert [c.id for c in task.clips] == ["c1", "c2"]


async def test_a_task_level_success_still_waits_for_its_clips() -> None:
    body = {
        "code": "success",
        "data": {
            "status": "SUCCESS",
            "data": [item("c1", "complete", audio_url=AUDIO), item("c2", "streaming")],
        },
    }
    task = await fetch(body)

    assert task.status is Status.STREAMING


async def test_a_task_level_success_with_no_clips_is_not_finished() -> None:
    task = await fetch({"code": "success", "data": {"status": "SUCCESS", "data": []}})

    assert task.status is Status.RUNNING


async def test_a_task_level_word_never_seen_is_followed_as_running() -> None:
    task = await fetch({"code": "success", "data": {"status": "MODAL", "data": []}})

    assert (task.status, task.raw_status) == (Status.RUNNING, "MODAL")


async def test_a_cancelled_item_fails_with_the_word_and_reason_shown() -> None:
    task = await fetch(
        {"code": "success", "data": [item("c1", "cancelled", error_message="stopped by the operator")]}
    )

    assert task.status is Status.FAILED
    assert task.error == "the upstream reported 'cancelled': stopped by the operator"


async def test_a_clip_in_the_feed_with_a_terminal_word_fails_the_batch() -> None:
    body = [item("a1", "expired"), item("a2", "timeout", metadata={"error_message": "took too long"})]
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json=body))
    ) as http:
        up = Upstream(http, base_url="https://upstream.test", api_key="k", retry=RetryPolicy(max_attempts=1))
        tasks = await ClipApi(up).fetch([TaskRef("batch", "clip", clip_ids=("a1", "a2"))])

    assert tasks["batch"].status is Status.FAILED
    assert tasks["batch"].error == (
        "the upstream reported 'expired' without a reason; the upstream reported 'timeout': took too long"
    )


async def test_a_failed_lyrics_task_shows_the_word() -> None:
    task = await fetch({"code": "success", "data": [{"id": "l1", "status": "rejected"}]}, kind="lyrics")

    assert task.status is Status.FAILED
    assert task.error == "the upstream reported 'rejected' without a reason"


# ---------------------------------------------------------------- stalled


def test_stalled_is_neither_finished_nor_followed() -> None:
    assert Status.STALLED.value == "stalled"
    assert not Status.STALLED.finished
    assert not Status.STALLED.followed
    assert not Status.STALLED.playable
    assert {s for s in Status if s.followed} == {Status.PENDING, Status.RUNNING, Status.STREAMING}


@pytest.mark.parametrize("status", [None, *Status])
def test_every_status_has_a_progress_message(status: Status | None) -> None:
    assert progress_message(status, 2, 30.0, None)
