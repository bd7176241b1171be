"""What tools return: structured models, the short text a model reads, and error texts.

No MCP and no HTTP here: the server turns these into protocol objects.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field, GetJsonSchemaHandler, SerializerFunctionWrapHandler, model_serializer
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from suno_mcp.domain.catalog import DOCUMENTED_MODEL_HINT
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
    SpendingRefusedError,
    SubmitOutcomeUnknownError,
    SunoError,
    UploadAnswerError,
    UpstreamConnectionError,
    UpstreamTimeoutError,
)
from suno_mcp.domain.models import ApiFamily, SavedFile, Status, TaskKind, TaskRecord, UsageLine
from suno_mcp.domain.spending import Budget

TEXT_LIMIT = 1800  # the text part stays under 2 KB
SANDBOX_NOTE = "SANDBOX: synthesized test audio from the local sandbox, not Suno."


_SIMPLE_KEYS = frozenset(
    {"type", "format", "maxLength", "minLength", "minimum", "maximum", "pattern", "enum", "description"}
)


def _nullable_as_type_list(node: dict[str, Any]) -> dict[str, Any]:
    """``anyOf [X, null]`` written ``type: [X, "null"]`` when X is a plain typed schema."""
    branches = node.get("anyOf")
    if not (isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches):
        return node
    other = branches[0] if branches[1] == {"type": "null"} else branches[1]
    if not (isinstance(other, dict) and set(other) <= _SIMPLE_KEYS and isinstance(other.get("type"), str)):
        return node
    merged = {**other, **{k: v for k, v in node.items() if k != "anyOf"}}
    merged["type"] = [other["type"], "null"]
    if "enum" in merged:
        merged["enum"] = [*merged["enum"], None]
    return merged


def compact(node: Any, resolve: Callable[[dict[str, Any]], dict[str, Any]], *, output: bool) -> Any:
    """A JSON schema without references, generated titles, examples or null defaults; for
    outputs, also without defaults and descriptions (the tool descriptions and each result's
    text and ``next_step`` say what the fields mean, and five tools repeat the same schema).

    ``resolve`` turns a ``{"$ref": ...}`` node into the schema it names. Clients validate
    every structured result against the output schema, most with the pure-Python jsonschema
    package, where resolving references and trying each ``anyOf`` branch cost about three
    times the validation itself; and every byte of a schema is read by the model in every
    conversation. Our models are not recursive, so every reference can be inlined.
    """
    if isinstance(node, list):
        return [compact(item, resolve, output=output) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        # The named model's or enum's own docstring is dropped; the field's description stays.
        target = {k: v for k, v in resolve({"$ref": node["$ref"]}).items() if k != "description"}
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return compact({**target, **siblings}, resolve, output=output)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs", "examples") or (output and key in ("default", "description")):
            continue
        if key == "default" and value is None:
            continue  # an argument left out is None already
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: compact(prop, resolve, output=output) for name, prop in value.items()}
        else:
            out[key] = compact(value, resolve, output=output)
    return _nullable_as_type_list(out)


def _never_null(node: Any) -> Any:
    if not isinstance(node, dict) or not isinstance(node.get("type"), list):
        return node
    types = [t for t in node["type"] if t != "null"]
    trimmed = {**node, "type": types[0] if len(types) == 1 else types}
    if "enum" in trimmed:
        trimmed["enum"] = [v for v in trimmed["enum"] if v is not None]
    return trimmed


def compact_input(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's input schema made compact: the same arguments accepted, fewer bytes to read."""
    defs: dict[str, Any] = schema.get("$defs", {})

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        resolved: dict[str, Any] = defs[str(node["$ref"]).removeprefix("#/$defs/")]
        return resolved

    result: dict[str, Any] = compact(schema, resolve, output=False)
    return result


class CompactSchemaModel(BaseModel):
    """A tool result model that publishes its JSON schema compact (see :func:`compact`) and
    leaves out optional fields that are None, so a result says only what is known."""

    @model_serializer(mode="wrap")
    def _without_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        fields = type(self).model_fields
        return {k: v for k, v in data.items() if v is not None or k not in fields or fields[k].is_required()}

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler.resolve_ref_schema(handler(core_schema))
        result: JsonSchemaValue = compact(schema, handler.resolve_ref_schema, output=True)
        # This model leaves out its optional fields that are None, so those are never null.
        # (Nested models of this kind went through this hook already; others keep their nulls.)
        required = set(result.get("required", []))
        result["properties"] = {
            name: prop if name in required else _never_null(prop)
            for name, prop in result["properties"].items()
        }
        return result


class ClipResult(CompactSchemaModel):
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


class TaskResult(CompactSchemaModel):
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
    checked_seconds_ago: float | None = None


