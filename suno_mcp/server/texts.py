"""The short texts a model reads: a task result's text, usage, progress lines, a ledger row's
summary, and the tool-error text for every domain error (what went wrong, what to do next).
"""

from __future__ import annotations

import re
from typing import Any

from suno_mcp.domain.catalog import DOCUMENTED_MODEL_HINT
from suno_mcp.domain.errors import (
    AuthenticationError,
    ConfigurationError,
    ContentPolicyError,
    InsufficientBalanceError,
    InvalidRequestError,
    LedgerUnavailableError,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    SpendingRefusedError,
    SubmitOutcomeUnknownError,
    SunoError,
    UploadAnswerError,
    UpstreamConnectionError,
    UpstreamTimeoutError,
)
from suno_mcp.domain.models import Status
from suno_mcp.server.results import ClipResult, TaskResult, UsageResult

TEXT_LIMIT = 1800  # the text part stays under 2 KB
SANDBOX_NOTE = "SANDBOX: synthesized test audio from the local sandbox, not Suno."


def usage_text(result: UsageResult) -> str:
    """The short text of get_usage."""
    lines = []
    for period in result.periods:
        cost = f", about {period.cost:.2f}" if period.cost is not None else ""
        maybe = f" ({period.maybe_charged} may have been charged)" if period.maybe_charged else ""
        lines.append(
            f"Last {period.window}: {period.requests} paid requests{maybe}, {period.clips} clips{cost}."
        )
    if result.budget is not None:
        used = "?" if result.budget_used is None else f"{result.budget_used:g}"
        lines.append(f"Budget: {result.budget}; used {used} in the current window.")
    else:
        lines.append("Budget: none (SUNO_MCP_BUDGET is not set).")
    lines.append(f"Confirmation: {result.confirm} (SUNO_MCP_CONFIRM).")
    lines.append(result.note)
    return "\n".join(lines)


def _clip_line(n: int, clip: ClipResult) -> str:
    name = f"'{clip.title}' " if clip.title else ""
    parts = [f"{n}. {name}[{clip.status.value}] id={clip.id}"]
    if clip.duration:
        parts.append(f"{clip.duration:.0f}s")
    if clip.audio_url:
        parts.append(f"audio: {clip.audio_url}")
    elif clip.preview_url:
        parts.append(f"PREVIEW (not final): {clip.preview_url}")
    if clip.local_file:
        parts.append(f"saved: {clip.local_file}")
    if clip.error:
        parts.append(f"error: {clip.error}")
    return " ".join(parts)


def task_text(result: TaskResult) -> str:
    """The short text part of a task result: what happened, the URLs, what next."""
    lines: list[str] = []
    if result.sandbox:
        lines.append(SANDBOX_NOTE)
    head = f"Task {result.task_id or '(unconfirmed)'}: {result.kind} {result.status.value}"
    if result.deduplicated:
        head += " (an identical request from the last minutes was reused; nothing new was paid)"
    if result.checked_seconds_ago is not None:
        head += (
            f" (as of {result.checked_seconds_ago:.0f} s ago: the upstream is busy, this is the newest known)"
        )
    if not result.recorded:
        head += (
            " (accepted upstream, not yet in the task ledger: the id is kept and recorded once it answers)"
        )
    lines.append(head + ".")
    if result.kind == "lyrics" and result.lyrics:
        lines.append(f"Title: {result.lyrics_title or '(none)'}")
        lines.append(result.lyrics[:900] + (" …" if len(result.lyrics) > 900 else ""))
    lines.extend(_clip_line(i, c) for i, c in enumerate(result.clips, start=1))
    if result.error:
        lines.append(f"Error: {result.error}")
    lines.append(f"Next: {result.next_step}")
    text = "\n".join(lines)
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def _about(seconds: float) -> str:
    return f"about {seconds / 60:.0f} min" if seconds >= 90 else f"about {seconds:.0f} s"


