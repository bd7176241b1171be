"""Run the sandbox: in-process on the current event loop (tests, ``serve --sandbox``) or blocking.

Uvicorn logs only through the ``uvicorn.*`` loggers at WARNING and up, never to stdout: the MCP
server may be speaking JSON-RPC on stdout in the same process.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import anyio
import anyio.abc
import uvicorn

from suno_mcp.sandbox.app import SandboxApp
from suno_mcp.sandbox.state import Clock, SandboxConfig, SandboxState

DEFAULT_HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 10.0
# Uvicorn's own grace period for in-flight requests, then ours for the whole shutdown.
GRACEFUL_SHUTDOWN_S = 2
SHUTDOWN_TIMEOUT_S = 5.0
# While stopping: how often to look whether the last connection has closed (usually at once).
_CLOSE_POLL_S = 0.001

# Uvicorn reports a response abandoned on purpose (the "drop" fault) as an error; it is not one.
_DROP_MESSAGE = "ASGI callable returned without completing response."


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _DROP_MESSAGE


_QUIET_DROPS = _QuietDrops()


@dataclass(frozen=True)
class SandboxHandle:
    """A running sandbox: its base URL and its state (stats, ``inject``, ``clear_faults``)."""

    url: str
    state: SandboxState


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server run inside another program: it leaves SIGINT/SIGTERM to the host process,
    says when it listens, and stops as soon as :meth:`stop` is called.

    uvicorn itself looks at ``should_exit`` every 0.1 s and then pauses another 0.1 s before it
    waits for open connections: about 0.15 s per stop, which a test suite that opens hundreds of
    sandboxes pays hundreds of times. Here the main loop wakes on :meth:`stop`, and the shutdown
    waits only while connections are open (an idle keep-alive one closes at once, a busy one after
    its response), bounded by the graceful-shutdown time. Started with ``TaskGroup.start``,
    :meth:`serve` returns control once the server listens, instead of being polled for it.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._stop = anyio.Event()
        self._task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED

    async def serve(
        self,
        sockets: list[socket.socket] | None = None,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """uvicorn's ``serve``, reporting to ``task_status`` once it listens."""
        self._task_status = task_status
        await super().serve(sockets)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._task_status.started()

    def stop(self) -> None:
        """Ask the server to shut down now (from its own event loop)."""
        self.should_exit = True
        self._stop.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            # on_tick refreshes the Date header when counter % 10 == 0: once a second, as uvicorn's does.
            counter = (counter + 10) % 864000
            with anyio.move_on_after(1.0):
                await self._stop.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        with anyio.move_on_after(self.config.timeout_graceful_shutdown):
            while self.server_state.connections or self.server_state.tasks:  # noqa: ASYNC110
                await anyio.sleep(_CLOSE_POLL_S)  # uvicorn offers no event for the last one closing
            for server in self.servers:
                await server.wait_closed()
        for task in self.server_state.tasks:
            task.cancel()
        if not self.force_exit:
            await self.lifespan.shutdown()


def bind_socket(host: str = DEFAULT_HOST, port: int = 0) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        if sys.platform != "win32":
            # On Windows SO_REUSEADDR lets another process steal the port; elsewhere it only
            # allows a quick restart on a port still in TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    """The base URL a local client should use for a bound socket."""
    host, port = sock.getsockname()[:2]
    address = ipaddress.ip_address(host)
    if address.is_unspecified:
        # A wildcard bind is reachable through loopback, which is what a local client wants.
        host = "::1" if address.version == 6 else "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _uvicorn_config(app: SandboxApp) -> uvicorn.Config:
    logging.getLogger("uvicorn.error").addFilter(_QUIET_DROPS)
    return uvicorn.Config(
        app.asgi(),
        log_config=None,  # leave the host's logging alone; records go to its stderr handlers
        log_level="warning",
        access_log=False,
        lifespan="off",
        http="h11",
        ws="none",
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


@contextlib.asynccontextmanager
async def run_sandbox(
    config: SandboxConfig | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
    clock: Clock | None = None,
) -> AsyncIterator[SandboxHandle]:
    """Serve a sandbox on the current event loop for the duration of the ``async with``."""
    state = SandboxState(config, clock=clock) if clock is not None else SandboxState(config)
    sock = bind_socket(host, port)
    url = url_of(sock)
    app = SandboxApp(state)
    server = EmbeddedServer(_uvicorn_config(app))
    done = anyio.Event()

    async def serve(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        try:
            await server.serve([sock], task_status=task_status)
        finally:
            done.set()

    try:
        async with anyio.create_task_group() as tg:
            with anyio.fail_after(STARTUP_TIMEOUT_S):
                # Raises if the server stops before it listens.
                await tg.start(serve)
            try:
                yield SandboxHandle(url=url, state=state)
            finally:
                app.close()
                server.stop()
                with anyio.CancelScope(shield=True), anyio.move_on_after(SHUTDOWN_TIMEOUT_S):
                    await done.wait()
                tg.cancel_scope.cancel()
    finally:
        sock.close()


def serve_forever(config: SandboxConfig | None = None, host: str = DEFAULT_HOST, port: int = 8765) -> None:
    """Serve a sandbox until interrupted (Ctrl-C); prints the base URL to stderr."""
    state = SandboxState(config)
    sock = bind_socket(host, port)
    print(f"suno-mcp sandbox listening on {url_of(sock)} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    server = uvicorn.Server(_uvicorn_config(SandboxApp(state)))
    # Uvicorn shuts down gracefully on Ctrl-C and then re-raises the signal.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
