"""The in-chat player: an MCP App (the ``io.modelcontextprotocol/ui`` extension) for music tasks.

One self-contained HTML file shipped in the package (``player.html``, plain JavaScript, no build
step, nothing fetched for code) renders the task a tool returned: each clip with its cover, status,
duration and a player, and the live status while the task runs. It speaks the ext-apps postMessage
protocol to the host, which proxies its ``tools/call`` requests (``get_task_status`` to follow the
task, ``extend_music`` from the playhead) back to this server.

The tools bind to it through ``_meta.ui.resourceUri`` (:func:`player_meta`). The server advertises
the extension from the start (:class:`~suno_mcp.server.identity.PlayerApps`) and registers the
resource (:func:`player_resource`) with the others, when resources are first needed: this module,
the SDK's Apps module and the page are no part of a stdio session's start. A client that did not
negotiate the extension never reads the resource, and the tools' text and structured results are
the same for every client.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from mcp.server.apps import APP_MIME_TYPE, ResourceCsp
from mcp.server.mcpserver.resources import Resource
from pydantic import PrivateAttr

from suno_mcp.domain.errors import ConfigurationError
from suno_mcp.settings import Settings

if TYPE_CHECKING:
    from suno_mcp.service.core import SunoService

PLAYER_URI = "ui://suno-mcp/player.html"

# The tools whose results the player renders; the server stamps player_meta(name) on each of
# them (a test checks the two agree).
PLAYER_TOOLS: tuple[str, ...] = (
    "generate_music",
    "extend_music",
    "get_task_status",
    "get_complete_song",
    "cover_music",
)


class ServiceSource(Protocol):
    """Where the player finds the open service (the server's lazily opened one)."""

    async def get(self) -> SunoService: ...


def player_html() -> str:
    """The player's HTML document, as shipped in the package."""
    return resources.files("suno_mcp.server").joinpath("player.html").read_text(encoding="utf-8")


def player_meta(tool: str) -> dict[str, Any] | None:
    """The ``_meta`` that binds ``tool`` to the player, or None for a tool it does not render."""
    if tool not in PLAYER_TOOLS:
        return None
    # The stable specification's key. (The 2025 drafts' flat "ui/resourceUri" is left out:
    # every tool's metadata is paid for in every conversation's tool list.)
    return {"ui": {"resourceUri": PLAYER_URI}}


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def media_origins(settings: Settings, sandbox_url: str | None = None) -> list[str]:
    """The origins the player may load audio and images from: the configured media hosts, and
    the sandbox's own address when the service runs against the sandbox."""
    origins = list(settings.media_origins)
    if sandbox_url is not None:
        sandbox = origin_of(sandbox_url)
        if sandbox not in origins:
            origins.append(sandbox)
    return origins


def player_csp(origins: Sequence[str]) -> ResourceCsp:
    """The content-security policy the player declares: media and images from ``origins``, and
    nothing else (no connections: the view reaches the server only through the host)."""
    return ResourceCsp(resource_domains=list(origins))


class PlayerResource(Resource):
    """The ``ui://`` resource; its policy is settled when it is read.

    The sandbox's address is known only once the service has opened (it listens on a free port),
    so the policy that names it cannot be fixed when the server is built.
    """

    settings: Settings
    html: str
    # Held by reference, not validated (that would copy it): the lifespan fills it later.
    _services: Sequence[ServiceSource] = PrivateAttr(default=())

    def bind(self, services: Sequence[ServiceSource]) -> PlayerResource:
        """Read the service from ``services`` (the server's holder) when the resource is read."""
        self._services = services
        return self

    async def read(self) -> str:
        sandbox_url = await self._sandbox_url()
        csp = player_csp(media_origins(self.settings, sandbox_url))
        # The server reads `meta` right after `read()` returns, for the same resources/read answer.
        self.meta = {"ui": {"csp": csp.model_dump(by_alias=True, exclude_none=True), "prefersBorder": True}}
        return self.html

    async def _sandbox_url(self) -> str | None:
        if self.settings.sandbox:
            return self.settings.base_url
        if not self._services:
            return None
        try:
            service = await self._services[0].get()
        except ConfigurationError:
            # The player still renders: only the sandbox's own address would be missing.
            return None
        return service.settings.base_url if service.settings.sandbox else None


def player_resource(settings: Settings, services: Sequence[ServiceSource] = ()) -> PlayerResource:
    """The player's ``ui://`` resource, for ``server.add_resource``.

    ``services`` is the server's holder of its lazily opened service (empty until the lifespan
    runs), read when a host asks for the resource to learn whether the sandbox is in use.
    """
    csp = player_csp(media_origins(settings, settings.base_url if settings.sandbox else None))
    return PlayerResource(
        uri=PLAYER_URI,
        name="player",
        title="Suno player",
        description="Plays, compares, picks and extends the clips of a music task inside the chat.",
        mime_type=APP_MIME_TYPE,
        meta={"ui": {"csp": csp.model_dump(by_alias=True, exclude_none=True), "prefersBorder": True}},
        settings=settings,
        html=player_html(),  # read once here, not on the event loop at every resources/read
    ).bind(services)
