"""The MCP server: tools, resources and prompts over the service.

Built by :func:`build_server` so tests can hand it any backend. A tool body validates
what the schema cannot, calls the service and returns a model; every failure becomes a
tool error whose text says what to do next.
"""

# No `from __future__ import annotations` here: the SDK reads the tools' annotations at
# registration, and some of them are built inside build_server().

import base64
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import anyio
import mcp_types as types
from mcp.server.elicitation import AcceptedElicitation, render_elicitation_schema
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import (
    ResourceError,
    ResourceNotFoundError,
    ToolError,
    UnexpectedToolError,
)
from mcp_types.version import is_version_at_least
from pydantic import AnyUrl, BaseModel, Field, SecretStr, ValidationError

from suno_mcp import __version__
from suno_mcp.domain.catalog import DESCRIPTION_MAX, Catalog
from suno_mcp.domain.errors import AuthenticationError, ConfigurationError, SunoError
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
    Model,
    NegativeTags,
    OptionalClipId,
    OptionalTaskId,
    Tags,
    TaskId,
    Title,
    check_text,
    explain,
    wait_field,
)
from suno_mcp.domain.media import mime_for_url
from suno_mcp.domain.models import MusicRequest, SavedFile, Status, Task, TaskRecord
from suno_mcp.domain.spending import CURRENT_CONFIRM, Confirm, Decision, Question
from suno_mcp.domain.tenancy import CURRENT_CALLER, Caller, caller_from_headers
from suno_mcp.server.player import player_extension, player_meta
from suno_mcp.server.results import (
    ClipResult,
    DownloadResult,
    TaskList,
    TaskResult,
    TaskSummary,
    UsageResult,
    compact_input,
    error_text,
    progress_message,
    request_summary,
    task_result,
    task_text,
    usage_result,
    usage_text,
)
from suno_mcp.settings import EMBED_MAX_BYTES, Settings

if TYPE_CHECKING:
    # The service (and httpx behind it) is imported only when the first tool call opens it,
    # which keeps the server's start-up as light as the SDK's own.
    from suno_mcp.service.core import Outcome, SunoService

log = logging.getLogger(__name__)

T = TypeVar("T")
# (newest state, seconds since the submit, the last check's error, usual seconds to final audio)
ProgressReport = Callable[[Task | None, float, str | None, float], Awaitable[None]]
# The default wait of generate_lyrics: lyrics come back in seconds, not minutes.
LYRICS_WAIT_S = 30.0

Backend = Callable[[Settings], AbstractAsyncContextManager["SunoService"]]

INSTRUCTIONS = """\
Makes music with Suno. generate_music starts a song (two clips per request) and waits up to
wait_seconds for playable audio; a preview_url plays before the final audio_url exists.
Finished audio: get_task_status with wait_seconds until status is complete. Longer songs:
extend_music from a clip, then get_complete_song for one file. Lyrics first: generate_lyrics.
Another style of a clip: cover_music; the user's own song: upload_audio, then extend_music.
Every request costs money: repeat requests are answered from the task ledger (list_tasks)
instead of paying again, unless force_new=true; get_usage says what was spent."""


class LazyService:
    """Opens the backend on first use, in a task the lifespan owns, and keeps it open.

    Opening it (the HTTP client, the ledger, the poller, or the sandbox) takes longer than
    everything else at start-up, and a client that only lists tools never needs it.
    """

    def __init__(self, backend: Backend, settings: Settings) -> None:
        self._backend = backend
        self._settings = settings
        self._requested = anyio.Event()
        self._ready = anyio.Event()
        self._service: SunoService | None = None
        self._failure: str | None = None

    async def run(self) -> None:
        """Wait for the first request for the service, then open and hold it until cancelled."""
        await self._requested.wait()
        try:
            async with self._backend(self._settings) as service:
                self._service = service
                self._ready.set()
                await anyio.sleep_forever()
        except Exception as err:  # a backend that cannot open must leave the server answering
            # Task groups inside the backend wrap what they raise, so the cause may be nested.
            self._failure = f"{type(err).__name__}: {err}"
            log.exception("could not open the service")
            self._ready.set()

    async def get(self) -> "SunoService":
        """The open service, opening it if this is the first call."""
        if self._service is None:
            self._requested.set()
            await self._ready.wait()
        if self._service is None:
            raise ConfigurationError(
                f"the server could not open its task ledger or HTTP client ({self._failure}). Check that "
                f"SUNO_MCP_DATA_DIR ({self._settings.data_dir}) is writable, then restart the server."
            )
        return self._service


