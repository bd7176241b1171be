"""The streamable HTTP transport, with its door: loopback by default, a bearer token when
``SUNO_MCP_HTTP_TOKEN`` is set, and DNS-rebinding protection (a foreign Host is refused).

In team mode (``SUNO_MCP_KEYS=per-request``) the bearer credential is each caller's own gptproto
key instead: a request without one gets 401, and one tenant has at most
``SUNO_MCP_TENANT_MAX_CALLS`` MCP messages in the app at once. Every caller pays with their own key,
so the door may open beyond loopback without a server token; TLS is then terminated in front.

Under abuse the door also refuses to be held open: a connection whose request head is not complete
within ``SUNO_MCP_HTTP_HEADER_TIMEOUT_S`` is closed, a request whose body is not complete within
``SUNO_MCP_HTTP_BODY_TIMEOUT_S`` of its head gets 408 and is closed, at most
``SUNO_MCP_HTTP_MAX_CONNECTIONS`` are open (a new one pushes out the oldest that is still sending its
head), and at most ``SUNO_MCP_HTTP_MAX_CALLS`` MCP messages are handled at once (the rest get 503 with
Retry-After). The first three are the connections' job (:mod:`.connections`), the last the
middleware's here.

In front of the door, ``GET /healthz`` and ``GET /readyz`` answer without any credential, for the
load balancer or orchestrator that decides which replicas get traffic.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from suno_mcp.domain.errors import ConfigurationError, LedgerUnavailableError
from suno_mcp.domain.tenancy import bearer_key, tenant_id
from suno_mcp.settings import Settings

if TYPE_CHECKING:
    from suno_mcp.server.app import SunoServer

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


def transport_security(host: str, public_hosts: tuple[str, ...] = ()) -> TransportSecuritySettings:
    """Host/Origin checks: loopback names always, the bind address when it is neither loopback nor a
    wildcard, and the public names a proxy in front forwards (``SUNO_MCP_HTTP_ALLOWED_HOSTS``)."""
    hosts = list(_LOOPBACK_HOSTS)
    origins = list(_LOOPBACK_ORIGINS)
    names = list(public_hosts)
    if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::"):  # noqa: S104 (a wildcard is only compared)
        names.insert(0, host)
    for name in names:
        shown = f"[{name}]" if ":" in name else name
        hosts += [f"{shown}:*", shown]
        origins += [f"http://{shown}:*", f"https://{shown}:*", f"http://{shown}", f"https://{shown}"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


_UNAUTHORIZED = [(b"www-authenticate", b"Bearer")]
_BUSY = [(b"retry-after", str(RETRY_AFTER_S).encode())]


def _json_response(
    status: int, body: dict[str, str], extra: list[tuple[bytes, bytes]]
) -> list[dict[str, Any]]:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *extra]
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": data},
    ]


async def _answer(send: Send, status: int, body: dict[str, str], extra: list[tuple[bytes, bytes]]) -> None:
    for message in _json_response(status, body, extra):
        await send(message)


# The health endpoints, answered before any credential check, and how long /readyz waits for the
# service to open and its ledger to answer before it says 503.
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
READY_LIMIT_S = 1.0
_NO_STORE = [(b"cache-control", b"no-store")]


class HealthMiddleware:
    """``GET /healthz``: 200 while the process serves HTTP (liveness). ``GET /readyz``: 200 when the
    server can serve tool calls now (its service open, its ledger answering within
    :data:`READY_LIMIT_S`), else 503 with a one-line reason (readiness).

    Outermost in every mode: a load balancer or an orchestrator holds no token and no gptproto key,
    and probes a replica by its own address (so the Host check is not applied either). Exactly these
    two paths with GET are answered here; everything else goes on to the door. Neither answer names
    a key, an address, a path or a tenant.
    """

    def __init__(self, app: ASGIApp, why_not_ready: Callable[[float], Awaitable[str | None]]) -> None:
        self._app = app
        self._why_not_ready = why_not_ready

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path") if scope["type"] == "http" and scope.get("method") == "GET" else None
        if path == HEALTH_PATH:
            await _answer(send, 200, {"status": "ok"}, _NO_STORE)
        elif path == READY_PATH:
            reason = await self._why_not_ready(READY_LIMIT_S)
            if reason is None:
                await _answer(send, 200, {"status": "ready"}, _NO_STORE)
            else:
                await _answer(send, 503, {"status": "not ready", "reason": reason}, _NO_STORE)
        else:
            await self._app(scope, receive, send)


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
            body = {"error": "unauthorized", "message": "send Authorization: Bearer <SUNO_MCP_HTTP_TOKEN>"}
            await _answer(send, 401, body, _UNAUTHORIZED)
            return
        await self._app(scope, receive, send)


# What a team-mode request without a key is told.
NO_KEY_AT_DOOR = (
    "this server runs in team mode: send your own gptproto key with every request as the header "
    "'Authorization: Bearer <your gptproto key>' (set it in your MCP client's server entry)"
)


def _bearer_key(scope: Scope) -> str | None:
    """The request's bearer key, or None without one or with more than one Authorization header:
    the door must judge the same credential the server acts on, so two are refused, not chosen from."""
    given = [value for name, value in scope.get("headers") or [] if name == b"authorization"]
    if len(given) != 1:
        return None
    # HTTP header values are latin-1.
    return bearer_key({"authorization": given[0].decode("latin-1")})


class CallerKeyMiddleware:
    """Team mode's door: every HTTP request brings its caller's own gptproto key as
    ``Authorization: Bearer <key>`` (401 otherwise), and each tenant has at most ``max_calls`` MCP
    messages (POSTs) in the app at once (503 and Retry-After past that), so one busy caller
    cannot take every slot of the global cap.

    The key is not checked here (the upstream does that on the caller's first request); the door
    only tells tenants apart by it. It is neither logged nor kept.
    """

    def __init__(self, app: ASGIApp, secret: SecretStr, max_calls: int, *, signin: bool = False) -> None:
        self._app = app
        self._secret = secret
        self._max_calls = max_calls
        # With sign-in on, a request without a credential goes on: the SDK answers /mcp with a 401
        # that says where to sign in, and the sign-in endpoints need none.
        self._signin = signin
        self._active: dict[str, int] = {}  # tenant -> its calls in the app now; absent when none

    def __repr__(self) -> str:
        return f"CallerKeyMiddleware(max_calls={self._max_calls}, tenants_active={len(self._active)})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        key = _bearer_key(scope)
        if key is None and self._signin:
            await self._app(scope, receive, send)
            return
        if key is None:
            await _answer(send, 401, {"error": "unauthorized", "message": NO_KEY_AT_DOOR}, _UNAUTHORIZED)
            return
        if scope.get("method") != "POST":  # like the global cap: a listening stream is not a call
            await self._app(scope, receive, send)
            return
        tenant = tenant_id(self._secret, key)
        active = self._active.get(tenant, 0)
        if active >= self._max_calls:
            body = {
                "error": "busy",
                "message": f"too many calls at once with this key (at most {self._max_calls}); "
                f"retry in {RETRY_AFTER_S} s",
            }
            await _answer(send, 503, body, _BUSY)
            return
        self._active[tenant] = active + 1
        try:
            await self._app(scope, receive, send)
        finally:
            left = self._active.pop(tenant) - 1
            if left:
                self._active[tenant] = left


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
            await _answer(send, 503, body, _BUSY)
            return
        try:
            await self._app(scope, receive, send)
        finally:
            self._limiter.release_on_behalf_of(token)


class LedgerOutageMiddleware:
    """Sign-in's answer while the ledger cannot be reached (down, restarting, failing over): 503 with
    Retry-After and a line that says to try again, instead of a bare 500, from the sign-in page, the
    OAuth endpoints and the token check on ``/mcp`` alike. Nothing was issued or revoked meanwhile
    (each step is one transaction), so trying again is safe.

    It sits inside the SDK's app (``add_middleware``), around the SDK's bearer check, which runs
    before any route."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, receive, watched)
        except LedgerUnavailableError as err:
            if started:
                raise
            log.warning("sign-in: the ledger is unavailable (%s); answered 503", err)
            await _outage_answer(scope, send)


_OUTAGE = (
    "the server cannot reach its database right now; nothing was issued or changed. Try again in a minute."
)


async def _outage_answer(scope: Scope, send: Send) -> None:
    if str(scope.get("path", "")).startswith("/signin"):
        from suno_mcp.server.signin import page

        response = page("Try again in a minute", f"<p>{_OUTAGE[0].upper()}{_OUTAGE[1:]}</p>", 503)
        response.headers["Retry-After"] = "30"
        await response(scope, _no_receive, send)
        return
    body = {"error": "temporarily_unavailable", "error_description": _OUTAGE}
    await _answer(send, 503, body, [(b"retry-after", b"30"), *_NO_STORE])


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def check_exposure(settings: Settings, host: str) -> None:
    """Refuse to listen beyond this machine when the server's one key would pay for anyone who can
    reach it, unless a token guards the door. In team mode every caller pays with their own key."""
    if not is_loopback(host) and settings.http_token is None and not settings.team_mode:
        raise ConfigurationError(
            f"refusing to serve MCP over HTTP on {host} without a token: anyone who can reach it could spend "
            "your Suno credits. Set SUNO_MCP_HTTP_TOKEN to a long random secret (clients then send "
            "'Authorization: Bearer <token>'), bind 127.0.0.1, or run it for a team with "
            "SUNO_MCP_KEYS=per-request (every caller then sends their own gptproto key)."
        )


def build_http_app(server: SunoServer, settings: Settings, host: str) -> ASGIApp:
    """The ASGI app for ``server``: the global call cap, in front of it the token check or, in
    team mode, the caller's own key and the per-tenant call cap, and in front of everything the
    health endpoints."""
    check_exposure(settings, host)
    # The SDK checks a tools/call's Mcp-Param headers against the registered tool's schema, which
    # it reads past tools/list: a long-lived HTTP server registers its tools at start.
    server.register_pending()
    public_hosts = settings.http_allowed_hosts
    if settings.public_url is not None:  # the name people reach it by, behind the proxy
        public_hosts = (*public_hosts, urlsplit(settings.public_url).hostname or "")
    starlette_app = server.streamable_http_app(
        transport_security=transport_security(host, tuple(h for h in public_hosts if h)),
        host=host,
        stateless_http=settings.stateless_http,
    )
    if settings.oauth:
        starlette_app.add_middleware(LedgerOutageMiddleware)
    app: ASGIApp = CallLimitMiddleware(starlette_app, settings.http_max_calls)
    # Outermost: a caller without a credential, or over its own cap, does not even take a call slot.
    if settings.team_mode:
        assert settings.tenant_secret is not None  # the settings refuse team mode without one
        # With sign-in, the cap counts per credential: a token's tenant is only known after the SDK
        # has looked it up, and one person's token is one client of theirs.
        app = CallerKeyMiddleware(
            app, settings.tenant_secret, settings.tenant_max_calls, signin=settings.oauth
        )
    elif settings.http_token is not None:
        app = BearerTokenMiddleware(app, settings.http_token.get_secret_value())
    return HealthMiddleware(app, server.why_not_ready)


def startup_line(settings: Settings, host: str, port: int) -> str:
    """What the server says on stderr as it starts listening."""
    shown = f"[{host}]" if ":" in host else host
    line = f"suno-mcp: serving MCP on http://{shown}:{port}/mcp"
    if settings.stateless_http:
        line += " (stateless: any replica can answer any request)"
    if settings.team_mode and settings.bearer_keys:
        line += (
            "\nsuno-mcp: team mode: each request pays with its caller's own gptproto key "
            "(Authorization: Bearer <key>). This server speaks plain HTTP: terminate TLS in front of it "
            "(a reverse proxy), because the keys travel in every request."
        )
    if settings.oauth:
        line += (
            f"\nsuno-mcp: sign-in is on: people add {settings.public_url}/mcp in claude.ai, ChatGPT or "
            "Claude Desktop and sign in once with their gptproto key"
        )
        if not settings.bearer_keys:
            line += " (bearer gptproto keys are refused: SUNO_MCP_AUTH=oauth,key accepts both)"
    return line


def serve_http(server: SunoServer, settings: Settings, *, host: str, port: int) -> None:
    """Serve until interrupted."""
    import uvicorn

    from suno_mcp.server.connections import DoorLimits, guarded_protocol

    app = build_http_app(server, settings, host)
    print(startup_line(settings, host, port), file=sys.stderr, flush=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        http=guarded_protocol(
            DoorLimits(
                settings.http_max_connections, settings.http_header_timeout_s, settings.http_body_timeout_s
            )
        ),
        # An idle keep-alive connection is closed as soon as a head would be (uvicorn takes whole seconds).
        timeout_keep_alive=max(1, round(settings.http_header_timeout_s)),
    )
