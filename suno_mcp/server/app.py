"""The MCP server: the SDK's MCPServer with this project's argument errors, compact tool list and
team mode (:class:`SunoServer`), put together by :func:`build_server` so tests can hand it any
backend.

What it is built from lives next door: the service it opens (:mod:`.lifespan`), the tools
(:mod:`.tools`), resources (:mod:`.resources`) and prompts (:mod:`.prompts`), the spending question
(:mod:`.confirm`), how a call runs and fails (:mod:`.calls`), and the in-chat player (:mod:`.player`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.prompts import Prompt
from mcp.server.mcpserver.resources import Resource
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.exceptions import MCPError
from pydantic import AnyUrl, SecretStr, ValidationError

from suno_mcp import __version__
from suno_mcp.domain.tenancy import CURRENT_CALLER, Caller
from suno_mcp.server.completions import register_completions
from suno_mcp.server.identity import CACHE_HINTS, WEBSITE_URL, PlayerApps, server_icons
from suno_mcp.server.lifespan import AppState, Backend, LazyService, ToolContext, server_lifespan
from suno_mcp.server.listing import ToolShape, shipped_tools
from suno_mcp.server.notices import Notices
from suno_mcp.settings import Settings

if TYPE_CHECKING:
    from suno_mcp.server.metrics import MetricsListener

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
Makes music with Suno. generate_music starts a song (two clips per request) and waits up to
wait_seconds for playable audio; a preview_url plays before the final audio_url exists.
Finished audio: get_task_status with wait_seconds until status is complete. Longer songs:
extend_music from a clip, then get_complete_song for one file. Lyrics first: generate_lyrics.
Another style of a clip: cover_music; the user's own song: upload_audio, then extend_music.
Every request costs money: repeat requests are answered from the task ledger (list_tasks)
instead of paying again, unless force_new=true; get_usage says what was spent."""


def _request_headers(context: Context[AppState, Any] | None) -> Mapping[str, str] | None:
    """The HTTP headers of the message being handled; None over stdio, in memory or outside a request."""
    if context is None:
        return None
    try:
        return context.headers
    except ValueError:  # a Context made outside any request (a direct call) has none
        return None


def _caller(secret: SecretStr | None, context: Context[AppState, Any] | None) -> Caller | None:
    """Team mode (``secret`` set): who sent the message being handled, by its token or bearer key."""
    if secret is None:
        return None
    # Imported here: a server of one person (no secret) never asks who sent a message.
    from suno_mcp.server.callers import request_caller

    try:
        request = None if context is None else context.request_context.request
    except ValueError:  # a Context made outside any request (a direct call) has none
        request = None
    return request_caller(request, _request_headers(context), secret)


