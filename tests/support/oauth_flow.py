"""A sign-in server (``SUNO_MCP_AUTH=oauth``) in front of a sandbox, and the OAuth steps a client takes,
one HTTP request each, for the tests that check each rule on its own.

The steps are plain HTTP on purpose: a test of a refused request must send exactly the request it
is about. The end-to-end test uses the SDK's own OAuth client instead.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from suno_mcp.sandbox.runner import SandboxHandle, run_sandbox
from suno_mcp.sandbox.state import SandboxConfig
from suno_mcp.server.app import SunoServer, build_server
from suno_mcp.server.http import build_http_app
from suno_mcp.service.backends import upstream_backend
from suno_mcp.settings import Settings, load_settings
from tests.support.http_app import loopback_socket, serving, socket_url

SECRET = "a-team-secret-for-the-oauth-tests-0123456789"
# The one key the sandbox accepts: random per run, so finding it anywhere can only mean it leaked.
GOOD_KEY = "gp-signin-" + secrets.token_hex(12)
REDIRECT = "http://127.0.0.1:9/callback"
STEP_LIMIT_S = 30.0


def pkce() -> tuple[str, str]:
    """A code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


class WallClock:
    """Wall-clock seconds that a test can move forward (token lifetimes)."""

    def __init__(self) -> None:
        import time

        self._now = time.time
        self.offset = 0.0

    def __call__(self) -> float:
        return self._now() + self.offset


@dataclass
class OAuthSteps:
    """The OAuth steps against a sign-in server listening at ``url`` and published at ``public_url``."""

    url: str  # where this server listens
    public_url: str  # where people reach it (a load balancer in front leads there)
    http: httpx.AsyncClient = field(repr=False)

    @property
    def resource(self) -> str:
        """The resource its tokens are bound to."""
        return f"{self.public_url}/mcp"

    @property
    def mcp(self) -> str:
        return self.url + "/mcp"

    async def register(self, redirect_uris: list[str] | None = None, **extra: Any) -> httpx.Response:
        body = {
            "redirect_uris": redirect_uris or [REDIRECT],
            "client_name": "Test app",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            **extra,
        }
        return await self.http.post(self.url + "/register", json=body)

    async def client(self) -> str:
        answer = await self.register()
        assert answer.status_code == 201, answer.text
        client_id: str = answer.json()["client_id"]
        return client_id

    async def authorize(self, client_id: str, challenge: str | None, **params: str) -> httpx.Response:
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "state": "st-" + secrets.token_hex(4),
            "resource": self.resource,
            **params,
        }
        if challenge is not None:
            query.setdefault("code_challenge", challenge)
            query.setdefault("code_challenge_method", "S256")
        return await self.http.get(self.url + "/authorize", params=query)

    async def signin_page(self, client_id: str, challenge: str) -> tuple[str, str]:
        """Authorize, and follow to the sign-in page: its URL and the request id its form carries."""
        answer = await self.authorize(client_id, challenge)
        assert answer.status_code == 302, answer.text
        page_url = answer.headers["location"]
        assert page_url.startswith(f"{self.public_url}/signin?"), page_url
        # The public address leads to this replica (as a load balancer in front would send it).
        page_url = self.url + page_url.removeprefix(str(self.public_url))
        page = await self.http.get(page_url)
        assert page.status_code == 200, page.text
        found = re.search(r'name="request" value="([^"]+)"', page.text)
        assert found is not None, page.text
        return page_url, found.group(1)

    async def post_key(self, page_url: str, request_id: str, key: str) -> httpx.Response:
        return await self.http.post(page_url, data={"request": request_id, "key": key})

    async def code(self, client_id: str, challenge: str, key: str = GOOD_KEY) -> str:
        """The code a person signing in with ``key`` sends back to the app."""
        page_url, request_id = await self.signin_page(client_id, challenge)
        answer = await self.post_key(page_url, request_id, key)
        assert answer.status_code == 303, answer.text
        target = urlsplit(answer.headers["location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == REDIRECT
        return parse_qs(target.query)["code"][0]

    async def exchange(self, client_id: str, code: str, verifier: str, **extra: str) -> httpx.Response:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": client_id,
            "code_verifier": verifier,
            "resource": self.resource,
            **extra,
        }
        return await self.http.post(self.url + "/token", data=data)

    async def tokens(self, key: str = GOOD_KEY) -> tuple[str, dict[str, Any]]:
        """A new client signed in with ``key``: its id and its token answer."""
        client_id = await self.client()
        verifier, challenge = pkce()
        answer = await self.exchange(client_id, await self.code(client_id, challenge, key), verifier)
        assert answer.status_code == 200, answer.text
        return client_id, answer.json()

    async def refresh(self, client_id: str, refresh_token: str) -> httpx.Response:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
        return await self.http.post(self.url + "/token", data=data)

    async def revoke(self, client_id: str, token: str) -> httpx.Response:
        # The SDK's revocation endpoint wants the client_secret field even from a public client.
        data = {"token": token, "client_id": client_id, "client_secret": ""}
        return await self.http.post(self.url + "/revoke", data=data)

    async def mcp_status(self, access_token: str) -> int:
        """The status of an MCP initialize sent with ``access_token``."""
        from tests.support.http_app import INIT, MCP_HEADERS

        headers = {**MCP_HEADERS, "Authorization": f"Bearer {access_token}"}
        answer = await self.http.post(self.mcp, json=INIT, headers=headers)
        return answer.status_code


@dataclass
class SignInServer(OAuthSteps):
    """A sign-in server run in this process: also the sandbox behind it, its settings and the clock its
    tokens use."""

    sandbox: SandboxHandle = field(kw_only=True)
    settings: Settings = field(kw_only=True)
    server: SunoServer = field(kw_only=True)
    wall: WallClock = field(kw_only=True)


@asynccontextmanager
async def signin_server(
    tmp_path: Path,
    *,
    auth: tuple[str, ...] = ("oauth",),
    sandbox: SandboxConfig | None = None,
    upstream: SandboxHandle | None = None,
    configure: Callable[[Settings], Settings] | None = None,
    public_url: str | None = None,
    **overrides: Any,
) -> AsyncIterator[SignInServer]:
    """A sign-in server over HTTP on a loopback port, in front of a sandbox that accepts
    :data:`GOOD_KEY` only (or ``upstream``, shared with another server). ``public_url``: the address
    it is reached at, when it is a replica behind another's (default: its own)."""
    overrides.setdefault("tenant_max_rps", 1000.0)
    async with _sandbox(upstream, sandbox) as up:
        sock = loopback_socket()
        url = socket_url(sock)
        settings = load_settings(
            environ={},
            data_dir=tmp_path,
            keys="per-request",
            tenant_secret=SECRET,
            auth=auth,
            public_url=public_url or url,
            base_url=up.url,
            **overrides,
        )
        if configure is not None:
            settings = configure(settings)
        wall = WallClock()
        server = build_server(settings, upstream_backend, wall=wall)
        async with (
            serving(build_http_app(server, settings, "127.0.0.1"), sock) as served,
            httpx.AsyncClient(timeout=STEP_LIMIT_S) as http,
        ):
            assert served == url
            assert settings.public_url is not None
            yield SignInServer(
                url, settings.public_url, http, sandbox=up, settings=settings, server=server, wall=wall
            )


@asynccontextmanager
async def _sandbox(given: SandboxHandle | None, config: SandboxConfig | None) -> AsyncIterator[SandboxHandle]:
    if given is not None:
        yield given
        return
    async with run_sandbox(config or SandboxConfig(speed=100, api_key=GOOD_KEY)) as up:
        yield up
