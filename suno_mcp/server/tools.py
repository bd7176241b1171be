"""The ten tools: what each is called, takes, says of itself and returns.

A tool body validates what the schema cannot, asks the service (:mod:`suno_mcp.server.calls`
runs the call and maps its errors) and returns a model (:mod:`suno_mcp.server.shaping`).
"""

# No `from __future__ import annotations` here: the SDK reads the tools' annotations at
# registration, and some of them (the waits) are built from the settings in ToolKit.

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import mcp_types as types
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from suno_mcp.domain.inputs import (
    ArgumentError,
    AudioUrl,
    ClipId,
    ContinueAt,
    CoverLyrics,
    CoverTags,
    Description,
    ForceNew,
    Lyrics,
    LyricsPrompt,
    LyricsText,
    Model,
    ModelText,
    NegativeTags,
    OptionalClipId,
    OptionalTaskId,
    Tags,
    TagsText,
    TaskId,
    Title,
    check_text,
    wait_field,
)
from suno_mcp.domain.models import SavedFile, Status
from suno_mcp.server.calls import answer, run_call
from suno_mcp.server.lifespan import AppState, ToolContext, tool_service
from suno_mcp.server.listing import ToolShape
from suno_mcp.server.player import player_meta
from suno_mcp.server.results import DownloadResult, TaskList, TaskResult, UsageResult
from suno_mcp.server.shaping import (
    ProgressReport,
    download_result,
    read_usage,
    task_summary,
    usage_tool_result,
)

if TYPE_CHECKING:
    from suno_mcp.service.core import Outcome, SunoService

# The default wait of generate_lyrics: lyrics come back in seconds, not minutes.
LYRICS_WAIT_S = 30.0


def register_tools(server: MCPServer[AppState], shape: ToolShape) -> None:
    """Register the ten tools, in the order tools/list shows them.

    They see the settings only through ``shape``, which is what lets a server answer tools/list
    from the shipped listing (:mod:`suno_mcp.server.listing`) before registering them."""
    kit = ToolKit.for_shape(shape)
    for register in (
        _register_generate,
        _register_extend,
        _register_status,
        _register_list,
        _register_lyrics,
        _register_complete_song,
        _register_download,
        _register_cover,
        _register_upload,
        _register_usage,
    ):
        register(server, kit)


@dataclass(frozen=True)
class ToolKit:
    """What every tool registration needs: the settings the tools quote and the argument types
    they imply."""

    shape: ToolShape
    generate_wait: Any
    wait_like_generate: Any  # generate_wait, described by the tool ("as in generate_music")
    status_wait: Any
    lyrics_default: float
    lyrics_wait: Any

    @classmethod
    def for_shape(cls, shape: ToolShape) -> "ToolKit":
        lyrics_default = min(LYRICS_WAIT_S, shape.max_wait)
        return cls(
            shape=shape,
            generate_wait=wait_field(shape.default_wait, shape.max_wait),
            wait_like_generate=wait_field(shape.default_wait, shape.max_wait, described=False),
            status_wait=wait_field(0, shape.max_wait),
            lyrics_default=lyrics_default,
            lyrics_wait=wait_field(lyrics_default, shape.max_wait, described=False),
        )

    @property
    def reuse_note(self) -> str:
        """How long an identical request is answered from the ledger, as the tool descriptions say it."""
        window = self.shape.duplicate_window
        if window <= 0:
            return "Every call is a new paid request (the duplicate guard is off)."
        return (
            f"An identical request within {_duration(window)} is reused, not paid again (force_new=true "
            "overrides)."
        )


def _duration(seconds: float) -> str:
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} seconds"


# Only the hints that differ from the protocol's defaults (not read-only, destructive, not idempotent,
# open world; idempotent and destructive mean nothing for a read-only tool): every hint written out
# is read in every conversation, and one left out means its default.
WRITES = types.ToolAnnotations(destructive_hint=False)
READS = types.ToolAnnotations(read_only_hint=True)
LOCAL_READS = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)


