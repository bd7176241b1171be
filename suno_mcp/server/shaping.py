"""Turning what the service found into what a tool returns: a CallToolResult with its text, its
structured content, links to the audio (and the audio itself when asked for), progress
notifications while it waits, and the summaries the ledger's listings show.

The models are in :mod:`suno_mcp.server.results` and the texts in :mod:`suno_mcp.server.texts`;
this module makes protocol objects of them.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import mcp_types as types

from suno_mcp.domain.media import mime_for_url
from suno_mcp.domain.models import SavedFile, Task, TaskRecord
from suno_mcp.server.lifespan import ToolContext
from suno_mcp.server.results import (
    ClipResult,
    DownloadResult,
    TaskResult,
    TaskSummary,
    UsageResult,
    task_result,
    usage_result,
)
from suno_mcp.server.texts import progress_message, request_summary, task_text, usage_text
from suno_mcp.settings import EMBED_MAX_BYTES

if TYPE_CHECKING:
    from suno_mcp.service.core import Outcome, SunoService


# (newest state, seconds since the submit, the last check's error, usual seconds to final audio)
ProgressReport = Callable[[Task | None, float, str | None, float], Awaitable[None]]


def progress_reporter(ctx: ToolContext) -> ProgressReport:
    """The service's progress callback for this tool call: MCP progress notifications, rising."""
    last = -1.0

    async def report(
        task: Task | None, elapsed: float, poll_error: str | None, typical_final_s: float
    ) -> None:
        nonlocal last
        # MCP requires every notification's progress to exceed the previous one, and two
        # polls can land closer together than any rounding (always, at sandbox speeds).
        # Progress counts seconds since the submit, so it never goes back across calls.
        last = max(round(elapsed, 3), round(last + 0.001, 3))
        status = None if task is None else task.status
        clips = 0 if task is None else len(task.clips)
        await ctx.report_progress(
            progress=last,
            total=max(last, round(typical_final_s, 3)),
            message=progress_message(status, clips, elapsed, poll_error, typical_final_s=typical_final_s),
        )

    return report


def clip_link(result: TaskResult, clip: ClipResult) -> types.ResourceLink | None:
    """A link to a clip's final audio, else to its streaming preview, else None."""
    name = clip.title or clip.id
    if clip.audio_url:
        return types.ResourceLink(
            type="resource_link",
            uri=clip.audio_url,
            name=f"{name} ({clip.id})",
            description="Final audio" + (" (sandbox)" if result.sandbox else ""),
            mime_type=mime_for_url(clip.audio_url),
        )
    if clip.preview_url:
        return types.ResourceLink(
            type="resource_link",
            uri=clip.preview_url,
            name=f"{name} ({clip.id}) preview",
            description="Streaming preview, not the final file",
            mime_type=mime_for_url(clip.preview_url),
        )
    return None


async def audio_blocks(result: TaskResult, files: list[SavedFile], embed: bool) -> list[types.ContentBlock]:
    """Links to every clip's audio and to the files saved of it, with each small file's audio when ``embed``."""
    blocks: list[types.ContentBlock] = [
        link for link in (clip_link(result, clip) for clip in result.clips) if link is not None
    ]
    for file in files:
        blocks.append(file_link(file.path, file.mime_type, file.bytes))
        path = anyio.Path(file.path)
        if embed and file.bytes <= EMBED_MAX_BYTES and await path.exists():
            data = base64.b64encode(await path.read_bytes()).decode()
            blocks.append(types.AudioContent(type="audio", data=data, mime_type=file.mime_type))
    return blocks


def file_link(path: str, mime_type: str, size: int) -> types.ResourceLink:
    """A file:// link to audio saved on this machine."""
    local = Path(path).absolute()
    return types.ResourceLink(
        type="resource_link",
        uri=local.as_uri(),
        name=local.name,
        description="Downloaded audio file",
        mime_type=mime_type,
        size=size,
    )


async def tool_result(service: SunoService, outcome: Outcome) -> types.CallToolResult:
    """What a task tool returns: the task's text, its audio links and its TaskResult."""
    result = task_result(
        outcome.record,
        deduplicated=outcome.deduplicated,
        waited_s=outcome.waited_s,
        poll_error=outcome.poll_error,
        checked_s_ago=outcome.checked_s_ago,
        recorded=outcome.recorded,
    )
    content: list[types.ContentBlock] = [types.TextContent(type="text", text=task_text(result))]
    content.extend(await audio_blocks(result, outcome.record.files, service.settings.embed_audio))
    return types.CallToolResult(content=content, structured_content=result.model_dump(mode="json"))


def task_summary(record: TaskRecord) -> TaskSummary:
    """One line of the task list (list_tasks, suno://tasks)."""
    title = next((c.title for c in record.clips if c.title), None) or record.lyrics_title
    return TaskSummary(
        local_id=record.local_id,
        request=request_summary(record.request),
        task_id=record.task_id,
        kind=record.kind,
        api=record.api,
        status=record.status,
        title=title,
        created_at=record.created_at,
        clip_ids=list(record.clip_ids),
        error=record.error,
        sandbox=record.sandbox,
    )


async def read_usage(service: SunoService) -> UsageResult:
    """Usage in each window and the budget, as get_usage and suno://usage report them."""
    windows = await service.usage()
    settings = service.settings
    return usage_result(
        [(w.window, w.lines) for w in windows],
        prices=settings.prices,
        budget=settings.budget,
        budget_used=await service.budget_used(),
        confirm=settings.confirm,
    )


def usage_tool_result(result: UsageResult) -> types.CallToolResult:
    """What get_usage returns: the usage as text and as its UsageResult."""
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=usage_text(result))],
        structured_content=result.model_dump(mode="json"),
    )


def download_result(files: list[SavedFile], *, directory: str) -> types.CallToolResult:
    """What download_audio returns: the saved files as text and links (local and hosted), and its
    DownloadResult."""
    result = DownloadResult(files=files, directory=directory)
    lines = [f"Saved {len(files)} file(s):"] + [f"- {f.path} ({f.bytes} bytes, {f.mime_type})" for f in files]
    content: list[types.ContentBlock] = [types.TextContent(type="text", text="\n".join(lines))]
    for f in files:
        content.append(file_link(f.path, f.mime_type, f.bytes))
        content.append(
            types.ResourceLink(type="resource_link", uri=f.url, name=f.clip_id, mime_type=f.mime_type)
        )
    return types.CallToolResult(content=content, structured_content=result.model_dump(mode="json"))
