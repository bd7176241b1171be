"""The in-chat player as a client sees it: the ui:// resource, its policy, the tools bound to it,
and results that stay the same for clients without the Apps extension.

The player running in a real browser is tests/test_player_browser.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import mcp_types as types
import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID

from suno_mcp.domain.errors import ConfigurationError
from suno_mcp.server.app import build_server
from suno_mcp.server.player import PLAYER_TOOLS, PLAYER_URI, player_html
from suno_mcp.service.backends import SandboxOptions, sandbox_backend
from suno_mcp.settings import DEFAULT_MEDIA_ORIGINS, load_settings
from tests.support.helpers_upstream import FakeUpstream, make_server, make_settings

pytestmark = pytest.mark.anyio

APPS = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})
NOT_YET_WRITTEN: set[str] = set()  # tools listed in PLAYER_TOOLS ahead of the tool itself


async def read_player(client: Client) -> types.TextResourceContents:
    result = await client.read_resource(PLAYER_URI)
    (content,) = result.contents
    assert isinstance(content, types.TextResourceContents)
    return content


def csp_of(content: types.TextResourceContents) -> dict[str, Any]:
    assert content.meta is not None
    csp: dict[str, Any] = content.meta["ui"]["csp"]
    return csp


async def test_the_player_is_one_html_document_served_as_an_mcp_app(tmp_path: Path) -> None:
    async with Client(make_server(make_settings(tmp_path), FakeUpstream()), extensions=[APPS]) as client:
        listed = {r.uri: r for r in (await client.list_resources()).resources}
        content = await read_player(client)
    assert listed[PLAYER_URI].mime_type == APP_MIME_TYPE
    assert content.mime_type == APP_MIME_TYPE
    assert content.text == player_html()
    assert content.text.lower().startswith("<!doctype html>")


def test_the_player_loads_no_code_and_makes_no_connections_of_its_own() -> None:
    html = player_html()
    assert not re.search(r"<script[^>]*\ssrc=", html, re.I)
    assert not re.search(r"<link[^>]*\shref=", html, re.I)
    assert "@import" not in html
    for call in ("fetch(", "XMLHttpRequest", "WebSocket", "EventSource", "import("):
        assert call not in html
    assert "http://" not in html
    assert "https://" not in html


async def test_the_policy_lists_exactly_the_configured_media_origins(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, media_origins=("https://media.example", "https://img.example:8443"))
    async with Client(make_server(settings, FakeUpstream()), extensions=[APPS]) as client:
        csp = csp_of(await read_player(client))
    assert csp == {"resourceDomains": ["https://media.example", "https://img.example:8443"]}


async def test_by_default_the_policy_lists_the_suno_cdn_hosts(tmp_path: Path) -> None:
    async with Client(make_server(make_settings(tmp_path), FakeUpstream()), extensions=[APPS]) as client:
        csp = csp_of(await read_player(client))
    assert csp["resourceDomains"] == list(DEFAULT_MEDIA_ORIGINS)
    assert "https://cdn1.suno.ai" in csp["resourceDomains"]  # the host the vendor's examples show
    assert set(csp) == {"resourceDomains"}  # no connections, frames or base URIs


def test_media_origins_come_from_the_environment_as_a_comma_separated_list() -> None:
    settings = load_settings(environ={"SUNO_MCP_MEDIA_ORIGINS": "https://a.example, https://*.b.example/ ,"})
    assert settings.media_origins == ("https://a.example", "https://*.b.example")


def test_a_media_origin_with_a_path_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"SUNO_MCP_MEDIA_ORIGINS: .*not an origin"):
        load_settings(environ={"SUNO_MCP_MEDIA_ORIGINS": "https://cdn.example/audio"})


async def test_against_the_sandbox_the_policy_adds_the_sandbox_address_where_its_audio_is(
    tmp_path: Path,
) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path)
    server = build_server(settings, sandbox_backend(SandboxOptions(speed=500.0, clip_seconds=4.0)))
    async with Client(server, extensions=[APPS]) as client:
        csp = csp_of(await read_player(client))
        result = await client.call_tool("generate_music", {"description": "rain", "wait_seconds": 10})
    clip = result.structured_content["clips"][0]
    media = urlsplit(clip.get("audio_url") or clip["preview_url"])
    sandbox_origin = f"{media.scheme}://{media.netloc}"
    assert sandbox_origin.startswith("http://127.0.0.1:")
    assert csp["resourceDomains"] == [*DEFAULT_MEDIA_ORIGINS, sandbox_origin]


async def test_the_task_tools_open_the_player_and_the_others_do_not(tmp_path: Path) -> None:
    async with Client(make_server(make_settings(tmp_path), FakeUpstream())) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    bound = {name for name, tool in tools.items() if (tool.meta or {}).get("ui")}
    assert bound == set(PLAYER_TOOLS) - NOT_YET_WRITTEN
    for name in bound:
        meta = tools[name].meta or {}
        assert meta["ui"] == {"resourceUri": PLAYER_URI}
        # No visibility: the default (model and app) lets the player call them through the host.
        assert "visibility" not in meta["ui"]


async def test_every_tool_the_player_binds_exists_or_is_known_to_be_coming(tmp_path: Path) -> None:
    server = make_server(make_settings(tmp_path), FakeUpstream())
    names = {tool.name for tool in await server.list_tools()}
    assert set(PLAYER_TOOLS) <= names | NOT_YET_WRITTEN


async def test_the_server_advertises_the_apps_extension(tmp_path: Path) -> None:
    async with Client(make_server(make_settings(tmp_path), FakeUpstream()), extensions=[APPS]) as client:
        extensions = client.server_capabilities.extensions or {}
    assert EXTENSION_ID in extensions


def _comparable(result: types.CallToolResult) -> dict[str, Any]:
    dumped = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    dumped["structuredContent"].pop("waited_seconds")
    return dumped


async def test_a_client_without_the_extension_gets_the_same_results_as_one_with_it(tmp_path: Path) -> None:
    results: list[dict[str, Any]] = []
    for extensions, where in (([], "plain"), ([APPS], "apps")):
        server = make_server(make_settings(tmp_path / where), FakeUpstream())
        async with Client(server, extensions=extensions) as client:
            first = await client.call_tool("generate_music", {"description": "rain", "wait_seconds": 5})
            task_id = first.structured_content["task_id"]
            status = await client.call_tool("get_task_status", {"task_id": task_id, "wait_seconds": 5})
        results.append({"generate": _comparable(first), "status": _comparable(status)})
    plain, apps = results
    assert plain == apps
    assert plain["generate"]["content"][0]["type"] == "text"
