"""The service a server holds: opened on the first call that needs it, kept for the server's life.

The lifespan owns a :class:`LazyService`; a tool call reaches it through its Context, a resource
read (which gets no Context) through the server's holder. Either way, in team mode the service
acts for the caller whose key the message brought.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError

from suno_mcp.domain.errors import ConfigurationError
from suno_mcp.domain.tenancy import CURRENT_CALLER
from suno_mcp.settings import Settings

if TYPE_CHECKING:
    from suno_mcp.domain.news import Listener
    from suno_mcp.server.metrics import MetricsListener
    from suno_mcp.server.notices import Notices

    # The service (and httpx behind it) is imported only when the first tool call opens it,
    # which keeps the server's start-up as light as the SDK's own.
    from suno_mcp.service.core import SunoService

log = logging.getLogger(__name__)

Backend = Callable[[Settings], AbstractAsyncContextManager["SunoService"]]


# After a failed start the service is opened again by the first call made once this many seconds
# have passed: 1 s after the first failure, doubling with each failure in a row, at most 30 s.
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0


def retry_delay(failures: int) -> float:
    """Seconds to wait after ``failures`` failed starts in a row before the next try."""
    return min(RETRY_MAX_S, RETRY_FIRST_S * 2.0 ** min(failures - 1, 30))


class LazyService:
    """Opens the backend on first use, in a task the lifespan owns, and keeps it open.

    Opening it (the HTTP client, the ledger, the poller, or the sandbox) takes longer than
    everything else at start-up, and a client that only lists tools never needs it.

    A start that fails (the database is down, the data directory unwritable) is not final: calls
    get its error until :func:`retry_delay` has passed, and the first call after that tries again.
    A service that stops on its own is likewise opened again. ``clock`` (monotonic seconds) is
    what the delay is measured with.
    """

    def __init__(
        self,
        backend: Backend,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        listeners: Sequence[Listener] = (),
    ) -> None:
        self._backend = backend
        self._listeners = listeners  # told the news of every service opened (the notifications)
        self._settings = settings
        self._clock = clock
        self._wanted = anyio.Event()  # set: the runner should open the backend
        self._attempt: anyio.Event | None = None  # the start under way, set when it ends
        self._service: SunoService | None = None
        self._failure: str | None = None
        self._failure_kind = ""  # the failure's type alone: what a health check may show
        self._failures = 0  # failed starts in a row
        self._retry_at = 0.0

    async def run(self) -> None:
        """Open the backend whenever a call asks for it, and hold it open until cancelled."""
        while True:
            await self._wanted.wait()
            self._wanted = anyio.Event()
            try:
                async with self._backend(self._settings) as service:
                    stops = [service.news.follow(listener) for listener in self._listeners]
                    self._service, self._failure, self._failures = service, None, 0
                    self._end_attempt()
                    try:
                        await anyio.sleep_forever()
                    finally:
                        for stop in stops:
                            stop()
            except Exception as err:  # a backend that cannot open must leave the server answering
                # Task groups inside the backend wrap what they raise, so the cause may be nested.
                self._service = None
                self._failure = f"{type(err).__name__}: {err}"
                self._failure_kind = type(err).__name__
                self._failures += 1
                delay = retry_delay(self._failures)
                self._retry_at = self._clock() + delay
                log.exception("could not open the service (next try in %g s)", delay)
                self._end_attempt()

    def _end_attempt(self) -> None:
        attempt, self._attempt = self._attempt, None
        if attempt is not None:
            attempt.set()

    def _begin_attempt(self) -> anyio.Event:
        if self._failure is not None and self._clock() < self._retry_at:
            raise self._open_error()
        self._attempt = anyio.Event()
        self._wanted.set()
        return self._attempt

    def _open_error(self) -> ConfigurationError:
        if self._settings.database_url is not None:
            check = "the PostgreSQL server of SUNO_MCP_DATABASE_URL is reachable"
        else:
            check = f"SUNO_MCP_DATA_DIR ({self._settings.data_dir}) is writable"
        return ConfigurationError(
            f"the server could not open its task ledger or HTTP client ({self._failure}). Check that "
            f"{check}; the server tries again on a call made in {math.ceil(self.retry_in())} s or later."
        )

    def retry_in(self) -> float:
        """Seconds until a call may try to open the service again after a failed start (0: it may now)."""
        return max(0.0, self._retry_at - self._clock()) if self._failure is not None else 0.0

    async def get(self) -> SunoService:
        """The open service, opening it if this is the first call (or the first one after a failed
        start has waited its delay); raises ConfigurationError saying why it cannot be opened."""
        if self._service is None:
            await (self._attempt or self._begin_attempt()).wait()
        if self._service is None:
            raise self._open_error()
        return self._service

    async def why_not_ready(self, limit_s: float) -> str | None:
        """None when the service is open and its ledger answers within ``limit_s`` seconds; otherwise
        why not, in one line naming no path, address, key or tenant (the log has the details).

        A service not open yet is opened, as a call would open it (after a failed start, once the
        delay has passed): a replica that cannot reach its ledger is not ready. Opening goes on when
        the answer is "still opening".
        """
        deadline = anyio.current_time() + limit_s
        service: SunoService | None = None
        with anyio.move_on_after(limit_s):
            try:
                service = await self.get()
            except ConfigurationError:
                return (
                    f"the service could not be opened ({self._failure_kind}); the next try is in "
                    f"{math.ceil(self.retry_in())} s"
                )
        if service is None:
            return "the service is still opening"
        return await service.why_not_ready(max(0.0, deadline - anyio.current_time()))


@dataclass
class AppState:
    """What the lifespan opens: the service every tool uses, opened on first use."""

    services: LazyService


ToolContext = Context[AppState, Any]


def _metrics(settings: Settings) -> AbstractAsyncContextManager[MetricsListener | None]:
    """The metrics listener :func:`~suno_mcp.server.metrics.metrics_listener` serves while the
    server runs, when SUNO_MCP_METRICS_PORT asks for one; otherwise nothing, and its module is
    never imported (the lifespan starts before a stdio session's first answer)."""
    if settings.metrics_port is None:
        return nullcontext()
    from suno_mcp.server.metrics import metrics_listener

    return metrics_listener(settings)


def server_lifespan(
    backend: Backend,
    settings: Settings,
    holder: list[LazyService],
    *,
    clock: Callable[[], float] = time.monotonic,
    listeners: list[MetricsListener] | None = None,
    notices: Notices | None = None,
) -> Callable[[MCPServer[AppState]], AbstractAsyncContextManager[AppState]]:
    """The server's lifespan: a LazyService over ``backend`` (its retry delay measured with
    ``clock``), in ``holder`` while the server runs (static resources get no Context, so they find
    the service there), and the metrics listener when SUNO_MCP_METRICS_PORT asks for one (in
    ``listeners`` while it serves). ``notices`` hears the service's news and sends it on while the
    server runs."""

    @asynccontextmanager
    async def run(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        hear = () if notices is None else (notices.hear,)
        services = LazyService(backend, settings, clock=clock, listeners=hear)
        async with _metrics(settings) as listener:
            if listener is not None and listeners is not None:
                listeners.append(listener)
            holder.append(services)
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(services.run)
                    if notices is not None:
                        tg.start_soon(notices.run)
                    try:
                        yield AppState(services=services)
                    finally:
                        holder.remove(services)
                        tg.cancel_scope.cancel()
            finally:
                if listener is not None and listeners is not None:
                    listeners.remove(listener)

    return run


# Team mode: what a call that reached the server without its caller's key is told.
NO_CALLER_KEY = (
    "This server runs in team mode: every request must bring the caller's own gptproto key as the "
    "HTTP header 'Authorization: Bearer <your gptproto key>'. Add that header to this server's entry "
    "in your MCP client (over streamable HTTP), then call again. Nothing was sent."
)


def acting_for_caller(service: SunoService) -> SunoService:
    """The service acting for the current call's caller (team mode), else the server's own.

    Raises ConfigurationError in team mode when the call brought no key: the shared service has
    none, and must not fall back to anyone's."""
    caller = CURRENT_CALLER.get()
    if caller is not None:
        return service.for_caller(caller)
    if service.settings.team_mode:
        raise ConfigurationError(NO_CALLER_KEY)
    return service


async def tool_service(ctx: ToolContext) -> SunoService:
    """The service for a tool call, acting for its caller in team mode (a ToolError says why not)."""
    try:
        return acting_for_caller(await ctx.request_context.lifespan_context.services.get())
    except ConfigurationError as err:
        raise ToolError(err.message) from err


async def resource_service(holder: list[LazyService]) -> SunoService:
    """The service for a resource read, acting for the reader in team mode (resources get no
    Context: the lifespan fills ``holder``, and SunoServer.read_resource sets the caller)."""
    if not holder:
        raise ResourceError("the server is still starting; try again")
    try:
        return acting_for_caller(await holder[0].get())
    except ConfigurationError as err:
        raise ResourceError(err.message) from err
