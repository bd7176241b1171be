"""Opening a service: the HTTP client, the ledger, the poll coordinator and the poller, wired once.

The one place that knows which backend goes with which setting (PostgreSQL when
``SUNO_MCP_DATABASE_URL`` is set, else SQLite) and that starts the poller in the service's task
group. Everything it opens is closed on the way out, the ledger last.
"""

from __future__ import annotations

import gc
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
import httpx

from suno_mcp import metrics
from suno_mcp.domain.catalog import Catalog
from suno_mcp.domain.errors import LedgerUnavailableError
from suno_mcp.domain.models import ApiFamily
from suno_mcp.domain.tenancy import KeyRing
from suno_mcp.engine.coordination import LocalCoordinator, PollCoordinator
from suno_mcp.engine.poller import Poller, Timing
from suno_mcp.service.core import SunoService
from suno_mcp.service.journal import Journal
from suno_mcp.service.unrecorded import Backoff
from suno_mcp.settings import Settings
from suno_mcp.store.base import LedgerStore
from suno_mcp.store.metered import MeteredLedger
from suno_mcp.store.sqlite import SqliteLedger
from suno_mcp.upstream.families import ClipApi, MusicApi, TaskApi
from suno_mcp.upstream.retry import RetryPolicy
from suno_mcp.upstream.transport import Upstream

log = logging.getLogger(__name__)


def build_http_client(
    settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The one HTTP client of a server process."""
    timeout = httpx.Timeout(
        connect=settings.connect_timeout, read=settings.read_timeout, write=settings.read_timeout, pool=10.0
    )
    return httpx.AsyncClient(
        timeout=timeout,
        transport=transport,
        headers={"User-Agent": "suno-mcp"},
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
    )


async def _open_ledger(settings: Settings) -> LedgerStore:
    """PostgreSQL when SUNO_MCP_DATABASE_URL is set (replicas share it), else the SQLite file."""
    if settings.database_url is not None:
        from suno_mcp.store.postgres import PostgresLedger  # the optional 'postgres' extra

        return await PostgresLedger.open(settings.database_url.get_secret_value())
    # Opening runs the migrations: off the event loop like every other ledger call.
    return await SqliteLedger.open(settings.ledger_path)


async def _open_coordinator(settings: Settings) -> PollCoordinator:
    """Leases in the shared database when replicas share a PostgreSQL ledger, else the lone process's."""
    if settings.database_url is None:
        return LocalCoordinator()
    from suno_mcp.engine.coordination_pg import PostgresCoordinator  # the optional 'postgres' extra

    replica = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
    return await PostgresCoordinator.open(settings.database_url.get_secret_value(), replica)


async def _open_poller(
    settings: Settings,
    apis: Mapping[ApiFamily, MusicApi],
    timing: Timing | None,
    coordinator: PollCoordinator,
    ledger: LedgerStore,
) -> Poller:
    """The poller, paced as the settings say, knowing the latency the ledger has learned."""
    # A given timing (the sandbox's, scaled to its speed) brings its own stall limit.
    timing = timing or Timing.expecting(
        settings.expected_preview_s, settings.expected_complete_s, stall_s=settings.stall_after_s
    )
    poller = Poller(
        apis,
        timing=timing,
        max_requests_per_second=settings.max_requests_per_second,
        tenant_max_rps=settings.tenant_max_rps,
        coordinator=coordinator,
        tenant_idle_s=settings.tenant_idle_s,
    )
    for api, kind, model, playable_s, complete_s in await ledger.milestones():
        poller.latency.observe_task((api, kind, model), playable_s, complete_s)
    return poller


_heap_frozen = False


def freeze_startup_heap() -> None:
    """Take what start-up built (every module imported, the service's long-lived objects) out of
    the cyclic collector's full passes, once per process.

    A full pass walks every tracked object while holding the loop: with the SDK, pydantic and
    httpx imported that is about 100,000 objects and 120 ms on a 2-core machine, a stall every
    tool call in flight feels (bench/looplag.py). Frozen objects are still freed by reference
    counting; only a cycle among them would outlive its use. ``gc.freeze`` itself only moves a
    list, so calling it costs the loop nothing.
    """
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.freeze()


@asynccontextmanager
async def open_service(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    timing: Timing | None = None,
    retry: RetryPolicy | None = None,
    sandbox: bool = False,
    ledger: LedgerStore | None = None,
    journal_retry: Backoff | None = None,
) -> AsyncIterator[SunoService]:
    """Open the HTTP client, ledger, journal, poll coordinator and poller; close them all on exit.

    ``ledger``: one already open to use instead of the settings' (closed on exit all the same).
    The journal's accepted tasks that a stopped process left are written to the ledger before
    this yields when it answers, else by the service's replay loop (``journal_retry``) once it does.
    """
    key = settings.api_key.get_secret_value() if settings.api_key else None
    # Metered whichever backend it is: every call's latency and unavailability go to the metrics.
    ledger = MeteredLedger(ledger or await _open_ledger(settings))
    coordinator: PollCoordinator | None = None
    journal: Journal | None = None
    try:
        journal = await Journal.open(settings.journal_dir)
        coordinator = await _open_coordinator(settings)  # after the ledger: its migrations make the leases
        # Building the client loads the system's CA certificates into a TLS context: tens of
        # milliseconds of CPU that would stall every other call on the loop, so a worker does it.
        http = await anyio.to_thread.run_sync(build_http_client, settings, transport)
        async with http, anyio.create_task_group() as tg:
            upstream = Upstream(http, base_url=settings.base_url, api_key=key, retry=retry)
            task_api, clip_api = TaskApi(upstream), ClipApi(upstream)
            poller = await _open_poller(
                settings, {"task": task_api, "clip": clip_api}, timing, coordinator, ledger
            )
            service = SunoService(
                settings=settings,
                task_api=task_api,
                clip_api=clip_api,
                ledger=ledger,
                poller=poller,
                http=http,
                catalog=Catalog.with_extra(settings.extra_models),
                sandbox=sandbox,
                task_group=tg,
                # Team mode: callers' keys, in memory only, for the poller to use; an idle one is dropped.
                keys=KeyRing(idle_s=settings.tenant_idle_s),
                journal=journal,
                journal_retry=journal_retry or Backoff(),
            )
            # The service is built around the poller and is its host: it hands over the tenants'
            # keys and keeps what the polls find (PollerHost).
            poller.host = service
            tg.start_soon(poller.run)
            metrics.poller_started(poller)  # its tasks and queue in the gauges while it runs
            if journal.pending:
                try:
                    await service.replay_journal()
                except LedgerUnavailableError as err:
                    log.warning("the journal waits for the ledger: %s", err)
            tg.start_soon(service.keep_journal)
            freeze_startup_heap()
            try:
                yield service
            finally:
                metrics.poller_stopped(poller)
                tg.cancel_scope.cancel()
    finally:
        # Only after every task of the group has stopped: they write to the ledger.
        with anyio.CancelScope(shield=True):
            if coordinator is not None:
                await coordinator.close()
            if journal is not None:
                await journal.close()
            await ledger.close()
