"""The streamable HTTP transport, with its door: loopback by default, a bearer token when
``SUNO_MCP_HTTP_TOKEN`` is set, and DNS-rebinding protection (a foreign Host is refused).

Under abuse the door also refuses to be held open: a connection whose request head is not complete
within ``SUNO_MCP_HTTP_HEADER_TIMEOUT_S`` is closed, at most ``SUNO_MCP_HTTP_MAX_CONNECTIONS`` are
open (a new one pushes out the oldest that is still sending its head), and at most
``SUNO_MCP_HTTP_MAX_CALLS`` MCP messages are handled at once (the rest get 503 with Retry-After).
uvicorn alone does neither of the first two: its keep-alive timer starts only after a response, and
``limit_concurrency`` answers 503 to requests but never closes a connection that sends none.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from suno_mcp.errors import ConfigurationError
from suno_mcp.settings import Settings

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger(__name__)

# What a refused call is told to wait before trying again (seconds).
RETRY_AFTER_S = 1

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


def _json_response(
    status: int, body: dict[str, str], extra: list[tuple[bytes, bytes]]
) -> list[dict[str, Any]]:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *extra]
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": data},
    ]


class CallLimitMiddleware:
    """At most ``max_calls`` MCP messages (POSTs) in the app at once; past that, 503 and Retry-After.

    GET (the server-to-client event stream) and DELETE are not counted: a stream is open for as long
    as a client listens, and counting it would let idle listeners use up every slot.
    """

    def __init__(self, app: ASGIApp, max_calls: int) -> None:
        self._app = app
        self._limiter = anyio.CapacityLimiter(max_calls)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self._app(scope, receive, send)
            return
        token = object()
        try:
            self._limiter.acquire_on_behalf_of_nowait(token)
        except anyio.WouldBlock:
            body = {"error": "busy", "message": f"too many calls at once; retry in {RETRY_AFTER_S} s"}
            for message in _json_response(503, body, [(b"retry-after", str(RETRY_AFTER_S).encode())]):
                await send(message)
            return
        try:
            await self._app(scope, receive, send)
        finally:
            self._limiter.release_on_behalf_of(token)


def guarded_protocol(max_connections: int, header_timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a deadline for each request head and a cap on open connections.

    The deadline is armed when a connection opens and again when a response completes (the next
    head may start then); when it fires while h11 still waits for a complete head, the connection is
    closed, however slowly bytes trickle in. At the cap, a new connection closes the oldest one still
    waiting for its head, so half-open connections cannot crowd out a client that talks; when every
    open connection is mid-request, the new one is closed instead.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    open_now: dict[GuardedH11Protocol, None] = {}  # insertion order: oldest first

    class GuardedH11Protocol(H11Protocol):
        _head_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(open_now) >= max_connections:
                waiting = next((c for c in open_now if c._waiting_for_head()), None)
                if waiting is None:
                    transport.close()
                    return
                waiting._close()
            open_now[self] = None
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            open_now.pop(self, None)
            self._disarm()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def _waiting_for_head(self) -> bool:
            return self.conn.their_state is h11.IDLE

        def _arm(self) -> None:
            self._disarm()
            self._head_deadline = self.loop.call_later(header_timeout_s, self._deadline_passed)

        def _disarm(self) -> None:
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None

        def _deadline_passed(self) -> None:
            self._head_deadline = None
            if self._waiting_for_head():
                self._close()

        def _close(self) -> None:
            open_now.pop(self, None)
            self._disarm()
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedH11Protocol


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
    app = CallLimitMiddleware(app, settings.http_max_calls)
    if settings.http_token is not None:
        # Outermost: a caller without the token does not even take a call slot.
        app = BearerTokenMiddleware(app, settings.http_token.get_secret_value())
    return app


def serve_http(server: Any, settings: Settings, *, host: str, port: int) -> None:
    """Serve until interrupted."""
    import uvicorn

    app = build_http_app(server, settings, host)
    print(f"suno-mcp: serving MCP on http://{host}:{port}/mcp", file=sys.stderr, flush=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        http=guarded_protocol(settings.http_max_connections, settings.http_header_timeout_s),
        # An idle keep-alive connection is closed as soon as a head would be (uvicorn takes whole seconds).
        timeout_keep_alive=max(1, round(settings.http_header_timeout_s)),
    )
