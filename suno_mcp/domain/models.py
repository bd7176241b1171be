"""Data shared by every layer: requests to the upstream, tasks and clips coming back.

Both of the vendor's endpoint families are parsed into the same :class:`Task` and
:class:`Clip`, with one status vocabulary (:class:`Status`). The vendor's own status
string is kept in ``raw_status``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# The status vocabulary lives in its own module (light enough for the server's start-up).
from suno_mcp.domain.status import ApiFamily as ApiFamily
from suno_mcp.domain.status import Status as Status
from suno_mcp.domain.status import TaskKind as TaskKind
from suno_mcp.domain.status import failure_text as failure_text
from suno_mcp.domain.status import normalize_status as normalize_status

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
