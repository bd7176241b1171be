"""The server's icon and website, and the cache hints on its lists, as clients of both revisions see them."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest
from mcp import Client
from mcp_types import SERVER_INFO_META_KEY, Implementation

from suno_mcp.server.app import build_server
from suno_mcp.server.identity import HOUR_MS, REPOSITORY_URL, icon_bytes
from suno_mcp.service.backends import upstream_backend
from suno_mcp.settings import load_settings

MANIFESTS = Path(__file__).resolve().parent.parent / "manifests"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk comes first
    return width, height


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_the_server_info_carries_our_icon_and_website_on_both_revisions(
    tmp_path: Path, mode: str
) -> None:
    server = build_server(load_settings(environ={}, data_dir=tmp_path), upstream_backend)
    async with Client(server, mode=mode) as client:
        listed = await client.list_tools()
        info = client.server_info
    if info is None:  # 2026-07-28 without a discover call: every result carries the server's identity
        assert listed.meta is not None
        info = Implementation.model_validate(listed.meta[SERVER_INFO_META_KEY])
    assert info.website_url == REPOSITORY_URL
    assert info.icons
    svg, png = info.icons
    assert svg.mime_type == "image/svg+xml"
    assert base64.b64decode(svg.src.removeprefix("data:image/svg+xml;base64,")) == icon_bytes("icon.svg")
    assert png.mime_type == "image/png"
    assert png.sizes == ["256x256"]
    assert png.src.startswith("https://raw.githubusercontent.com/suno-mcp/suno-mcp/")
    assert png.src.endswith("/suno_mcp/server/icons/icon-256.png")


def test_the_packaged_pngs_are_the_sizes_they_are_named_after_and_the_bundle_has_its_own() -> None:
    for size in (48, 128, 256):
        assert _png_size(icon_bytes(f"icon-{size}.png")) == (size, size)
    assert _png_size((MANIFESTS / "icon.png").read_bytes()) == (512, 512)
    assert icon_bytes("icon.svg").startswith(b"<svg xmlns=")


async def test_a_2026_client_may_keep_the_fixed_lists_for_an_hour_and_the_resource_list_briefly(
    tmp_path: Path,
) -> None:
    server = build_server(load_settings(environ={}, data_dir=tmp_path), upstream_backend)
    async with Client(server, mode="2026-07-28") as client:
        tools = await client.list_tools()
        prompts = await client.list_prompts()
        templates = await client.list_resource_templates()
        listed = await client.list_resources()
    for fixed in (tools, prompts, templates):
        assert (fixed.ttl_ms, fixed.cache_scope) == (HOUR_MS, "public")
    assert (listed.ttl_ms, listed.cache_scope) == (60_000, "private")
    assert listed.resources


async def test_a_2025_client_gets_the_same_lists_without_cache_hints(tmp_path: Path) -> None:
    server = build_server(load_settings(environ={}, data_dir=tmp_path), upstream_backend)
    async with Client(server, mode="legacy") as client:
        assert client.protocol_version == "2025-11-25"
        tools = await client.list_tools()
        prompts = await client.list_prompts()
        templates = await client.list_resource_templates()
        listed = await client.list_resources()
    assert len(tools.tools) == 10
    assert prompts.prompts
    assert templates.resource_templates
    assert listed.resources
    # The 2025-11-25 wire has no cache fields: the client's model keeps its defaults.
    assert tools.ttl_ms == 0