@dataclass
class AppState:
    """What the lifespan opens: the service every tool uses, opened on first use."""

    services: LazyService


ToolContext = Context[AppState, Any]


# Team mode: what a call that reached the server without its caller's key is told.
NO_CALLER_KEY = (
    "This server runs in team mode: every request must bring the caller's own gptproto key as the "
    "HTTP header 'Authorization: Bearer <your gptproto key>'. Add that header to this server's entry "
    "in your MCP client (over streamable HTTP), then call again. Nothing was sent."
)
# Team mode: the caller's own key was refused upstream (not the server's: it has none).
CALLER_KEY_REJECTED = (
    "The gptproto key this request sent (its Authorization: Bearer header) was rejected by gptproto "
    "({detail}): it is wrong, expired or disabled. Fix the header in your MCP client's entry for this "
    "server and call again. Nothing was charged."
)


def _acting_for_caller(service: "SunoService") -> "SunoService":
    """The service acting for the current call's caller (team mode), else the server's own.

    Raises ConfigurationError in team mode when the call brought no key: the shared service has
    none, and must not fall back to anyone's."""
    caller = CURRENT_CALLER.get()
    if caller is not None:
        return service.for_caller(caller)
    if service.settings.team_mode:
        raise ConfigurationError(NO_CALLER_KEY)
    return service


async def _service(ctx: ToolContext) -> "SunoService":
    try:
        return _acting_for_caller(await ctx.request_context.lifespan_context.services.get())
    except ConfigurationError as err:
        raise ToolError(err.message) from err


def _request_headers(context: Context[AppState, Any] | None) -> Mapping[str, str] | None:
    """The HTTP headers of the message being handled; None over stdio, in memory or outside a request."""
    if context is None:
        return None
    try:
        return context.headers
    except ValueError:  # a Context made outside any request (a direct call) has none
        return None


def _caller(secret: SecretStr | None, context: Context[AppState, Any] | None) -> Caller | None:
    """Team mode (``secret`` set): who sent the message being handled, by its bearer key."""
    return None if secret is None else caller_from_headers(_request_headers(context), secret)


class SunoServer(MCPServer[AppState]):
    """MCPServer whose argument errors name the field and the fix before anything runs, whose
    tool list is compact (every conversation pays for its size before the first word), and which
    in team mode acts for the caller whose key each message brings."""

    # Set in team mode (by build_server): tenant ids are derived from each caller's key with it.
    tenant_secret: SecretStr | None = None

    async def list_tools(self) -> list[types.Tool]:
        tools = await super().list_tools()
        return [tool.model_copy(update={"input_schema": compact_input(tool.input_schema)}) for tool in tools]

    async def read_resource(
        self, uri: AnyUrl | str, context: Context[AppState, Any] | None = None
    ) -> Iterable[ReadResourceContents] | types.InputRequiredResult:
        # Resources that read the ledger find their caller here (they get no Context of their own).
        token = CURRENT_CALLER.set(_caller(self.tenant_secret, context))
        try:
            return await super().read_resource(uri, context)
        finally:
            CURRENT_CALLER.reset(token)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: ToolContext | None = None
    ) -> types.CallToolResult | types.InputRequiredResult:
        token = CURRENT_CALLER.set(_caller(self.tenant_secret, context))
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError as err:
            # A paid tool that must ask the person first on a 2026-07-28 connection: the
            # question goes back as the call's result and the client calls again with the answer.
            if isinstance(err.__cause__, AskFirst):
                return err.__cause__.result
            raise
        except ToolError as err:
            # The SDK raises a ToolError caused by the pydantic ValidationError when the
            # arguments do not fit the input schema; the tool body has not run.
            if isinstance(err.__cause__, ValidationError):
                raise ToolError(explain(name, err.__cause__)) from err.__cause__
            raise
        finally:
            CURRENT_CALLER.reset(token)


