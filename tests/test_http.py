"""The HTTP transport's door: loopback by default, a token when configured, no foreign Host."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from mcp import Client

from suno_mcp.backends import SandboxOptions, sandbox_backend
from suno_mcp.errors import ConfigurationError
from suno_mcp.http import build_http_app, check_exposure, is_loopback
from suno_mcp.server import build_server
from suno_mcp.settings import load_settings

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    },
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: server.serve(sockets=[sock]))
        with anyio.fail_after(10):
            while not server.started:  # noqa: ASYNC110 (uvicorn offers no started event)
                await anyio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
    sock.close()


def _server(tmp_path: Path, **overrides: Any) -> tuple[Any, Any]:
    settings = load_settings(environ={}, data_dir=tmp_path, **overrides)
    return build_server(settings, sandbox_backend(SandboxOptions(speed=100))), settings


async def test_without_a_token_configured_a_loopback_server_answers_and_runs_tools(tmp_path: Path) -> None:
    server, settings = _server(tmp_path)
    async with serving(build_http_app(server, settings, "127.0.0.1")) as url:
        with anyio.fail_after(30):
            async with Client(f"{url}/mcp") as client:
                tools = await client.list_tools()
                assert "generate_music" in {t.name for t in tools.tools}
                result = await client.call_tool(
                    "generate_music", {"description": "over http", "wait_seconds": 5}
                )
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert result.structured_content["sandbox"] is True


async def test_with_a_token_every_request_without_it_is_refused_with_401(tmp_path: Path) -> None:
    server, settings = _server(tmp_path, http_token="s3cret-token-value")
    async with serving(build_http_app(server, settings, "127.0.0.1")) as url, httpx.AsyncClient() as http:
        missing = await http.post(f"{url}/mcp", json=INIT, headers=HEADERS)
        wrong = await http.post(f"{url}/mcp", json=INIT, headers={**HEADERS, "Authorization": "Bearer nope"})
        right = await http.post(
            f"{url}/mcp", json=INIT, headers={**HEADERS, "Authorization": "Bearer s3cret-token-value"}
        )
    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert "s3cret" not in missing.text
    assert right.status_code == 200


async def test_a_foreign_host_header_is_refused(tmp_path: Path) -> None:
    server, settings = _server(tmp_path)
    async with serving(build_http_app(server, settings, "127.0.0.1")) as url, httpx.AsyncClient() as http:
        evil = await http.post(f"{url}/mcp", json=INIT, headers={**HEADERS, "Host": "evil.example:80"})
        good = await http.post(f"{url}/mcp", json=INIT, headers=HEADERS)
    assert evil.status_code in (400, 403, 421)
    assert good.status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
def test_binding_beyond_loopback_without_a_token_is_refused_with_advice(tmp_path: Path, host: str) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="SUNO_MCP_HTTP_TOKEN"):
        check_exposure(settings, host)


def test_binding_beyond_loopback_with_a_token_is_allowed(tmp_path: Path) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path, http_token="t0ken")
    check_exposure(settings, "0.0.0.0")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("127.1.2.3", True),
        ("0.0.0.0", False),
        ("example.com", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
