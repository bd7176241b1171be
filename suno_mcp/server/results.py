"""What tools return: the structured result models, and how a ledger record or the usage
becomes one (with the sentence that says what to do next).

No MCP and no HTTP here: :mod:`suno_mcp.server.shaping` turns these into protocol objects, and
:mod:`suno_mcp.server.texts` writes the short text a model reads beside them.
"""

from __future__ import annotations

from pydantic import Field

from suno_mcp.domain.models import ApiFamily, SavedFile, Status, TaskKind, TaskRecord, UsageLine
from suno_mcp.domain.spending import Budget
from suno_mcp.server.schema import CompactSchemaModel


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
    recorded: bool = Field(
        default=True,
        description="False while the ledger could not record this accepted task yet: its id is kept and recorded soon.",
    )


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


def next_step(record: TaskRecord, *, recorded: bool = True) -> str:
    """The sentence telling the model what to do after this result."""
    task = record.task_id
    if not recorded and task is not None and not record.status.finished:
        return (
            f"The upstream accepted it as task {task} (paid once; do not submit it again). The id is kept "
            f"safely on this server and goes into the task ledger as soon as the ledger answers: call "
            f"get_task_status(task_id='{task}', wait_seconds=45) to follow it."
        )
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
    recorded: bool = True,
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
        next_step=next_step(record, recorded=recorded),
        deduplicated=deduplicated,
        sandbox=record.sandbox,
        waited_seconds=waited_s,
        # Said only when the answer is not this moment's (no request could go out in time).
        checked_seconds_ago=checked_s_ago if checked_s_ago and checked_s_ago >= 2 else None,
        recorded=recorded,
    )