# The key of the spending question in an InputRequiredResult's input_requests.
CONFIRM_KEY = "suno_mcp_confirm_spend"
# From this protocol revision on, a tool asks the client through InputRequiredResult rather than a
# request sent in the middle of the call.
INPUT_REQUIRED_VERSION = "2026-07-28"


class SpendConfirmation(BaseModel):
    """The form of the spending question: one box, ticked."""

    send: bool = Field(default=True, description="Send this paid request.")


class AskFirst(Exception):
    """Raised through the service by the confirm callback when the question has not been asked yet
    (2026-07-28 connections): carries the InputRequiredResult that asks it."""

    def __init__(self, result: types.InputRequiredResult) -> None:
        super().__init__("the user must be asked first")
        self.result = result


def _can_elicit(ctx: ToolContext) -> bool:
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    # A bare `elicitation: {}` (before modes existed) means form support; url-only does not.
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def _decision(action: str, content: dict[str, Any] | None) -> Decision:
    if action == "accept":
        return "decline" if (content or {}).get("send") is False else "accept"
    return "decline" if action == "decline" else "cancel"


def _confirmer(ctx: ToolContext) -> Confirm:
    """The service's confirm callback for this tool call: asks the person through elicitation."""

    async def confirm(question: Question) -> Decision:
        if not _can_elicit(ctx):
            return "unsupported"
        version = ctx.protocol_version
        if version is not None and is_version_at_least(version, INPUT_REQUIRED_VERSION):
            answer = (ctx.input_responses or {}).get(CONFIRM_KEY)
            # The answer counts only for the question asked: the same request, the same budget state.
            if isinstance(answer, types.ElicitResult) and ctx.request_state == question.key:
                return _decision(answer.action, answer.content)
            ask = types.ElicitRequest(
                params=types.ElicitRequestFormParams(
                    message=question.message(), requested_schema=render_elicitation_schema(SpendConfirmation)
                )
            )
            raise AskFirst(
                types.InputRequiredResult(input_requests={CONFIRM_KEY: ask}, request_state=question.key)
            )
        if not ctx.session.can_send_request:
            return "unsupported"
        try:
            result = await ctx.elicit(question.message(), SpendConfirmation)
        except ValueError:
            return "cancel"  # accepted with an answer we cannot read: not an explicit yes
        if isinstance(result, AcceptedElicitation):
            return "accept" if result.data.send else "decline"
        return _decision(result.action, None)

    return confirm


def _progress(ctx: ToolContext) -> ProgressReport:
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


def _clip_link(result: TaskResult, clip: ClipResult) -> types.ResourceLink | None:
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


async def _audio_blocks(result: TaskResult, files: list[SavedFile], embed: bool) -> list[types.ContentBlock]:
    blocks: list[types.ContentBlock] = [
        link for link in (_clip_link(result, clip) for clip in result.clips) if link is not None
    ]
    for file in files:
        blocks.append(_file_link(file.path, file.mime_type, file.bytes))
        path = anyio.Path(file.path)
        if embed and file.bytes <= EMBED_MAX_BYTES and await path.exists():
            data = base64.b64encode(await path.read_bytes()).decode()
            blocks.append(types.AudioContent(type="audio", data=data, mime_type=file.mime_type))
    return blocks


def _file_link(path: str, mime_type: str, size: int) -> types.ResourceLink:
    local = Path(path).absolute()
    return types.ResourceLink(
        type="resource_link",
        uri=local.as_uri(),
        name=local.name,
        description="Downloaded audio file",
        mime_type=mime_type,
        size=size,
    )


async def _tool_result(service: "SunoService", outcome: "Outcome") -> types.CallToolResult:
    result = task_result(
        outcome.record,
        deduplicated=outcome.deduplicated,
        waited_s=outcome.waited_s,
        poll_error=outcome.poll_error,
        checked_s_ago=outcome.checked_s_ago,
    )
    content: list[types.ContentBlock] = [types.TextContent(type="text", text=task_text(result))]
    content.extend(await _audio_blocks(result, outcome.record.files, service.settings.embed_audio))
    return types.CallToolResult(content=content, structured_content=result.model_dump(mode="json"))


