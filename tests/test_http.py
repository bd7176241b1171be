"""The HTTP transport's door: loopback by default, a token when configured, no foreign Host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from suno_mcp.domain.errors import ConfigurationError
from suno_mcp.server.app import build_server
from suno_mcp.server.http import build_http_app, check_exposure, is_loopback, startup_line
from suno_mcp.service.backends import SandboxOptions, sandbox_backend
from suno_mcp.settings import load_settings
from tests.support.http_app import INIT, MCP_HEADERS, serving

HEADERS = {k: v for k, v in MCP_HEADERS.items() if k != "MCP-Protocol-Version"}


def _server(tmp_path: Path, **overrides: Any) -> tuple[Any, Any]:
    # A fast sandbox and no request ceiling: the HTTP door is the subject, not the waiting.
    overrides.setdefault("max_requests_per_second", 1000.0)
    settings = load_settings(environ={}, data_dir=tmp_path, **overrides)
    return build_server(settings, sandbox_backend(SandboxOptions(speed=1000))), settings


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


async def test_a_public_name_the_proxy_forwards_is_allowed_and_others_are_still_refused(
    tmp_path: Path,
) -> None:
    server, settings = _server(tmp_path, http_allowed_hosts=("suno.example.com",))
    async with serving(build_http_app(server, settings, "127.0.0.1")) as url, httpx.AsyncClient() as http:
        public = await http.post(
            f"{url}/mcp",
            json=INIT,
            headers={**HEADERS, "Host": "suno.example.com", "Origin": "https://suno.example.com"},
        )
        other = await http.post(f"{url}/mcp", json=INIT, headers={**HEADERS, "Host": "evil.example"})
    assert public.status_code == 200
    assert other.status_code == 421


def test_allowed_hosts_are_read_from_the_environment_as_a_list_and_must_be_bare_names(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"SUNO_MCP_HTTP_ALLOWED_HOSTS": "Suno.Example.com, mcp.example.org"}, data_dir=tmp_path
    )
    assert settings.http_allowed_hosts == ("suno.example.com", "mcp.example.org")
    with pytest.raises(ConfigurationError, match="SUNO_MCP_HTTP_ALLOWED_HOSTS"):
        load_settings(environ={"SUNO_MCP_HTTP_ALLOWED_HOSTS": "https://suno.example.com/"}, data_dir=tmp_path)


def test_team_mode_may_listen_beyond_loopback_without_a_token_and_says_tls_goes_in_front(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        environ={}, data_dir=tmp_path, keys="per-request", tenant_secret="a-tenant-secret-of-32-characters"
    )
    check_exposure(settings, "0.0.0.0")
    line = startup_line(settings, "0.0.0.0", 8000)
    assert "http://0.0.0.0:8000/mcp" in line
    assert "TLS" in line
    assert "stateless" in line  # team mode is stateless unless told otherwise
    single = startup_line(load_settings(environ={}, data_dir=tmp_path), "127.0.0.1", 8000)
    assert "TLS" not in single
    assert "stateless" not in single
