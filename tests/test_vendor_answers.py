"""Every answer the vendor documents, read right: one row per documented status and message,
sent in both of the vendor's body shapes to every endpoint of both families, through the real
client over ``httpx.MockTransport``.

Each row says which error it must become, whether a submit refused that way left nothing behind
("refused") or may have been taken and charged ("unknown"), and a phrase of what the user is told.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

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
    SubmitOutcomeUnknownError,
    SunoError,
    UpstreamConnectionError,
    UpstreamTimeoutError,
    submit_outcome,
)
from suno_mcp.domain.models import MusicRequest
from suno_mcp.server.texts import error_text
from suno_mcp.upstream.families import ClipApi, TaskApi
from suno_mcp.upstream.retry import RetryPolicy
from suno_mcp.upstream.transport import Upstream

pytestmark = pytest.mark.anyio

BASE = "https://upstream.test"
KEY = "k-vendor-answers"
TASK_ID = "736a6f88-bd29-4b1e-b110-37132a5325ac"
MUSIC = MusicRequest(prompt="Compose a tense pre-battle anthem", tags="cinematic,epic", mv="chirp-v3-5")


@dataclass(frozen=True)
class Answer:
    """One documented vendor answer and what it must mean."""

    status: int
    message: str
    error: type[SunoError]
    outcome: str
    tells: str
    headers: dict[str, str] = field(default_factory=dict)


# The vendor's documented answers (README of the wire facts: "Documented errors").
ANSWERS = {
    "400-invalid-prompt": Answer(400, "Invalid prompt", InvalidRequestError, "refused", "Fix the arguments"),
    "401-invalid-signature": Answer(
        401, "Invalid signature", AuthenticationError, "refused", "Check GPTPROTO_API_KEY"
    ),
    "403-invalid-token": Answer(403, "Invalid Token", AuthenticationError, "refused", "replace it"),
    "403-insufficient-balance": Answer(
        403, "Insufficient balance", InsufficientBalanceError, "refused", "Top up"
    ),
    "429-rate-limited": Answer(
        429,
        "Rate limit exceeded",
        RateLimitedError,
        "refused",
        "try again in about 7 s",
        headers={"Retry-After": "7"},
    ),
    "500-server-error": Answer(500, "Internal server error", ServerError, "unknown", "Try again in a minute"),
    "503-guidelines": Answer(
        503,
        "Input may not meet the guidelines. Please adjust and try again.",
        ContentPolicyError,
        "refused",
        "Nothing was made",
    ),
    "503-unavailable": Answer(503, "Service Unavailable", ServerError, "unknown", "Try again in a minute"),
    "200-invalid-prompt": Answer(
        200, "Invalid prompt: prompt cannot be empty", InvalidRequestError, "refused", "Fix the arguments"
    ),
    "200-task-not-found": Answer(200, "Task not found", NotFoundError, "refused", "Check the id"),
}


def error_object(answer: Answer) -> dict[str, Any]:
    """The scenario pages' shape: ``{"error": {"message", "type"}}``."""
    return {"error": {"message": answer.message, "type": "upstream_error"}}


def code_error(answer: Answer) -> dict[str, Any]:
    """The task API's shape: ``{"code": "error", "data": null, "message"}``."""
    return {"code": "error", "data": None, "message": answer.message}


SHAPES = pytest.mark.parametrize("shape", [error_object, code_error], ids=["error-object", "code-error"])

Call = Callable[[TaskApi, ClipApi], Awaitable[object]]

ENDPOINTS: dict[str, Call] = {
    "task-submit-music": lambda task, clip: task.submit_music(MUSIC),
    "task-submit-lyrics": lambda task, clip: task.submit_lyrics("a song about the sea"),
    "task-fetch-music": lambda task, clip: task.fetch_one(TASK_ID),
    "task-fetch-lyrics": lambda task, clip: task.fetch_one(TASK_ID, "lyrics"),
    "clip-generate": lambda task, clip: clip.submit_music(MUSIC),
    "clip-feed": lambda task, clip: clip.feed(["7070ec00-462e-42ac-9b9f-1074977f473f"]),
    "clip-concat": lambda task, clip: clip.concat("7070ec00-462e-42ac-9b9f-1074977f473f"),
}