class TaskSummary(CompactSchemaModel):
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


class TaskList(CompactSchemaModel):
    """list_tasks' answer, newest first."""

    tasks: list[TaskSummary]
    count: int


class DownloadResult(CompactSchemaModel):
    """download_audio's answer."""

    files: list[SavedFile]
    directory: str


class UsageCount(CompactSchemaModel):
    """Paid requests of one kind, family and model in a window."""

    kind: TaskKind
    api: ApiFamily
    model: str | None = None
    requests: int
    maybe_charged: int = 0
    clips: int = 0
    cost: float | None = None


class UsagePeriod(CompactSchemaModel):
    """One window's totals and lines."""

    window: str
    requests: int
    maybe_charged: int
    clips: int
    cost: float | None = None
    lines: list[UsageCount]


class UsageResult(CompactSchemaModel):
    """get_usage's answer."""

    periods: list[UsagePeriod]
    budget: str | None = None
    budget_used: float | None = None
    confirm: str
    note: str


def usage_result(
    windows: list[tuple[str, list[UsageLine]]],
    *,
    prices: dict[str, float],
    budget: Budget | None,
    budget_used: float | None,
    confirm: str,
) -> UsageResult:
    """Usage per window, with an estimated cost when prices are set."""
    periods = []
    unpriced: set[str] = set()
    for name, lines in windows:
        counts = []
        for line in lines:
            price = prices.get(line.kind)
            if price is None:
                unpriced.add(line.kind)
            counts.append(
                UsageCount(
                    kind=line.kind,
                    api=line.api,
                    model=line.model,
                    requests=line.requests,
                    maybe_charged=line.maybe_charged,
                    clips=line.clips,
                    cost=None if price is None else round(price * line.requests, 4),
                )
            )
        periods.append(
            UsagePeriod(
                window=name,
                requests=sum(c.requests for c in counts),
                maybe_charged=sum(c.maybe_charged for c in counts),
                clips=sum(c.clips for c in counts),
                cost=round(sum(c.cost or 0.0 for c in counts), 4) if prices else None,
                lines=counts,
            )
        )
    if not prices:
        note = "Counts only: set SUNO_MCP_PRICES (e.g. music=0.10,lyrics=0.01,concat=0.10) for an estimated cost."
    else:
        note = "cost is an estimate from SUNO_MCP_PRICES, in the user's currency"
        if unpriced:
            note += f"; no price for {', '.join(sorted(unpriced))} (counted as 0)"
        note += "."
    note += " maybe_charged: submits whose outcome is unknown. Refused requests are not counted."
    return UsageResult(
        periods=periods,
        budget=None if budget is None else f"{budget.describe()} (SUNO_MCP_BUDGET={budget.text})",
        budget_used=budget_used,
        confirm=confirm,
        note=note,
    )


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
    if record.kind == "upload" and record.status is Status.COMPLETE:
        clip = record.clip_ids[0] if record.clip_ids else task
        return (
            f"Uploaded as clip {clip}: extend_music(clip_id='{clip}', continue_at=<a second within it>) "
            "continues it; get_complete_song then joins the upload and the continuation."
        )
    if record.status is Status.COMPLETE:
        return (
            "Final audio is ready. Offer the audio_url links; download_audio saves the files; "
            "extend_music continues a clip; get_complete_song joins an extended chain."
        )
    if record.status is Status.FAILED:
        again = {"cover": "cover_music", "upload": "upload_audio"}.get(record.kind, "generate_music")
        return f"Generation failed; adjust the request (see error) and call {again} again."
    if record.status is Status.STALLED:
        return (
            f"The upstream has shown no progress for a long time, so it is no longer followed. "
            f"get_task_status(task_id='{task}') looks again; ask the user before paying for a new request."
        )
    if record.status is Status.STREAMING:
        return (
            f"A preview is playable now (preview_url; not the final file). Final audio usually follows in "
            f"1-3 minutes: call get_task_status(task_id='{task}', wait_seconds=45)."
        )
    return f"Still generating: call get_task_status(task_id='{task}', wait_seconds=45) (usually 1-3 minutes)."


def task_result(
    record: TaskRecord,
    *,
    deduplicated: bool = False,
    waited_s: float = 0.0,
    poll_error: str | None = None,
    checked_s_ago: float | None = None,
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
        # Said only when the answer is not this moment's (no request could go out in time).
        checked_seconds_ago=checked_s_ago if checked_s_ago and checked_s_ago >= 2 else None,
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
    if result.checked_seconds_ago is not None:
        head += (
            f" (as of {result.checked_seconds_ago:.0f} s ago: the upstream is busy, this is the newest known)"
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
