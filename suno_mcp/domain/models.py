"""Data shared by every layer: requests to the upstream, tasks and clips coming back.

Both of the vendor's endpoint families are parsed into the same :class:`Task` and
:class:`Clip`, with one status vocabulary (:class:`Status`). The vendor's own status
string is kept in ``raw_status``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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


# Models only the service uses are built on first use (defer_build): the server's start-up,
# which only lists tools, does not pay for them.
_RUNTIME = ConfigDict(defer_build=True)


class MusicRequest(BaseModel):
    """What one music submit asks for, in wire terms (both API families take these fields)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    gpt_description_prompt: str | None = None
    prompt: str | None = None
    tags: str | None = None
    title: str | None = None
    make_instrumental: bool = False
    mv: str
    continue_clip_id: str | None = None
    continue_at: float | None = None
    task_id: str | None = None

    def wire_body(self) -> dict[str, Any]:
        """The fields as the wire spells them, the same for both families: unset ones left out.

        This is the duplicate guard's fingerprint input. Each family's client shapes the body
        it actually sends from it (``upstream.wire.task_api_body`` / ``clip_api_body``).
        """
        body = self.model_dump(exclude_none=True)
        if body.get("continue_at") is not None and float(body["continue_at"]).is_integer():
            body["continue_at"] = int(body["continue_at"])
        return body


class CoverRequest(BaseModel):
    """A cover of an existing clip, in the clip API's terms (``task: "cover"`` on ``/suno/generate``)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    cover_clip_id: str
    mv: str  # the cover model (the catalog's cover_variant, ending in -tau)
    prompt: str  # the lyrics to sing; "" for an instrumental source
    tags: str
    negative_tags: str = ""
    title: str = ""

    def wire_body(self) -> dict[str, Any]:
        """The body the vendor documents: the continuation and infill fields sent as null."""
        return {
            "task": "cover",
            "generation_type": "TEXT",
            **self.model_dump(),
            "continue_clip_id": None,
            "continue_at": None,
            "infill_start_s": None,
            "infill_end_s": None,
        }


class Clip(BaseModel):
    """One generated piece of audio."""

    model_config = _RUNTIME

    id: str = Field(description="Clip id: pass it to extend_music, get_complete_song or download_audio.")
    status: Status
    raw_status: str | None = Field(default=None, description="The status word the vendor used.")
    title: str | None = None
    audio_url: str | None = Field(default=None, description="The final audio file; set once complete.")
    preview_url: str | None = Field(
        default=None,
        description="A streaming preview that plays before the final file exists; not the final file.",
    )
    image_url: str | None = None
    video_url: str | None = None
    duration: float | None = Field(default=None, description="Length in seconds, once known.")
    model: str | None = None
    tags: str | None = None
    lyrics: str | None = None
    error: str | None = None
    created_at: str | None = None


class Task(BaseModel):
    """A generation request as the upstream reports it: a task id and its clips."""

    model_config = _RUNTIME

    task_id: str
    api: ApiFamily
    kind: TaskKind = "music"
    status: Status
    raw_status: str | None = None
    clips: list[Clip] = Field(default_factory=list)
    error: str | None = None
    lyrics_title: str | None = None
    lyrics_text: str | None = None
    raw_answer: str | None = Field(
        default=None,
        exclude=True,
        description="The start of the submit's answer as received (key scrubbed); set on submits only.",
    )


def aggregate_status(clips: list[Clip]) -> Status:
    """The status of a task from its clips.

    Complete once every clip is finished and one has audio; streaming as soon as any
    clip can be heard; failed only when every clip failed.
    """
    if not clips:
        return Status.PENDING
    statuses = [c.status for c in clips]
    if all(s is Status.FAILED for s in statuses):
        return Status.FAILED
    if all(s.finished for s in statuses):
        return Status.COMPLETE
    if any(s.playable for s in statuses):
        return Status.STREAMING
    if any(s is Status.RUNNING for s in statuses):
        return Status.RUNNING
    return Status.PENDING


class SavedFile(BaseModel):
    """A downloaded audio file."""

    clip_id: str
    task_id: str | None = None
    path: str
    url: str
    bytes: int
    mime_type: str


class TaskRecord(BaseModel):
    """One ledger row: what was asked, what the upstream said last, and what we saved."""

    model_config = ConfigDict(defer_build=True)  # built on first use, not at start-up

    local_id: str
    task_id: str | None
    api: ApiFamily
    kind: TaskKind
    request: dict[str, Any] = Field(default_factory=dict)
    status: Status
    raw_status: str | None = None
    error: str | None = None
    clips: list[Clip] = Field(default_factory=list)
    lyrics_title: str | None = None
    lyrics_text: str | None = None
    sandbox: bool = False
    raw_answer: str | None = None  # the submit's answer as received (bounded, no key)
    created_at: float
    updated_at: float
    files: list[SavedFile] = Field(default_factory=list)

    @property
    def clip_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.clips)

    def as_task(self) -> Task:
        """The record as the Task the client layer speaks."""
        return Task(
            task_id=self.task_id or self.local_id,
            api=self.api,
            kind=self.kind,
            status=self.status,
            raw_status=self.raw_status,
            clips=self.clips,
            error=self.error,
            lyrics_title=self.lyrics_title,
            lyrics_text=self.lyrics_text,
        )


class AcceptedSubmit(BaseModel):
    """A submit the upstream accepted (and charged) that the ledger could not record yet: what the
    journal keeps on local disk until the ledger answers again. The tenant, never a key."""

    model_config = _RUNTIME

    local_id: str  # the intent row written before the submit was sent
    tenant: str
    api: ApiFamily
    sandbox: bool = False
    accepted_at: float  # wall-clock time
    task: Task
    raw_answer: str | None = None  # Task.raw_answer, which a Task leaves out when dumped

    def accepted_task(self) -> Task:
        """The task as the upstream's submit answer gave it, with that answer kept."""
        return self.task.model_copy(update={"raw_answer": self.raw_answer})

    def as_record(self) -> TaskRecord:
        """The record a caller sees while the ledger has not got it yet."""
        return TaskRecord(
            local_id=self.local_id,
            task_id=self.task.task_id,
            api=self.api,
            kind=self.task.kind,
            status=self.task.status,
            raw_status=self.task.raw_status,
            error=self.task.error,
            clips=self.task.clips,
            lyrics_title=self.task.lyrics_title,
            lyrics_text=self.task.lyrics_text,
            sandbox=self.sandbox,
            created_at=self.accepted_at,
            updated_at=self.accepted_at,
        )


class UsageLine(BaseModel):
    """Paid requests of one kind, family and model in a time window, from the ledger."""

    kind: TaskKind
    api: ApiFamily
    model: str | None = None
    requests: int = Field(description="Paid requests: accepted upstream, or possibly charged.")
    maybe_charged: int = Field(
        default=0, description="Of those, submits whose outcome is unknown (may have been charged)."
    )
    clips: int = 0


@dataclass(frozen=True)
class TaskRef:
    """What it takes to poll a task: its id, family and, for the clip API, its clip ids."""

    task_id: str
    api: ApiFamily
    kind: TaskKind = "music"
    clip_ids: tuple[str, ...] = ()
    model: str | None = None  # the mv it was made with: latency is learned per model
    tenant: str = ""  # team mode: whose key polls it ("" is the server's own key)