async def answered(reply: httpx.Response, call: Call) -> tuple[SunoError, int]:
    """The error ``call`` raised when every request is answered with ``reply``, and the request count."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(reply.status_code, content=reply.content, headers=reply.headers)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        up = Upstream(http, base_url=BASE, api_key=KEY, retry=RetryPolicy(max_attempts=1))
        with pytest.raises(SunoError) as caught:
            await call(TaskApi(up), ClipApi(up))
    return caught.value, len(seen)


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@SHAPES
@pytest.mark.parametrize("name", list(ANSWERS))
async def test_each_documented_answer_becomes_the_right_error_outcome_and_next_step(
    name: str, shape: Callable[[Answer], dict[str, Any]], endpoint: str
) -> None:
    answer = ANSWERS[name]
    reply = httpx.Response(answer.status, json=shape(answer), headers=answer.headers)

    err, _ = await answered(reply, ENDPOINTS[endpoint])

    assert type(err) is answer.error
    assert answer.message in err.message
    assert submit_outcome(err) == answer.outcome
    assert answer.tells in error_text(err)
    assert KEY not in error_text(err)


async def test_the_429_answer_carries_its_retry_after() -> None:
    answer = ANSWERS["429-rate-limited"]
    reply = httpx.Response(429, json=error_object(answer), headers=answer.headers)

    err, requests = await answered(reply, ENDPOINTS["task-submit-music"])

    assert isinstance(err, RateLimitedError)
    assert err.retry_after == 7.0
    assert requests == 1


async def test_a_guidelines_refusal_is_not_the_failing_gateway_of_a_plain_503() -> None:
    refusal, _ = await answered(
        httpx.Response(503, json=error_object(ANSWERS["503-guidelines"])), ENDPOINTS["clip-generate"]
    )
    failing, _ = await answered(httpx.Response(503, content=b""), ENDPOINTS["clip-generate"])

    assert (type(refusal), submit_outcome(refusal)) == (ContentPolicyError, "refused")
    assert (type(failing), submit_outcome(failing)) == (ServerError, "unknown")


async def test_an_invalid_token_is_a_key_problem_and_never_a_top_up() -> None:
    err, _ = await answered(
        httpx.Response(403, json=error_object(ANSWERS["403-invalid-token"])), ENDPOINTS["task-submit-music"]
    )

    assert "Top up" not in error_text(err)
    assert "balance" not in error_text(err)


@pytest.mark.parametrize(
    ("message", "hinted"),
    [
        ("Invalid mv: chirp-v9", True),
        ("model chirp-v4-5 is not available for this key", True),
        ("Invalid prompt: prompt cannot be empty", False),
    ],
)
async def test_a_refusal_that_names_the_model_suggests_the_documented_ones(
    message: str, hinted: bool
) -> None:
    err, _ = await answered(
        httpx.Response(200, json={"code": "error", "data": None, "message": message}),
        ENDPOINTS["task-submit-music"],
    )

    assert isinstance(err, InvalidRequestError)
    assert ("try a documented model: chirp-v3-5 or chirp-v3-0" in error_text(err)) is hinted


@pytest.mark.parametrize(
    ("err", "outcome"),
    [
        (ConfigurationError("no key"), "refused"),
        (UpstreamConnectionError("refused", request_sent=False), "refused"),
        (UpstreamTimeoutError("connect timeout", request_sent=False), "refused"),
        (UpstreamTimeoutError("read timeout", request_sent=True), "unknown"),
        (UpstreamConnectionError("dropped mid-request", request_sent=True), "unknown"),
        (MalformedResponseError("not JSON"), "unknown"),
        (SubmitOutcomeUnknownError("lost", local_id="l-1"), "unknown"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, SunoError) else str(v),
)
def test_errors_without_an_answer_say_whether_the_submit_may_have_been_charged(
    err: SunoError, outcome: str
) -> None:
    assert submit_outcome(err) == outcome
    assert err.charged == ("maybe" if outcome == "unknown" else "no")