async def _run(call: Callable[[], Awaitable[T]]) -> T:
    """Run a service call, turning our errors into tool errors the model can act on."""
    try:
        return await call()
    except ArgumentError as err:
        raise ToolError(str(err)) from err
    except AuthenticationError as err:
        if CURRENT_CALLER.get() is not None:  # team mode: the key was the caller's, not the server's
            raise ToolError(CALLER_KEY_REJECTED.format(detail=err.message)) from err
        raise ToolError(error_text(err)) from err
    except SunoError as err:
        raise ToolError(error_text(err)) from err


async def _answer(
    ctx: ToolContext, call: Callable[["SunoService", ProgressReport], Awaitable["Outcome"]]
) -> types.CallToolResult:
    """Open the service, run one of its task calls with progress, and shape the result."""
    service = await _service(ctx)
    progress = _progress(ctx)
    # Every paid submit of this call asks the person through this call's client.
    token = CURRENT_CONFIRM.set(_confirmer(ctx))
    try:
        outcome = await _run(lambda: call(service, progress))
    finally:
        CURRENT_CONFIRM.reset(token)
    return await _tool_result(service, outcome)


async def _submit_music(
    ctx: ToolContext,
    build: Callable[["SunoService"], Awaitable[MusicRequest]],
    *,
    force_new: bool,
    wait_s: float,
) -> types.CallToolResult:
    """Validate (``build`` raises ArgumentError), submit, wait, and shape the result."""

    async def call(service: "SunoService", progress: ProgressReport) -> "Outcome":
        request = await build(service)
        return await service.submit_music(request, force_new=force_new, wait_s=wait_s, progress=progress)

    return await _answer(ctx, call)


def _summary(record: TaskRecord) -> TaskSummary:
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


@dataclass(frozen=True)
class ToolKit:
    """What every tool registration needs: the settings and the argument types they imply."""

    settings: Settings
    generate_wait: Any
    status_wait: Any
    lyrics_default: float
    lyrics_wait: Any

    @classmethod
    def for_settings(cls, settings: Settings) -> "ToolKit":
        lyrics_default = min(LYRICS_WAIT_S, settings.max_wait)
        return cls(
            settings=settings,
            generate_wait=wait_field(settings.default_wait, settings.max_wait),
            status_wait=wait_field(0, settings.max_wait),
            lyrics_default=lyrics_default,
            lyrics_wait=wait_field(lyrics_default, settings.max_wait),
        )

    @property
    def reuse_note(self) -> str:
        """How long an identical request is answered from the ledger, as the tool descriptions say it."""
        window = self.settings.duplicate_window
        if window <= 0:
            return "Every call is a new paid request (the duplicate guard is off)."
        return (
            f"An identical request in the last {_duration(window)} is reused, not paid again "
            "(force_new=true overrides)."
        )


def _duration(seconds: float) -> str:
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} seconds"


WRITES = types.ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)
READS = types.ToolAnnotations(read_only_hint=True, open_world_hint=True, idempotent_hint=True)


def team_settings(settings: Settings) -> Settings:
    """In team mode, the settings without the server's own key: every call pays with its caller's
    key, and the shared service has none to fall back on. A GPTPROTO_API_KEY set anyway is ignored,
    with one warning."""
    if not settings.team_mode or settings.api_key is None:
        return settings
    log.warning(
        "GPTPROTO_API_KEY is set but ignored: with SUNO_MCP_KEYS=per-request every request pays with "
        "its caller's own key (unset it to silence this warning)"
    )
    return settings.model_copy(update={"api_key": None})


def build_server(settings: Settings, backend: Backend) -> SunoServer:
    """The MCP server; ``backend`` opens the service for the server's lifetime."""
    settings = team_settings(settings)

    # Static resources get no Context, so they find the service here while the server runs.
    holder: list[LazyService] = []

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        services = LazyService(backend, settings)
        holder.append(services)
        async with anyio.create_task_group() as tg:
            tg.start_soon(services.run)
            try:
                yield AppState(services=services)
            finally:
                holder.remove(services)
                tg.cancel_scope.cancel()

    server = SunoServer(
        name="suno-mcp",
        title="Suno music",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level=settings.log_level,
        extensions=[player_extension(settings, holder)],
    )
    if settings.team_mode:
        server.tenant_secret = settings.tenant_secret
    kit = ToolKit.for_settings(settings)
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
    _register_resources(server, settings, holder)
    _register_latency_resource(server, holder)
    _register_prompts(server)
    return server