def _register_generate(server: MCPServer[AppState], kit: ToolKit) -> None:
    shape = kit.shape

    @server.tool(
        title="Generate music",
        meta=player_meta("generate_music"),
        annotations=WRITES,
        description=(
            "Start a song (two clips; costs credits): EITHER description (Suno writes lyrics and style) OR "
            "lyrics with optional tags and title; instrumental=true: no vocals (lyrics optional). Returns "
            "once playable: preview_url streams now, audio_url is the final file; then "
            f"get_task_status(task_id, wait_seconds) until complete. {kit.reuse_note} Models: suno://models."
        ),
    )
    async def generate_music(
        ctx: ToolContext,
        description: Description = None,
        lyrics: Lyrics = None,
        tags: Tags = None,
        title: Title = None,
        instrumental: Annotated[bool, Field(description="true: music without vocals.")] = False,
        model: Model = None,
        wait_seconds: kit.generate_wait = shape.default_wait,  # type: ignore[name-defined]
        force_new: ForceNew = False,
    ) -> Annotated[types.CallToolResult, TaskResult]:
        async def call(service: "SunoService", progress: ProgressReport) -> "Outcome":
            request = service.generate_request(
                description=description,
                lyrics=lyrics,
                tags=tags,
                title=title,
                instrumental=instrumental,
                model=model,
            )
            return await service.submit_music(
                request, force_new=force_new, wait_s=wait_seconds, progress=progress
            )

        return await answer(ctx, call)


def _register_extend(server: MCPServer[AppState], kit: ToolKit) -> None:
    shape = kit.shape

    @server.tool(
        title="Extend music",
        meta=player_meta("extend_music"),
        annotations=WRITES,
        description=(
            "Continue a clip from continue_at seconds (costs credits; two new clips); lyrics/tags/title "
            "steer it. lyrics, tags, model, wait_seconds, force_new as in generate_music. "
            "get_complete_song(clip_id of the last extension) then joins the chain into one song."
        ),
    )
    async def extend_music(
        ctx: ToolContext,
        clip_id: ClipId,
        continue_at: ContinueAt,
        lyrics: LyricsText = None,
        tags: TagsText = None,
        title: Title = None,
        instrumental: Annotated[bool, Field(description="true: no vocals in the continuation.")] = False,
        model: ModelText = None,
        task_id: OptionalTaskId = None,
        wait_seconds: kit.wait_like_generate = shape.default_wait,  # type: ignore[name-defined]
        force_new: bool = False,
    ) -> Annotated[types.CallToolResult, TaskResult]:
        async def call(service: "SunoService", progress: ProgressReport) -> "Outcome":
            request = await service.extend_request(
                clip_id=clip_id,
                continue_at=continue_at,
                lyrics=lyrics,
                tags=tags,
                title=title,
                instrumental=instrumental,
                model=model,
                task_id=task_id,
            )
            return await service.submit_music(
                request, force_new=force_new, wait_s=wait_seconds, progress=progress
            )

        return await answer(ctx, call)


def _register_status(server: MCPServer[AppState], kit: ToolKit) -> None:
    @server.tool(
        title="Get task status",
        meta=player_meta("get_task_status"),
        annotations=READS,
        description=(
            "A task's state (earlier sessions too; a clip id works), its clips with URLs and the next "
            "step. wait_seconds > 0 waits for the next milestone (playable, then final)."
        ),
    )
    async def get_task_status(
        ctx: ToolContext,
        task_id: TaskId,
        wait_seconds: kit.status_wait = 0,  # type: ignore[name-defined]
    ) -> Annotated[types.CallToolResult, TaskResult]:
        return await answer(
            ctx, lambda service, progress: service.status(task_id, wait_s=wait_seconds, progress=progress)
        )


def _register_list(server: MCPServer[AppState], kit: ToolKit) -> None:
    @server.tool(
        title="List tasks",
        annotations=LOCAL_READS,
        description=(
            "Tasks in the local ledger, newest first: ids, status, titles, clip ids. Check it before "
            "resubmitting after an error: status 'unknown' means a submit may have been charged unanswered."
        ),
    )
    async def list_tasks(
        ctx: ToolContext,
        status: Annotated[
            Literal["pending", "running", "streaming", "complete", "failed", "unknown", "stalled"] | None,
            Field(description="Only tasks in this status."),
        ] = None,
        limit: Annotated[int, Field(ge=1, le=200, description="How many (newest first).")] = 20,
    ) -> TaskList:
        service = await tool_service(ctx)
        records = await service.list_tasks(status=Status(status) if status else None, limit=limit)
        return TaskList(tasks=[task_summary(r) for r in records], count=len(records))


def _register_lyrics(server: MCPServer[AppState], kit: ToolKit) -> None:
    @server.tool(
        title="Write lyrics",
        annotations=WRITES,
        description=(
            "Write song lyrics and a title from a description, ready for generate_music(lyrics=..., "
            "title=..., tags=...). wait_seconds, force_new as there."
        ),
    )
    async def generate_lyrics(
        ctx: ToolContext,
        description: LyricsPrompt,
        wait_seconds: kit.lyrics_wait = kit.lyrics_default,  # type: ignore[name-defined]
        force_new: bool = False,
    ) -> Annotated[types.CallToolResult, TaskResult]:
        async def call(service: "SunoService", progress: ProgressReport) -> "Outcome":
            check_text(description=description)
            return await service.submit_lyrics(
                description, force_new=force_new, wait_s=wait_seconds, progress=progress
            )

        return await answer(ctx, call)