class SunoServer(MCPServer[AppState]):
    """MCPServer whose argument errors name the field and the fix before anything runs, whose
    tool list is compact (every conversation pays for its size before the first word), and which
    in team mode acts for the caller whose key each message brings."""

    # Set in team mode (by build_server): tenant ids are derived from each caller's key with it.
    tenant_secret: SecretStr | None = None
    # Set by build_server: the lifespan's service while the server runs (see server_lifespan).
    service_holder: list[LazyService] | None = None
    # Set by build_server: where the metrics are served while the server runs (SUNO_MCP_METRICS_PORT).
    metrics_listeners: list[MetricsListener] | None = None
    # The tools registered (add_tool fills it): the only names the call metrics use as labels.
    tool_names: frozenset[str] = frozenset()
    # Each tool's compact input schema by name, made by the first tools/list after the tools last
    # changed (add_tool and remove_tool drop it): every later list sends the same schemas.
    compact_inputs: dict[str, dict[str, Any]] | None = None
    # Set by build_server: what registers the tools, resources and prompts with the SDK, left for
    # the first request that needs them (see register_pending); empty once done.
    pending_registrations: tuple[Callable[[], None], ...] = ()
    # Set by build_server: the shipped tool list (see server.listing), when it is what the
    # pending tools will list; tools/list answers from it until a tool is added or removed.
    shipped_tools: list[types.Tool] | None = None

    def register_pending(self) -> None:
        """Register what build_server left for later, unless that is done: before any request
        but a tools/list that the shipped list answers, and before anything is added or removed
        (so that every list keeps its order)."""
        pending, self.pending_registrations = self.pending_registrations, ()
        if not pending:
            return
        shipped = self.shipped_tools
        for register in pending:
            register()
        self.shipped_tools = shipped  # still what the server lists: these are the tools it lists

    def add_tool(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        annotations: types.ToolAnnotations | None = None,
        icons: list[types.Icon] | None = None,
        meta: dict[str, Any] | None = None,
        structured_output: bool | None = None,
    ) -> None:
        self.register_pending()
        super().add_tool(fn, name, title, description, annotations, icons, meta, structured_output)
        self.tool_names = self.tool_names | {name or fn.__name__}
        self.compact_inputs = self.shipped_tools = None

    def remove_tool(self, name: str) -> None:
        self.register_pending()
        super().remove_tool(name)
        self.compact_inputs = self.shipped_tools = None

    async def why_not_ready(self, limit_s: float) -> str | None:
        """None when this server can serve tool calls now (its service open, its ledger answering
        within ``limit_s`` seconds); otherwise why not, in one line naming nothing secret."""
        if not self.service_holder:
            return "the server is starting or stopping"
        return await self.service_holder[0].why_not_ready(limit_s)

    async def list_tools(self) -> list[types.Tool]:
        if self.shipped_tools is not None:
            return [tool.model_copy() for tool in self.shipped_tools]
        self.register_pending()
        tools = await super().list_tools()
        if self.compact_inputs is None:
            # Imported here: a server that answers from the shipped list never compacts a schema.
            from suno_mcp.server.schema import compact_input

            self.compact_inputs = {tool.name: compact_input(tool.input_schema) for tool in tools}
        compacted = self.compact_inputs
        return [tool.model_copy(update={"input_schema": compacted[tool.name]}) for tool in tools]

    def add_resource(self, resource: Resource) -> None:
        self.register_pending()
        super().add_resource(resource)

    def add_prompt(self, prompt: Prompt) -> None:
        self.register_pending()
        super().add_prompt(prompt)

    def remove_prompt(self, name: str) -> None:
        self.register_pending()
        super().remove_prompt(name)

    async def list_resources(self) -> list[types.Resource]:
        self.register_pending()
        return await super().list_resources()

    async def list_resource_templates(self) -> list[types.ResourceTemplate]:
        self.register_pending()
        return await super().list_resource_templates()

    async def list_prompts(self) -> list[types.Prompt]:
        self.register_pending()
        return await super().list_prompts()

    async def read_resource(
        self, uri: AnyUrl | str, context: Context[AppState, Any] | None = None
    ) -> Iterable[ReadResourceContents] | types.InputRequiredResult:
        self.register_pending()
        # Resources that read the ledger find their caller here (they get no Context of their own).
        token = CURRENT_CALLER.set(_caller(self.tenant_secret, context))
        try:
            return await super().read_resource(uri, context)
        finally:
            CURRENT_CALLER.reset(token)

    async def get_prompt(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        context: Context[AppState, Any] | None = None,
    ) -> types.GetPromptResult | types.InputRequiredResult:
        # The SDK raises a bare ValueError for an unknown prompt or a missing argument, which goes
        # out as error code 0 on a 2025 connection and as an anonymous "Internal server error" on a
        # 2026-07-28 one. Both are the client's mistake: the spec's -32602 (invalid params), saying
        # which prompts or arguments there are, and nothing logged as a server fault.
        prompts = {prompt.name: prompt for prompt in await self.list_prompts()}
        prompt = prompts.get(name)
        if prompt is None:
            raise MCPError(
                types.INVALID_PARAMS, f"Unknown prompt: {name}; the prompts are {', '.join(sorted(prompts))}"
            )
        given = arguments or {}
        missing = [arg.name for arg in prompt.arguments or [] if arg.required and arg.name not in given]
        if missing:
            raise MCPError(types.INVALID_PARAMS, f"Prompt {name} needs the argument(s): {', '.join(missing)}")
        return await super().get_prompt(name, arguments, context)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: ToolContext | None = None
    ) -> types.CallToolResult | types.InputRequiredResult:
        self.register_pending()
        token = CURRENT_CALLER.set(_caller(self.tenant_secret, context))
        outcome = "crashed"
        try:
            result = await super().call_tool(name, arguments, context)
            outcome = "error" if isinstance(result, types.CallToolResult) and result.is_error else "ok"
            return result
        except UnexpectedToolError as err:
            # Imported here, like the tools that raise it: a session that never calls one never needs it.
            from suno_mcp.server.confirm import AskFirst

            # A paid tool that must ask the person first on a 2026-07-28 connection: the
            # question goes back as the call's result and the client calls again with the answer.
            if isinstance(err.__cause__, AskFirst):
                outcome = "ask_first"
                return err.__cause__.result
            raise
        except ToolError as err:
            # The SDK raises a ToolError caused by the pydantic ValidationError when the
            # arguments do not fit the input schema; the tool body has not run.
            if isinstance(err.__cause__, ValidationError):
                from suno_mcp.domain.inputs import explain

                outcome = "invalid_arguments"
                raise ToolError(explain(name, err.__cause__)) from err.__cause__
            outcome = "error"
            raise
        except anyio.get_cancelled_exc_class():
            outcome = "cancelled"  # the client gave up or the server is stopping
            raise
        finally:
            CURRENT_CALLER.reset(token)
            self._count_call(name, outcome)

    def _count_call(self, name: str, outcome: str) -> None:
        # Imported here, not at the top: prometheus_client stays out of the server's start-up (by the
        # first call's end the service has usually loaded it, off the loop).
        from suno_mcp import metrics

        # A name the client made up is not a label of its own: labels stay a fixed set.
        tool = name if name in self.tool_names else "unknown"
        metrics.TOOL_CALLS.labels(tool, outcome).inc()


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


