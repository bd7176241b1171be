"""The status vocabulary every layer shares: what a task or clip is, which API family and kind it
belongs to, and how the vendor's status words map to :class:`Status`.

Kept apart from :mod:`suno_mcp.domain.models` (which re-exports it) because the server needs these
words from its start, and the pydantic models there cost a stdio session's start-up to define.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

ApiFamily = Literal["task", "clip"]
# "cover": a new version of a clip in another style; "upload": a song brought in from a URL
# (complete at once, nothing generated), which extend_music continues with an upload model.
TaskKind = Literal["music", "lyrics", "concat", "cover", "upload"]


class Status(str, Enum):
    """Where a clip or task stands, the same words for both API families."""

    PENDING = "pending"  # accepted, not started
    RUNNING = "running"  # being generated, nothing to hear yet
    STREAMING = "streaming"  # a preview is playable; the final file is not ready
    COMPLETE = "complete"  # the final audio is ready
    FAILED = "failed"  # it will not finish
    UNKNOWN = "unknown"  # we sent a submit and do not know whether the upstream took it
    # No progress past the stall limit: no longer polled, but not finished either, since
    # the upstream may still deliver; a fresh look (get_task_status) asks again. Only the
    # poller sets it; the upstream never says it.
    STALLED = "stalled"

    @property
    def finished(self) -> bool:
        return self in (Status.COMPLETE, Status.FAILED)

    @property
    def playable(self) -> bool:
        return self in (Status.STREAMING, Status.COMPLETE)

    @property
    def followed(self) -> bool:
        """True while the poller should keep asking the upstream about it."""
        return self in (Status.PENDING, Status.RUNNING, Status.STREAMING)


# Vendor status words, normalized (lower case, '-' and ' ' as '_'), from both families and
# from gateways of the same shape. Words not here go through _TERMINAL_FRAGMENTS.
_STATUS_WORDS: dict[str, Status] = {
    # The task API documents queued, processing, completed, failed; the clip API
    # submitted, queued, streaming, complete, error.
    "submitted": Status.PENDING,
    "queued": Status.PENDING,
    "queueing": Status.PENDING,
    "in_queue": Status.PENDING,
    "pending": Status.PENDING,
    "waiting": Status.PENDING,
    "created": Status.PENDING,
    "not_start": Status.PENDING,
    "not_started": Status.PENDING,
    "processing": Status.RUNNING,
    "running": Status.RUNNING,
    "in_progress": Status.RUNNING,
    "generating": Status.RUNNING,
    "started": Status.RUNNING,
    "streaming": Status.STREAMING,
    "complete": Status.COMPLETE,
    "completed": Status.COMPLETE,
    "success": Status.COMPLETE,
    "succeeded": Status.COMPLETE,
    "finished": Status.COMPLETE,
    "error": Status.FAILED,
    "failed": Status.FAILED,
    "failure": Status.FAILED,
    "cancelled": Status.FAILED,
    "canceled": Status.FAILED,
    "timeout": Status.FAILED,
    "timed_out": Status.FAILED,
    "expired": Status.FAILED,
    "rejected": Status.FAILED,
    "aborted": Status.FAILED,
}

# A word never seen before that sounds like an end (CREATE_TASK_FAILED, SENSITIVE_WORD_ERROR,
# banned, ...) ends the task: following it as running would poll a dead task forever.
_TERMINAL_FRAGMENTS = (
    "cancel",
    "timeout",
    "timed_out",
    "expire",
    "reject",
    "fail",
    "error",
    "abort",
    "denied",
    "refus",
    "ban",
    "violat",
)

# The plain failure words, whose reason needs no "the upstream said 'x'" in front.
_PLAIN_FAILURE_WORDS = frozenset({"error", "failed", "failure"})


def _word(raw: str) -> str:
    return raw.strip().lower().replace("-", "_").replace(" ", "_")


def normalize_status(raw: Any) -> Status:
    """Map a vendor status word to a Status.

    Known words map by table; an unknown word that sounds terminal (cancel, timeout,
    expire, reject, fail, error, ...) is FAILED; any other unknown word is still running.
    """
    if not isinstance(raw, str):
        return Status.RUNNING
    word = _word(raw)
    known = _STATUS_WORDS.get(word)
    if known is not None:
        return known
    if any(fragment in word for fragment in _TERMINAL_FRAGMENTS):
        return Status.FAILED
    return Status.RUNNING


def failure_text(raw: str | None, reason: str | None, what: str = "task") -> str:
    """The error shown for a failed clip or task: the vendor's word (unless plain) and reason."""
    word = raw.strip() if raw else ""
    if not word or _word(word) in _PLAIN_FAILURE_WORDS:
        return reason or f"the upstream reported the {what} as failed without a reason"
    if reason:
        return f"the upstream reported '{word}': {reason}"
    return f"the upstream reported '{word}' without a reason"
