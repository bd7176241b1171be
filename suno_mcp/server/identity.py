"""Who the server says it is beyond its name: its icon, its website, how long a client may keep
the lists it serves (cache hints, 2026-07-28), and that it has an in-chat player (MCP Apps).

The icon is drawn for this project: ``icons/icon.svg`` by hand, and the PNGs rendered from it once
with headless Chromium (``chromium --headless --screenshot`` of the SVG at 48, 128, 256 and 512
pixels; the 512 one is the MCPB bundle's ``manifests/icon.png``).
"""

from __future__ import annotations

import base64
from importlib import resources
from typing import Final

import mcp_types as types
from mcp.server.caching import CacheableMethod, CacheHint
from mcp.server.extension import Extension

REPOSITORY_URL: Final = "https://github.com/suno-mcp/suno-mcp"
WEBSITE_URL: Final = REPOSITORY_URL
# The PNG a client that draws no SVG fetches (PNG is the one format every icon-drawing client must
# support); the repository's copy of the packaged file.
PNG_URL: Final = "https://raw.githubusercontent.com/suno-mcp/suno-mcp/main/suno_mcp/server/icons/icon-256.png"

HOUR_MS: Final = 60 * 60 * 1000


def icon_bytes(name: str) -> bytes:
    """One of the packaged icon files (``icon.svg``, ``icon-48.png``, ...)."""
    return resources.files("suno_mcp.server").joinpath("icons").joinpath(name).read_bytes()


def server_icons() -> list[types.Icon]:
    """The server's icons: the SVG inline (it works offline and is about 330 bytes), and a PNG by
    URL. The SDK stamps the server's identity into every 2026-07-28 result, so no PNG goes inline."""
    svg = base64.b64encode(icon_bytes("icon.svg")).decode("ascii")
    return [
        types.Icon(src=f"data:image/svg+xml;base64,{svg}", mime_type="image/svg+xml", sizes=["any"]),
        types.Icon(src=PNG_URL, mime_type="image/png", sizes=["256x256"]),
    ]


# The tool, prompt and template lists never change while the process runs and are the same for
# every caller: a client may keep them for an hour and share them (a redeploy shows within the
# hour). The resource list is short-lived and private: it leads to the caller's own ledger.
CACHE_HINTS: Final[dict[CacheableMethod, CacheHint]] = {
    "tools/list": CacheHint(ttl_ms=HOUR_MS, scope="public"),
    "prompts/list": CacheHint(ttl_ms=HOUR_MS, scope="public"),
    "resources/templates/list": CacheHint(ttl_ms=HOUR_MS, scope="public"),
    "resources/list": CacheHint(ttl_ms=60_000, scope="private"),
}


class PlayerApps(Extension):
    """The MCP Apps extension (``io.modelcontextprotocol/ui``) as ``initialize`` advertises it: the
    SDK's identifier, no settings, and no resource of its own. The player's resource is registered
    with the server's other resources when they are first needed (:mod:`suno_mcp.server.player`).

    The SDK's :class:`~mcp.server.apps.Apps` would take the resource at construction, so a stdio
    session would import its module and the player's and build the resource (about 5 ms) before
    its first answer, for a page only an Apps host reads, later. A test holds the identifier equal
    to the SDK's ``EXTENSION_ID``.
    """

    identifier = "io.modelcontextprotocol/ui"