def build_server(
    settings: Settings,
    backend: Backend,
    *,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
) -> SunoServer:
    """The MCP server; ``backend`` opens the service for the server's lifetime (tried again after
    a failed start once a delay measured with ``clock`` has passed). ``wall`` dates sign-in tokens."""
    settings = team_settings(settings)

    # Static resources get no Context (and /readyz is no MCP request): they find the service here.
    holder: list[LazyService] = []
    listeners: list[MetricsListener] = []
    # Resource updates and log messages: answered and sent by the notices (see server.notices);
    # the bus is the SDK's, for 2026-07-28 clients' subscriptions/listen, held here to publish on.
    bus = InMemorySubscriptionBus()
    notices = Notices(
        bus, settings.tenant_secret if settings.team_mode else None, stateless_http=settings.stateless_http
    )

    oauth = None
    if settings.oauth:  # imported only then: a stdio session or a key-only server never loads sign-in
        from suno_mcp.server.oauth import oauth_parts

        oauth = oauth_parts(settings, holder, wall=wall)
    server = SunoServer(
        name="suno-mcp",
        title="Suno music",
        version=__version__,
        instructions=INSTRUCTIONS,
        website_url=WEBSITE_URL,
        icons=server_icons(),
        cache_hints=CACHE_HINTS,
        lifespan=server_lifespan(
            backend, settings, holder, clock=clock, listeners=listeners, notices=notices
        ),
        log_level=settings.log_level,
        extensions=[PlayerApps()],
        subscriptions=bus,
        middleware=[notices],
        **oauth.server_arguments if oauth else {},
    )
    if oauth:
        from suno_mcp.server.oauth import register_root_resource_metadata
        from suno_mcp.server.sessions import register_sessions
        from suno_mcp.server.signin import register_signin

        register_signin(server, oauth.provider, holder, clock=clock)
        register_sessions(server, oauth.provider, clock=clock)
        register_root_resource_metadata(server, oauth.provider.config)
    server.service_holder = holder
    server.metrics_listeners = listeners
    if settings.team_mode:
        server.tenant_secret = settings.tenant_secret
    _defer_registrations(server, settings, holder)
    register_completions(server, holder)
    return server


def _defer_registrations(server: SunoServer, settings: Settings, holder: list[LazyService]) -> None:
    """Leave the tools, resources and prompts to be registered when first needed, and tools/list
    to the shipped list when it fits the settings (see :mod:`suno_mcp.server.listing`): the SDK
    builds a pydantic model for every function registered, which was most of what a stdio
    session spent before its first answers, and a client's first requests are initialize and
    tools/list."""
    shape = ToolShape.of(settings)

    # Imported in each: the modules and the models they build load when they are registered.
    def tools() -> None:
        from suno_mcp.server.tools import register_tools

        register_tools(server, shape)

    def resources() -> None:
        from suno_mcp.server.player import player_resource
        from suno_mcp.server.resources import register_resources

        server.add_resource(player_resource(settings, holder))  # first, as the extension listed it
        register_resources(server, settings, holder)

    def prompts() -> None:
        from suno_mcp.server.prompts import register_prompts

        register_prompts(server)

    server.pending_registrations = (tools, resources, prompts)
    server.shipped_tools = shipped_tools(shape)
