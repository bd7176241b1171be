"""The streamable HTTP transport, with its door: loopback by default, a bearer token when
``SUNO_MCP_HTTP_TOKEN`` is set, and DNS-rebinding protection (a foreign Host is refused).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import sys
from typing import Any

from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from suno_mcp.errors import ConfigurationError
from suno_mcp.settings import Settings

log = logging.getLogger(__name__)

_LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"]
_LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def is_loopback(host: str) -> bool:
    """True for a host name or address that only this machine can reach."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def transport_security(host: str) -> TransportSecuritySettings:
    """Host/Origin checks: loopback names always, plus the bind address when it is not loopback."""
    hosts = list(_LOOPBACK_HOSTS)
    origins = list(_LOOPBACK_ORIGINS)
    if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::"):  # noqa: S104 (a wildcard is only compared)
        shown = f"[{host}]" if ":" in host else host
        hosts += [f"{shown}:*", shown]
        origins += [f"http://{shown}:*", f"https://{shown}:*"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


class BearerTokenMiddleware:
    """Refuses every HTTP request without ``Authorization: Bearer <token>`` (401)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        if not hmac.compare_digest(given, self._expected):
            body = json.dumps(
                {"error": "unauthorized", "message": "send Authorization: Bearer <SUNO_MCP_HTTP_TOKEN>"}
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"www-authenticate", b"Bearer"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self._app(scope, receive, send)


def check_exposure(settings: Settings, host: str) -> None:
    """Refuse to listen beyond this machine without a token."""
    if not is_loopback(host) and settings.http_token is None:
        raise ConfigurationError(
            f"refusing to serve MCP over HTTP on {host} without a token: anyone who can reach it could spend "
            "your Suno credits. Set SUNO_MCP_HTTP_TOKEN to a long random secret (clients then send "
            "'Authorization: Bearer <token>'), or bind 127.0.0.1."
        )


def build_http_app(server: Any, settings: Settings, host: str) -> ASGIApp:
    """The ASGI app for ``server`` with the token check (when configured) in front."""
    check_exposure(settings, host)
    app: ASGIApp = server.streamable_http_app(transport_security=transport_security(host), host=host)
    if settings.http_token is not None:
        app = BearerTokenMiddleware(app, settings.http_token.get_secret_value())
    return app


def serve_http(server: Any, settings: Settings, *, host: str, port: int) -> None:
    """Serve until interrupted."""
    import uvicorn

    app = build_http_app(server, settings, host)
    print(f"suno-mcp: serving MCP on http://{host}:{port}/mcp", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on")