def _register_complete_song(server: MCPServer[AppState], kit: ToolKit) -> None:
    @server.tool(
        title="Get the complete song",
        meta=player_meta("get_complete_song"),
        annotations=WRITES,
        description=(
            "After extend_music: join the chain (original clip + extensions) into one song; pass the "
            "clip_id of the LAST extension. Returns a task like generate_music; wait_seconds, force_new "
            "as there."
        ),
    )
    async def get_complete_song(
        ctx: ToolContext,
        clip_id: ClipId,
        wait_seconds: kit.wait_like_generate = kit.shape.default_wait,  # type: ignore[name-defined]
        force_new: bool = False,
    ) -> Annotated[types.CallToolResult, TaskResult]:
        return await answer(
            ctx,
            lambda service, progress: service.complete_song(
                clip_id, force_new=force_new, wait_s=wait_seconds, progress=progress
            ),
        )


def _register_download(server: MCPServer[AppState], kit: ToolKit) -> None:
    @server.tool(
        title="Download audio",
        annotations=types.ToolAnnotations(destructive_hint=False, idempotent_hint=True),
        description=(
            "Save a task's final audio (its complete clips) or one clip to the data directory before the "
            "hosted URLs expire; give task_id or clip_id. Returns the file paths."
        ),
    )
    async def download_audio(
        ctx: ToolContext,
        task_id: OptionalTaskId = None,
        clip_id: OptionalClipId = None,
    ) -> Annotated[types.CallToolResult, DownloadResult]:
        service = await tool_service(ctx)

        async def call() -> list[SavedFile]:
            if (task_id is None) == (clip_id is None):
                raise ArgumentError("task_id: give exactly one of task_id or clip_id.")
            return await service.download(task_id=task_id, clip_id=clip_id)

        files = await run_call(call)
        return download_result(files, directory=str(service.audio_dir))


def _register_cover(server: MCPServer[AppState], kit: ToolKit) -> None:
    @server.tool(
        title="Cover music",
        meta=player_meta("cover_music"),
        annotations=WRITES,
        description=(
            "Restyle a complete clip: a new version in the style of tags (costs credits; two clips). "
            "title, model, wait_seconds, force_new as in generate_music."
        ),
    )
    async def cover_music(
        ctx: ToolContext,
        clip_id: ClipId,
        tags: CoverTags,
        lyrics: CoverLyrics = None,
        title: Title = None,
        negative_tags: NegativeTags = None,
        model: ModelText = None,
        wait_seconds: kit.wait_like_generate = kit.shape.default_wait,  # type: ignore[name-defined]
        force_new: bool = False,
    ) -> Annotated[types.CallToolResult, TaskResult]:
        async def call(service: "SunoService", progress: ProgressReport) -> "Outcome":
            request = await service.cover_request(
                clip_id=clip_id,
                tags=tags,
                lyrics=lyrics,
                title=title,
                negative_tags=negative_tags,
                model=model,
            )
            return await service.cover_music(
                request, force_new=force_new, wait_s=wait_seconds, progress=progress
            )

        return await answer(ctx, call)


def _register_upload(server: MCPServer[AppState], kit: ToolKit) -> None:
    @server.tool(
        title="Upload audio",
        annotations=WRITES,
        description=(
            "Bring in a song from a public audio URL as a clip (no generation); extend_music continues it. "
            "force_new as in generate_music."
        ),
    )
    async def upload_audio(
        ctx: ToolContext,
        url: AudioUrl,
        force_new: bool = False,
    ) -> Annotated[types.CallToolResult, TaskResult]:
        async def call(service: "SunoService", progress: ProgressReport) -> "Outcome":
            return await service.upload_audio(service.upload_source(url), force_new=force_new)

        return await answer(ctx, call)


def _register_usage(server: MCPServer[AppState], kit: ToolKit) -> None:
    @server.tool(
        title="Usage and budget",
        annotations=LOCAL_READS,
        description=(
            "Paid requests in the last hour, day and 30 days (by kind and model, with clips and estimated "
            "cost when prices are set) and the budget. Free; sends nothing upstream."
        ),
    )
    async def get_usage(ctx: ToolContext) -> Annotated[types.CallToolResult, UsageResult]:
        return usage_tool_result(await read_usage(await tool_service(ctx)))