def progress_message(
    record_status: Status | None,
    clips: int,
    elapsed: float,
    poll_error: str | None,
    *,
    typical_final_s: float = 120.0,
) -> str:
    """A progress line a person can read; ``typical_final_s`` is the usual time to final audio."""
    state = {
        None: "submitted",
        Status.PENDING: "queued",
        Status.RUNNING: "generating",
        Status.STREAMING: "streaming (preview playable)",
        Status.COMPLETE: "complete",
        Status.FAILED: "failed",
        Status.UNKNOWN: "unconfirmed",
        Status.STALLED: "stalled (no progress; no longer checked)",
    }[record_status]
    what = f"{clips} clip{'s' if clips != 1 else ''} {state}" if clips else state.capitalize()
    hint = (
        f"final audio usually {_about(typical_final_s)} after submitting"
        if record_status in (None, Status.PENDING, Status.RUNNING, Status.STREAMING)
        else ""
    )
    text = f"{what}, {elapsed:.0f} s elapsed"
    if hint:
        text += f", {hint}"
    if poll_error:
        text += f" (last check failed: {poll_error}; retrying)"
    return text


# A refusal that names the model: the mv field, the word "model" or a model name.
_MODEL_WORDS = re.compile(r"\bmv\b|model|chirp", re.IGNORECASE)


def error_text(err: SunoError) -> str:
    """The tool-error text for an error: what went wrong and what to do next."""
    m = err.message
    if isinstance(err, ConfigurationError | SpendingRefusedError):
        return m
    if isinstance(err, LedgerUnavailableError):
        return (
            f"The task ledger is unavailable ({m}): its database is down, restarting or busy. Nothing "
            "was sent to Suno and nothing was charged. Try the same call again in a few seconds."
        )
    if isinstance(err, AuthenticationError):
        return (
            f"The API key was rejected by gptproto ({m}): it is wrong, expired or disabled. Check "
            "GPTPROTO_API_KEY in this server's environment (your MCP client's config), replace it with a "
            "valid key if needed, and restart the server. Nothing was charged."
        )
    if isinstance(err, InsufficientBalanceError):
        return (
            f"The gptproto account has insufficient balance ({m}). Nothing was made or charged. "
            "Top up the account, then try again."
        )
    if isinstance(err, RateLimitedError):
        after = f" in about {err.retry_after:.0f} s" if err.retry_after else " in a minute"
        return f"Rate limited by the upstream ({m}). Nothing was charged; try again{after}."
    if isinstance(err, ContentPolicyError):
        return (
            f"The request was refused by the content policy ({m}). Nothing was made or charged. Rephrase "
            "the prompt, lyrics or style (avoid real artist names and sensitive content) and try again."
        )
    if isinstance(err, NotFoundError):
        return f"Not found: {m}. Check the id (list_tasks shows known tasks and clip ids)."
    if isinstance(err, InvalidRequestError):
        text = f"The upstream refused the request as invalid ({m}). Nothing was charged. Fix the arguments"
        if _MODEL_WORDS.search(m):
            text += f" ({DOCUMENTED_MODEL_HINT})"
        return text + " and try again."
    if isinstance(err, SubmitOutcomeUnknownError):
        return (
            f"The request was sent but no usable answer came back ({m}); it may have been accepted and charged. "
            f"It is recorded as '{err.local_id}' with status 'unknown'. Do not resubmit blindly: call "
            "list_tasks(status='unknown') and ask the user, or pass force_new=true to submit again anyway."
        )
    if isinstance(err, ServerError):
        return f"The upstream is failing ({m}). Try again in a minute."
    if isinstance(err, UpstreamTimeoutError):
        return (
            f"The upstream did not answer in time ({m}). Try again shortly; for a task, call get_task_status."
        )
    if isinstance(err, UpstreamConnectionError):
        return f"Could not reach the upstream ({m}). Check the network and GPTPROTO_BASE_URL, then try again."
    if isinstance(err, UploadAnswerError):
        return (
            f"The upload's answer did not say which clip it made ({m}). Nothing was paid. Try upload_audio "
            "again; if it persists, report it with the keys above."
        )
    if isinstance(err, MalformedResponseError):
        return f"The upstream sent an answer we could not read ({m}). Try again; if it persists, report it."
    return f"{type(err).__name__}: {m}"


def request_summary(request: dict[str, Any], limit: int = 80) -> str | None:
    """A short line saying what a ledger row asked for, so an unconfirmed row can be recognised."""
    parts = []
    keys = ("url", "cover_clip_id", "gpt_description_prompt", "title", "tags", "prompt", "continue_clip_id")
    for key in (*keys, "clip_id"):
        value = request.get(key)
        if isinstance(value, str) and value.strip():
            parts.append(f"{key}={' '.join(value.split())}")
    if not parts:
        return None
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"
