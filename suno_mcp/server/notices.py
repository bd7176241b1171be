"""Notifications for the connections that ask for them: resource subscriptions and log messages.

The SDK's MCPServer serves neither ``resources/subscribe`` nor ``logging/setLevel`` and has no
public way to register a handler for a spec method (its low-level server is private; an
Extension may not bind spec methods). Its public middleware (``MCPServer(middleware=...)``) runs
before the method lookup, so :class:`Notices` answers those three methods itself on handshake-era
connections (2025-11-25 and earlier) and adds what it serves to the ``initialize`` result's
capabilities (``logging``, ``resources.subscribe``), which the middleware receives as a plain dict.
On 2026-07-28 connections it lets everything through: there, ``logging/setLevel`` and
``resources/subscribe`` no longer exist (the SDK answers "method not found"), and resource updates
reach a client through ``subscriptions/listen`` on the server's subscription bus, where
:class:`Notices` publishes them too.

What is sent comes from the service's news (:mod:`suno_mcp.domain.news`): a task that moved, a
paid request recorded, a 429 pause, a question about spending. Each connection hears only its own
tenant's news (team mode: the tenant of the key its requests bring), and nothing in a message is
secret: ids, statuses, counts and the upstream's error text, as the tools show them.

A connection is known by its ``initialize`` parameters, the one object the SDK keeps per
connection and shows every request publicly (``ctx.session.client_params``). On stateless HTTP no
connection outlives its request, so a subscription could never be delivered: ``resources/subscribe``
is refused there with that reason, and ``logging/setLevel`` is accepted and has nothing to govern.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, get_args

import anyio
import mcp_types as types
from anyio.streams.memory import MemoryObjectSendStream
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.subscriptions import ResourceUpdated, SubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import SecretStr, ValidationError

from suno_mcp.domain.status import Status
from suno_mcp.domain.tenancy import CURRENT_CALLER, SERVER_TENANT, Caller

if TYPE_CHECKING:
    # The news items are classes only a running service makes: imported where news is read, once
    # there is some (their dataclasses are no part of a stdio session's start).
    from suno_mcp.domain.news import News

log = logging.getLogger(__name__)

USAGE_URI = "suno://usage"
TASK_URI_PREFIX = "suno://tasks/"
OUR_SCHEME = "suno:"
# Severity, lowest first (the order of the spec's LoggingLevel).
LEVELS: tuple[types.LoggingLevel, ...] = get_args(types.LoggingLevel)
LOGGER = "suno-mcp"

# Bounds: connections remembered (the least recently heard from goes first), resources one
# connection may follow, and news waiting to be sent (more is dropped, with a warning).
MAX_CONNECTIONS = 1000
MAX_URIS_PER_CONNECTION = 200
MAX_QUEUED = 1000


@dataclass
class _Connection:
    """What one handshake-era connection asked for, and the session to reach it by."""

    session: ServerSession
    tenant: str | None  # whose news it hears; None: no caller (team mode without a key)
    uris: set[str] = field(default_factory=set)
    level: types.LoggingLevel | None = None  # None: it never asked for log messages


# A finished song is what a user waits for; a failure or a stall is what they must act on.
_TASK_LEVELS: dict[Status, types.LoggingLevel] = {
    Status.COMPLETE: "info",
    Status.FAILED: "error",
    Status.STALLED: "warning",
}


def followed_uri(news: News) -> str | None:
    """The resource a piece of news changes, if any."""
    from suno_mcp.domain.news import TaskMoved, UsageRecorded

    if isinstance(news, TaskMoved):
        return TASK_URI_PREFIX + news.task_id
    if isinstance(news, UsageRecorded):
        return USAGE_URI
    return None


def log_entry(news: News) -> tuple[types.LoggingLevel, dict[str, Any]]:
    """The level and data of the log message a piece of news makes."""
    from suno_mcp.domain.news import Paused, SpendAsked, TaskMoved

    if isinstance(news, TaskMoved):
        level = _TASK_LEVELS.get(news.status, "debug")
        text = f"task {news.task_id} is {news.status.value}"
        if news.error and news.status in (Status.FAILED, Status.STALLED):
            text += f": {news.error}"
        return level, {"message": text, "task_id": news.task_id, "status": news.status.value}
    if isinstance(news, Paused):
        wait = "" if news.retry_after is None else f" for about {news.retry_after:g} s"
        return "warning", {"message": f"the upstream asked us to slow down (429): requests wait{wait}"}
    if isinstance(news, SpendAsked):
        why = "the budget is reached" if news.over_budget else "every paid request asks first"
        return "notice", {
            "message": f"the user was asked before a paid request ({why}) and answered {news.answer}"
        }
    return "debug", {"message": "a paid request was recorded: suno://usage changed"}


class Notices:
    """Server middleware answering ``resources/subscribe``, ``resources/unsubscribe`` and
    ``logging/setLevel`` for handshake-era connections, and the sender of what they asked for.

    :meth:`hear` takes the service's news (a listener of its feed: it only queues); :meth:`run`
    (in the server's lifespan) sends it on. ``bus`` is the server's subscription bus, for
    2026-07-28 listeners; in team mode ``suno://usage`` is not published there, because a listen
    stream is filtered by URI alone and every tenant's usage has that one URI.
    """

    def __init__(
        self, bus: SubscriptionBus, tenant_secret: SecretStr | None, *, stateless_http: bool
    ) -> None:
        self._bus = bus
        self._secret = tenant_secret
        self._stateless_http = stateless_http
        self._connections: OrderedDict[int, tuple[types.InitializeRequestParams, _Connection]] = OrderedDict()
        self._queue: MemoryObjectSendStream[News] | None = None  # open while run() runs

    # ------------------------------------------------------------ the middleware

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        caller = None if self._secret is None else _team_caller(ctx, self._secret)
        token = CURRENT_CALLER.set(caller)  # for the completion handler, which gets no request context
        try:
            if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
                return await call_next(ctx)
            if ctx.method == "initialize":
                return self._declare(await call_next(ctx), ctx)
            if ctx.method in ("resources/subscribe", "resources/unsubscribe", "logging/setLevel"):
                tenant = SERVER_TENANT if self._secret is None else None if caller is None else caller.tenant
                return self._answer(ctx, tenant)
            return await call_next(ctx)
        finally:
            CURRENT_CALLER.reset(token)

    def _over_stateless_http(self, ctx: ServerRequestContext[Any, Any]) -> bool:
        return self._stateless_http and ctx.request is not None

    def _declare(self, result: HandlerResult, ctx: ServerRequestContext[Any, Any]) -> HandlerResult:
        """The ``initialize`` result, with the capabilities this middleware serves added."""
        if not isinstance(result, dict):
            return result
        capabilities = result.get("capabilities")
        if isinstance(capabilities, dict):
            capabilities["logging"] = {}
            resources = capabilities.get("resources")
            if isinstance(resources, dict):
                resources["subscribe"] = not self._over_stateless_http(ctx)
        return result

    def _answer(self, ctx: ServerRequestContext[Any, Any], tenant: str | None) -> dict[str, Any]:
        params = ctx.params or {}
        try:
            if ctx.method == "logging/setLevel":
                level = types.SetLevelRequestParams.model_validate(params, by_name=False).level
                connection = self._connection(ctx, tenant)
                if connection is not None:
                    connection.level = level
                return {}
            uri = types.SubscribeRequestParams.model_validate(params, by_name=False).uri
        except ValidationError:
            raise MCPError(code=types.INVALID_PARAMS, message="Invalid request parameters") from None
        connection = self._connection(ctx, tenant)
        if connection is None:
            raise MCPError(
                code=types.INVALID_REQUEST,
                message=(
                    "this server runs stateless HTTP: no connection outlives its request to carry "
                    "updates. Read the resource again instead, or listen with subscriptions/listen "
                    "(protocol 2026-07-28)."
                ),
            )
        if ctx.method == "resources/unsubscribe":
            connection.uris.discard(uri)
        elif uri.startswith(OUR_SCHEME) and uri != USAGE_URI and not uri.startswith(TASK_URI_PREFIX):
            # Our own namespace we know: a typo there would wait for an update that never comes.
            # Another scheme's URI is the client's to name (the spec leaves it to the server): the
            # subscription is kept, and nothing here ever changes it.
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"only {USAGE_URI} and {TASK_URI_PREFIX}{{task_id}} change while the server runs",
            )
        elif len(connection.uris) >= MAX_URIS_PER_CONNECTION and uri not in connection.uris:
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"one connection follows at most {MAX_URIS_PER_CONNECTION} resources: unsubscribe from some",
            )
        else:
            connection.uris.add(uri)
        return {}

    def _connection(self, ctx: ServerRequestContext[Any, Any], tenant: str | None) -> _Connection | None:
        """This request's connection (remembered from now on), or None when there is none to remember."""
        client = ctx.session.client_params
        if client is None or self._over_stateless_http(ctx):
            return None
        key = id(client)  # the entry holds ``client`` itself, so the id is not reused while it lives
        entry = self._connections.get(key)
        if entry is None:
            entry = (client, _Connection(session=ctx.session, tenant=tenant))
            self._connections[key] = entry
            while len(self._connections) > MAX_CONNECTIONS:
                self._connections.popitem(last=False)
        self._connections.move_to_end(key)
        entry[1].tenant = tenant  # the key the newest request brought
        return entry[1]

    # ------------------------------------------------------------ delivery

    def hear(self, news: News) -> None:
        """Queue ``news`` for :meth:`run` (a listener of the service's feed: never blocks)."""
        if self._queue is None:
            return  # not running: nobody to tell
        try:
            self._queue.send_nowait(news)
        except anyio.WouldBlock:
            log.warning("dropped a notification: %d are waiting to be sent already", MAX_QUEUED)

    async def run(self) -> None:
        """Send the queued news to the connections that asked, until cancelled."""
        send, receive = anyio.create_memory_object_stream["News"](MAX_QUEUED)
        self._queue = send
        try:
            async with send, receive:
                async for news in receive:
                    try:
                        await self._deliver(news)
                    except Exception:
                        log.exception("sending the notifications of %s failed", type(news).__name__)
        finally:
            self._queue = None

    async def _deliver(self, news: News) -> None:
        uri = followed_uri(news)
        level, data = log_entry(news)
        for key, (_, connection) in list(self._connections.items()):
            if connection.tenant != news.tenant:
                continue
            try:
                if uri is not None and uri in connection.uris:
                    await connection.session.send_resource_updated(uri)
                if connection.level is not None and LEVELS.index(level) >= LEVELS.index(connection.level):
                    params = types.LoggingMessageNotificationParams(level=level, data=data, logger=LOGGER)
                    await connection.session.send_notification(
                        types.LoggingMessageNotification(params=params)
                    )
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                self._connections.pop(key, None)  # the connection is gone
        if uri is not None and (self._secret is None or uri != USAGE_URI):
            await self._bus.publish(ResourceUpdated(uri=uri))


def _team_caller(ctx: ServerRequestContext[Any, Any], secret: SecretStr) -> Caller | None:
    """Team mode: who sent the message (imported here: a server of one person never asks)."""
    from suno_mcp.server.callers import request_caller

    return request_caller(ctx.request, _headers(ctx), secret)


def _headers(ctx: ServerRequestContext[Any, Any]) -> Mapping[str, str] | None:
    """The HTTP headers of the message (None over stdio and in memory)."""
    headers = getattr(ctx.request, "headers", None)
    return headers if isinstance(headers, Mapping) else None