def _register_generate(server: SunoServer, kit: ToolKit) -> None:
    settings = kit.settings

    @server.tool(
        title="Generate music",
        meta=player_meta("generate_music"),
        annotations=WRITES,
        description=(
            "Start a new song with Suno (two clips per request; costs credits). Use EITHER description "
            f"(inspiration mode: Suno writes lyrics and style, max {DESCRIPTION_MAX} chars) OR lyrics with "
            "optional tags and title (custom mode); instrumental=true for no vocals (custom mode then needs "
            "no lyrics). Waits up to wait_seconds and returns as soon as audio is playable: preview_url is "
            "a streaming preview, audio_url the final file. Then call get_task_status(task_id, wait_seconds) "
            f"until complete. {kit.reuse_note} Models: suno://models."
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
        wait_seconds: kit.generate_wait = settings.default_wait,  # type: ignore[name-defined]
        force_new: ForceNew = False,
    ) -> Annotated[types.CallToolResult, TaskResult]:
        async def build(service: "SunoService") -> MusicRequest:
            return service.generate_request(
                description=description,
                lyrics=lyrics,
                tags=tags,
                title=title,
                instrumental=instrumental,
                model=model,
            )

        return await _submit_music(ctx, build, force_new=force_new, wait_s=wait_seconds)


def _register_extend(server: SunoServer, kit: ToolKit) -> None:
    settings = kit.settings

    @server.tool(
        title="Extend music",
        meta=player_meta("extend_music"),
        annotations=WRITES,
        description=(
            "Continue an existing clip from continue_at seconds (costs credits; two new clips). Optional "
            "lyrics/tags/title steer the continuation. Waits like generate_music. After one or more "
            "extensions, get_complete_song(clip_id of the last extension) joins the chain into one song."
        ),
    )
    async def extend_music(
        ctx: ToolContext,
        clip_id: ClipId,
        continue_at: ContinueAt,
        lyrics: Lyrics = None,
        tags: Tags = None,
        title: Title = None,
        instrumental: Annotated[bool, Field(description="true: no vocals in the continuation.")] = False,
        model: Model = None,
        task_id: OptionalTaskId = None,
        wait_seconds: kit.generate_wait = settings.default_wait,  # type: ignore[name-defined]
        force_new: ForceNew = False,
    ) -> Annotated[types.CallToolResult, TaskResult]:
        async def build(service: "SunoService") -> MusicRequest:
            return await service.extend_request(
                clip_id=clip_id,
                continue_at=continue_at,
                lyrics=lyrics,
                tags=tags,
                title=title,
                instrumental=instrumental,
                model=model,
                task_id=task_id,
            )

        return await _submit_music(ctx, build, force_new=force_new, wait_s=wait_seconds)


def _register_status(server: SunoServer, kit: ToolKit) -> None:
    @server.tool(
        title="Get task status",
        meta=player_meta("get_task_status"),
        annotations=READS,
        description=(
            "The state of a task (from generate_music, extend_music, generate_lyrics or get_complete_song), "
            "every clip with its URLs, and the next step. wait_seconds > 0 waits for the next milestone "
            "(playable, then final) and returns early when it arrives. Works for tasks from earlier sessions; "
            "a clip id is accepted too."
        ),
    )
    async def get_task_status(
        ctx: ToolContext,
        task_id: TaskId,
        wait_seconds: kit.status_wait = 0,  # type: ignore[name-defined]
    ) -> Annotated[types.CallToolResult, TaskResult]:
        return await _answer(
            ctx, lambda service, progress: service.status(task_id, wait_s=wait_seconds, progress=progress)
        )


def _register_list(server: SunoServer, kit: ToolKit) -> None:
    @server.tool(
        title="List tasks",
        annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False, idempotent_hint=True),
        description=(
            "Tasks in the local ledger, newest first: ids, status, titles, clip ids. Use it to find earlier "
            "songs, and before resubmitting after an error: status 'unknown' means a submit may have been "
            "charged without an answer."
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
        service = await _service(ctx)
        records = await service.list_tasks(status=Status(status) if status else None, limit=limit)
        return TaskList(tasks=[_summary(r) for r in records], count=len(records))


def _register_lyrics(server: SunoServer, kit: ToolKit) -> None:
    @server.tool(
        title="Write lyrics",
        annotations=WRITES,
        description=(
            "Write song lyrics (with a title) from a description. Returns lyrics ready for "
            f"generate_music(lyrics=..., title=..., tags=...). Waits up to wait_seconds (default {kit.lyrics_default:g})."
        ),
    )
    async def generate_lyrics(
        ctx: ToolContext,
        description: LyricsPrompt,
        wait_seconds: kit.lyrics_wait = kit.lyrics_default,  # type: ignore[name-defined]
        force_new: ForceNew = False,
    ) -> Annotated[types.CallToolResult, TaskResult]:
        async def call(service: "SunoService", progress: ProgressReport) -> "Outcome":
            check_text(description=description)
            return await service.submit_lyrics(
                description, force_new=force_new, wait_s=wait_seconds, progress=progress
            )

        return await _answer(ctx, call)


def _register_complete_song(server: SunoServer, kit: ToolKit) -> None:
    @server.tool(
        title="Get the complete song",
        meta=player_meta("get_complete_song"),
        annotations=WRITES,
        description=(
            "After extend_music, join the whole chain (original clip + extensions) into one song. Pass the "
            "clip_id of the LAST extension. Returns a task like generate_music; the joined clip's duration "
            "is the whole song."
        ),
    )
    async def get_complete_song(
        ctx: ToolContext,
        clip_id: ClipId,
        wait_seconds: kit.generate_wait = kit.settings.default_wait,  # type: ignore[name-defined]
        force_new: ForceNew = False,
    ) -> Annotated[types.CallToolResult, TaskResult]:
        return await _answer(
            ctx,
            lambda service, progress: service.complete_song(
                clip_id, force_new=force_new, wait_s=wait_seconds, progress=progress
            ),
        )


def _register_download(server: SunoServer, kit: ToolKit) -> None:
    @server.tool(
        title="Download audio",
        annotations=types.ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
        ),
        description=(
            "Save the final audio of a task (all its complete clips) or of one clip to the data directory, "
            "before the hosted URLs expire. Give task_id or clip_id. Returns the local file paths."
        ),
    )
    async def download_audio(
        ctx: ToolContext,
        task_id: OptionalTaskId = None,
        clip_id: OptionalClipId = None,
    ) -> Annotated[types.CallToolResult, DownloadResult]:
        service = await _service(ctx)

        async def call() -> list[SavedFile]:
            if (task_id is None) == (clip_id is None):
                raise ArgumentError("task_id: give exactly one of task_id or clip_id.")
            return await service.download(task_id=task_id, clip_id=clip_id)

        files = await _run(call)
        result = DownloadResult(files=files, directory=str(service.audio_dir))
        lines = [f"Saved {len(files)} file(s):"] + [
            f"- {f.path} ({f.bytes} bytes, {f.mime_type})" for f in files
        ]
        content: list[types.ContentBlock] = [types.TextContent(type="text", text="\n".join(lines))]
        for f in files:
            content.append(_file_link(f.path, f.mime_type, f.bytes))
            content.append(
                types.ResourceLink(type="resource_link", uri=f.url, name=f.clip_id, mime_type=f.mime_type)
            )
        return types.CallToolResult(content=content, structured_content=result.model_dump(mode="json"))


def _register_cover(server: SunoServer, kit: ToolKit) -> None:
    @server.tool(
        title="Cover music",
        meta=player_meta("cover_music"),
        annotations=WRITES,
        description=(
            "Restyle a complete clip: a new version in the style of tags (costs credits; two clips). "
            "Waits like generate_music."
        ),
    )
    async def cover_music(
        ctx: ToolContext,
        clip_id: ClipId,
        tags: CoverTags,
        lyrics: CoverLyrics = None,
        title: Title = None,
        negative_tags: NegativeTags = None,
        model: Model = None,
        wait_seconds: kit.generate_wait = kit.settings.default_wait,  # type: ignore[name-defined]
        force_new: ForceNew = False,
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

        return await _answer(ctx, call)


def _register_upload(server: SunoServer, kit: ToolKit) -> None:
    @server.tool(
        title="Upload audio",
        annotations=WRITES,
        description=(
            "Bring in a song from a public audio URL as a clip (no generation); extend_music continues it."
        ),
    )
    async def upload_audio(
        ctx: ToolContext,
        url: AudioUrl,
        force_new: ForceNew = False,
    ) -> Annotated[types.CallToolResult, TaskResult]:
        async def call(service: "SunoService", progress: ProgressReport) -> "Outcome":
            return await service.upload_audio(service.upload_source(url), force_new=force_new)

        return await _answer(ctx, call)


async def _usage(service: "SunoService") -> UsageResult:
    windows = await service.usage()
    settings = service.settings
    return usage_result(
        [(w.window, w.lines) for w in windows],
        prices=settings.prices,
        budget=settings.budget,
        budget_used=await service.budget_used(),
        confirm=settings.confirm,
    )


def _register_usage(server: SunoServer, kit: ToolKit) -> None:
    @server.tool(
        title="Usage and budget",
        annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False, idempotent_hint=True),
        description=(
            "Paid requests in the last hour, day and 30 days (by kind and model, with clips and, when "
            "prices are set, estimated cost), and the budget. Free; nothing is sent upstream."
        ),
    )
    async def get_usage(ctx: ToolContext) -> Annotated[types.CallToolResult, UsageResult]:
        result = await _usage(await _service(ctx))
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=usage_text(result))],
            structured_content=result.model_dump(mode="json"),
        )


