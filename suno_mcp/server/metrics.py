"""The operators' metrics listener: Prometheus text on a port of its own (``SUNO_MCP_METRICS_PORT``).

A separate listener, not a path of the MCP app: it works the same over stdio and HTTP, a scrape
never takes a call slot or passes the MCP door (no key is needed to read it, and none is in it),
and it binds to loopback unless ``SUNO_MCP_METRICS_HOST`` says otherwise. prometheus_client's own
server runs it in a thread of its own; the event loop never serves a scrape.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio.to_thread

from suno_mcp.domain.errors import ConfigurationError
from suno_mcp.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricsListener:
    """Where the metrics are served."""

    host: str
    port: int

    @property
    def url(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}/metrics"


@asynccontextmanager
async def metrics_listener(settings: Settings) -> AsyncIterator[MetricsListener | None]:
    """Serve :data:`suno_mcp.metrics.REGISTRY` while the block runs, if ``settings.metrics_port`` is
    set (0: any free port; the yielded listener says which); yields None when metrics are off."""
    if settings.metrics_port is None:
        yield None
        return
    # Imported only when asked for: prometheus_client's exposition (a WSGI server) stays out of start-up.
    from prometheus_client import start_http_server

    from suno_mcp.metrics import REGISTRY

    host = settings.metrics_host
    try:
        httpd, thread = start_http_server(settings.metrics_port, addr=host, registry=REGISTRY)
    except OSError as err:
        raise ConfigurationError(
            f"could not serve metrics on {host}:{settings.metrics_port} ({err.strerror or err}): choose "
            "another SUNO_MCP_METRICS_PORT (or unset it to turn metrics off)"
        ) from err
    listener = MetricsListener(host=host, port=httpd.server_port)
    log.info("serving metrics on %s", listener.url)
    try:
        yield listener
    finally:
        # shutdown() waits for the serving loop to notice (up to its half-second poll): off the loop.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(httpd.shutdown)
            httpd.server_close()
            await anyio.to_thread.run_sync(thread.join)
