"""What tools return: structured models, the short text a model reads, and error texts.

No MCP and no HTTP here: the server turns these into protocol objects.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from suno_mcp.catalog import DOCUMENTED_MODEL_HINT
from suno_mcp.errors import (
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
)
from suno_mcp.ledger import SavedFile, TaskRecord
from suno_mcp.models import ApiFamily, Status, TaskKind

TEXT_LIMIT = 1800  # the text part stays under 2 KB
SANDBOX_NOTE = "SANDBOX: synthesized test audio from the local sandbox, not Suno."


class ClipResult(BaseModel):
    """One clip as a tool reports it."""

    id: str = Field(description="Clip id: use with extend_music, get_complete_song, download_audio.")
    status: Status
    title: str | None = None
    audio_url: str | None = Field(default=None, description="Final audio file (set once complete).")
    preview_url: str | None = Field(
        default=None,
        description="Streaming preview, playable before the final file exists. Not the final file.",
    )
    image_url: str | None = None
    video_url: str | None = None
    duration: float | None = Field(default=None, description="Seconds.")
    model: str | None = None
    tags: str | None = None
    error: str | None = None
    local_file: str | None = Field(default=None, description="Path of the downloaded file, if saved.")


class TaskResult(BaseModel):
    """A task's state and what to do next."""

    task_id: str | None = Field(
        description="Pass to get_task_status. None only while the submit is unconfirmed."
    )
    kind: TaskKind
    api: ApiFamily
    status: Status
    clips: list[ClipResult] = Field(default_factory=list)
    lyrics_title: str | None = None
    lyrics: str | None = None
    error: str | None = None
    next_step: str
    deduplicated: bool = Field(
        default=False,
        description="True when an identical recent request was found and reused instead of paying again.",
    )
    sandbox: bool = Field(
        default=False, description="True when the audio came from the local sandbox, not Suno."
    )
    waited_seconds: float = 0.0
    files: list[SavedFile] = Field(default_factory=list)


class TaskSummary(BaseModel):
    """One line of list_tasks."""

    local_id: str = Field(
        description="The ledger's own id; names a row even before the upstream gave a task id."
    )
    request: str | None = Field(default=None, description="What was asked, shortened.")
    task_id: str | None
    kind: TaskKind
    api: ApiFamily
    status: Status
    title: str | None = None
    created_at: float
    clip_ids: list[str] = Field(default_factory=list)
    error: str | None = None
    sandbox: bool = False


class TaskList(BaseModel):
    """list_tasks' answer, newest first."""

    tasks: list[TaskSummary]
    count: int


class DownloadResult(BaseModel):
    """download_audio's answer."""

    files: list[SavedFile]
    directory: str


def next_step(record: TaskRecord) -> str:
    """The sentence telling the model what to do after this result."""
    task = record.task_id
    if record.task_id is None or record.status is Status.UNKNOWN:
        return (
            "The submit's outcome is unknown (it may have been charged). Call list_tasks with "
            "status='unknown' and check with the user before submitting again."
        )
    if record.kind == "lyrics":
        if record.status is Status.COMPLETE:
            return "Pass these lyrics to generate_music(lyrics=..., tags=..., title=...)."
        if record.status is Status.FAILED:
            return "Lyrics generation failed; try generate_lyrics again with a different description."
        return f"Still writing: call get_task_status(task_id='{task}', wait_seconds=20)."
    if record.status is Status.COMPLETE:
        return (
            "Final audio is ready. Offer the audio_url links; download_audio saves the files; "
            "extend_music continues a clip; get_complete_song joins an extended chain."
        )
    if record.status is Status.FAILED:
        return "Generation failed; adjust the prompt (see error) and call generate_music again."
    if record.status is Status.STREAMING:
        return (
            f"A preview is playable now (preview_url; not the final file). Final audio usually follows in "
            f"1-3 minutes: call get_task_status(task_id='{task}', wait_seconds=45)."
        )
    return f"Still generating: call get_task_status(task_id='{task}', wait_seconds=45) (usually 1-3 minutes)."


def task_result(
    record: TaskRecord, *, deduplicated: bool = False, waited_s: float = 0.0, poll_error: str | None = None
) -> TaskResult:
    """The structured result for one ledger record."""
    files = {f.clip_id: f.path for f in record.files}
    clips = [
        ClipResult(
            id=c.id,
            status=c.status,
            title=c.title,
            audio_url=c.audio_url,
            preview_url=c.preview_url,
            image_url=c.image_url,
            video_url=c.video_url,
            duration=c.duration,
            model=c.model,
            tags=c.tags,
            error=c.error,
            local_file=files.get(c.id),
        )
        for c in record.clips
    ]
    error = record.error
    if poll_error and not record.status.finished:
        error = f"last status check failed: {poll_error} (will retry)"
    return TaskResult(
        task_id=record.task_id,
        kind=record.kind,
        api=record.api,
        status=record.status,
        clips=clips,
        lyrics_title=record.lyrics_title,
        lyrics=record.lyrics_text,
        error=error,
        next_step=next_step(record),
        deduplicated=deduplicated,
        sandbox=record.sandbox,
        waited_seconds=waited_s,
        files=record.files,
    )


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
    if isinstance(err, ConfigurationError):
        return m
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
    if isinstance(err, MalformedResponseError):
        return f"The upstream sent an answer we could not read ({m}). Try again; if it persists, report it."
    return f"{type(err).__name__}: {m}"


_SIMPLE_KEYS = frozenset(
    {"type", "format", "maxLength", "minLength", "minimum", "maximum", "pattern", "enum"}
)


def compact_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The same JSON schema without ``$ref``s and with ``anyOf [X, null]`` written ``type: [X, "null"]``.

    Clients validate every structured result against the output schema, most with the
    pure-Python jsonschema package, where resolving references and trying each ``anyOf``
    branch cost about three times the validation itself. Our models are not recursive,
    so every reference can be inlined.
    """
    defs: dict[str, Any] = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            return walk({**defs[ref.removeprefix("#/$defs/")], **siblings})
        out = {k: walk(v) for k, v in node.items() if k != "$defs"}
        branches = out.get("anyOf")
        if isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches:
            other = branches[0] if branches[1] == {"type": "null"} else branches[1]
            if isinstance(other, dict) and set(other) <= _SIMPLE_KEYS and isinstance(other.get("type"), str):
                merged = {**other, **{k: v for k, v in out.items() if k != "anyOf"}}
                merged["type"] = [other["type"], "null"]
                if "enum" in merged:
                    merged["enum"] = [*merged["enum"], None]
                return merged
        return out

    result: dict[str, Any] = walk(schema)
    return result


def request_summary(request: dict[str, Any], limit: int = 80) -> str | None:
    """A short line saying what a ledger row asked for, so an unconfirmed row can be recognised."""
    parts = []
    for key in ("gpt_description_prompt", "title", "tags", "prompt", "continue_clip_id", "clip_id"):
        value = request.get(key)
        if isinstance(value, str) and value.strip():
            parts.append(f"{key}={' '.join(value.split())}")
    if not parts:
        return None
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"