def _register_resources(server: SunoServer, settings: Settings, holder: list[LazyService]) -> None:
    """Resources read the service from ``holder``, which the lifespan fills."""
    catalog = Catalog.with_extra(settings.extra_models)

    async def service() -> "SunoService":
        return await _resource_service(holder)

    @server.resource(
        "suno://models",
        name="models",
        title="Suno models",
        description=(
            "The models the `model` argument accepts, their text limits, what each is good for, and "
            "which can cover (cover_music) or continue uploaded audio (extend_music after upload_audio)."
        ),
        mime_type="application/json",
    )
    def models_resource() -> str:
        return json.dumps(
            {
                "default": settings.default_model,
                "models": [
                    {
                        "name": m.name,
                        "version": m.version,
                        "lyrics_max_chars": m.lyrics_max,
                        "tags_max_chars": m.tags_max,
                        "good_for": m.good_for,
                        "documented_by_vendor": m.documented,
                        **({"cover_model": m.cover_variant} if m.cover_variant else {}),
                        **({"upload_model": m.upload_variant} if m.upload_variant else {}),
                    }
                    for m in catalog.models
                ],
            },
            indent=1,
        )

    @server.resource(
        "suno://tasks",
        name="tasks",
        title="Task ledger",
        description="The newest 50 tasks in the local ledger (JSON).",
        mime_type="application/json",
    )
    async def tasks_resource() -> str:
        records = await (await service()).list_tasks(limit=50)
        return TaskList(tasks=[_summary(r) for r in records], count=len(records)).model_dump_json(indent=1)

    @server.resource(
        "suno://usage",
        name="usage",
        title="Usage and budget",
        description="Paid requests in the last hour, day and 30 days, and the budget (JSON).",
        mime_type="application/json",
    )
    async def usage_resource() -> str:
        return (await _usage(await service())).model_dump_json(indent=1)

    @server.resource(
        "suno://tasks/{task_id}",
        name="task",
        title="One task",
        description="One task from the ledger with its clips, URLs and saved files (JSON).",
        mime_type="application/json",
    )
    async def task_resource(task_id: str) -> str:
        record = await (await service()).record(task_id)
        if record is None:
            raise ResourceNotFoundError(f"no task {task_id} in the ledger")
        # The submit's answer as received goes with it: what we could not read, a person can.
        return json.dumps(
            {**task_result(record).model_dump(mode="json"), "raw_answer": record.raw_answer}, indent=1
        )


async def _resource_service(holder: list[LazyService]) -> "SunoService":
    """The service for a resource read, acting for the reader in team mode (resources get no
    Context: the lifespan fills ``holder``, and SunoServer.read_resource sets the caller)."""
    if not holder:
        raise ResourceError("the server is still starting; try again")
    try:
        return _acting_for_caller(await holder[0].get())
    except ConfigurationError as err:
        raise ResourceError(err.message) from err


def _register_latency_resource(server: SunoServer, holder: list[LazyService]) -> None:
    @server.resource(
        "suno://latency",
        name="latency",
        title="How long this upstream takes",
        description=(
            "Learned from finished tasks, per API, kind and model: the usual seconds from submit to the first "
            "playable audio and to the final file, and the window the poller watches most closely (JSON)."
        ),
        mime_type="application/json",
    )
    async def latency_resource() -> str:
        service = await _resource_service(holder)
        return json.dumps(
            {"learned": service.latency(), "usual_final_s": round(service.typical_final_s(), 1)}, indent=1
        )


def _register_prompts(server: SunoServer) -> None:
    @server.prompt(
        name="write_a_full_song",
        title="Write a full song",
        description="Walks through a whole song: lyrics, generation, picking a clip, extending, joining, saving.",
    )
    def write_a_full_song(
        idea: Annotated[str, Field(description="What the song is about.")],
        style: Annotated[str, Field(description="Genres and moods, e.g. 'indie folk, warm'.")] = "",
        target_minutes: Annotated[str, Field(description="Rough length wanted, in minutes.")] = "3",
    ) -> str:
        return (
            f"Make a complete song about: {idea}.\n"
            f"Style: {style or 'choose one that fits the idea'}. Target length: about {target_minutes} minutes.\n\n"
            "Steps:\n"
            "1. generate_lyrics(description=<the idea and style>). Show the title and lyrics; adjust if asked.\n"
            "2. generate_music(lyrics=<lyrics>, title=<title>, tags=<style as comma-separated tags>). "
            "It returns two clips; play the previews and let the user pick one.\n"
            "3. If the song should be longer, extend_music(clip_id=<picked clip>, continue_at=<a second near "
            "its end, at a phrase boundary>, lyrics=<the next verses>). Repeat on the newest clip as needed.\n"
            "4. get_complete_song(clip_id=<last extension>) to join the chain into one track.\n"
            "5. get_task_status(task_id, wait_seconds=45) until complete, then download_audio(task_id=...) "
            "and give the user the file path and the audio link.\n"
            "Other routes: to start from a song the user already has, upload_audio(url=<public audio link>) "
            "and extend_music on the clip it returns; to hear a finished clip in another style, "
            "cover_music(clip_id=<clip>, tags=<new style>).\n"
            "Each generation costs credits: confirm with the user before extra rounds."
        )

    @server.prompt(
        name="instrumental_for_use_case",
        title="Instrumental for a use case",
        description="Turns a use case (podcast intro, game loop, video background...) into instrumental settings.",
    )
    def instrumental_for_use_case(
        use_case: Annotated[
            str, Field(description="e.g. 'podcast intro', 'game loop', 'background for a product video'.")
        ],
        mood: Annotated[str, Field(description="Optional mood words.")] = "",
    ) -> str:
        return (
            f"Create instrumental music for: {use_case}. Mood: {mood or 'fit it to the use case'}.\n"
            "Use generate_music with instrumental=true and custom-mode tags (no lyrics needed). "
            "Starting points that suit common uses:\n"
            "- background for a video or app: tags 'ambient, background, subtle'\n"
            "- podcast intro: tags 'intro, professional, upbeat', a short title\n"
            "- game loop or sound bed: tags naming genre and energy, model chirp-v3-5\n"
            "- open-ended video content: use description instead of tags to give Suno creative freedom\n"
            "Pick the tags from the use case and mood, name the title after the use, and keep tags under "
            "200 characters. Then follow the task with get_task_status and save it with download_audio.\n"
            "A track the user already has: upload_audio(url=<public audio link>), then "
            "extend_music(clip_id=<its clip>, continue_at=<a second>, instrumental=true); a finished clip in "
            "another style: cover_music(clip_id=<clip>, tags=<new style>)."
        )
