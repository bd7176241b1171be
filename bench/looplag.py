"""Event-loop stalls: the longest time the loop could not run anything, under ledger-heavy load.

A monitor task asks to wake every 5 ms and records how late each wake-up is; a late wake-up is
time the loop spent inside somebody's blocking call (a SQLite commit, a file write). Scenarios:

- soak: the soak harness (500 tasks, 20% faults, a restart), service-level.
- status: 200 concurrent ``get_task_status`` calls through the in-memory MCP client against the
  sandbox, on 20 tasks still in flight.
- status+lock: the same while another process holds the ledger's write lock for 0.3 s at a time,
  as a second server on the same data directory does during its commits.

Usage: python bench/looplag.py [--scenario soak|status|status+lock|all] [--tasks 500]
Goal: the longest stall <= 20 ms in every scenario.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

TICK_S = 0.005


@dataclass
class LagReport:
    """How late the monitor's wake-ups were, in milliseconds."""

    samples: list[float] = field(default_factory=list)

    @property
    def worst_ms(self) -> float:
        return max(self.samples, default=0.0) * 1000

    @property
    def p99_ms(self) -> float:
        if len(self.samples) < 2:
            return self.worst_ms
        return statistics.quantiles(self.samples, n=100, method="inclusive")[98] * 1000


@asynccontextmanager
async def lag_monitor() -> AsyncIterator[LagReport]:
    """Measure event-loop lag for the duration of the block."""
    report = LagReport()

    async def watch() -> None:
        while True:
            before = time.perf_counter()
            await anyio.sleep(TICK_S)
            report.samples.append(max(0.0, time.perf_counter() - before - TICK_S))

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        try:
            yield report
        finally:
            tg.cancel_scope.cancel()


async def soak_scenario(tasks: int) -> LagReport:
    from tests.support.soak import run_soak

    with tempfile.TemporaryDirectory(dir=Path.home()) as tmp:
        async with lag_monitor() as report:
            result = await run_soak(tasks, speed=200.0, fault_rate=0.2, api="task", data_dir=Path(tmp))
        print(f"  soak: {result.submitted} submitted, lost {result.lost}, duplicates {result.duplicates}")
    return report


_LOCK_HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    db.execute("BEGIN IMMEDIATE")
    time.sleep(0.3)
    db.execute("COMMIT")
    time.sleep(0.05)
"""


@asynccontextmanager
async def external_sandbox() -> AsyncIterator[str]:
    """The sandbox in a process of its own, so its work is not counted as ours; yields its URL."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await anyio.open_process(
        [sys.executable, "-m", "suno_mcp", "sandbox", "--port", str(port), "--speed", "1"]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        async with httpx.AsyncClient() as http:
            with anyio.fail_after(30):
                while True:
                    try:
                        await http.get(url + "/_sandbox/stats")
                        break
                    except httpx.TransportError:
                        await anyio.sleep(0.1)
        yield url
    finally:
        process.kill()
        await process.wait()


async def status_scenario(
    *, hold_lock: bool, calls: int = 200, tasks: int = 20, external: bool = False
) -> LagReport:

    from suno_mcp.server.app import build_server
    from suno_mcp.service.backends import SandboxOptions, sandbox_backend, upstream_backend
    from suno_mcp.settings import load_settings

    with tempfile.TemporaryDirectory(dir=Path.home()) as tmp:
        async with AsyncExitStack() as stack:
            if external:
                url = await stack.enter_async_context(external_sandbox())
                settings = load_settings(
                    {}, data_dir=Path(tmp), max_requests_per_second=1000.0, base_url=url, api_key="lag-key"
                )
                server = build_server(settings, upstream_backend)
            else:
                settings = load_settings({}, data_dir=Path(tmp), max_requests_per_second=1000.0)
                # Slow enough that every task is still in flight (so every read fetches and writes).
                server = build_server(settings, sandbox_backend(SandboxOptions(speed=1.0, clip_seconds=2.0)))
            return await _status_calls(server, settings, hold_lock=hold_lock, calls=calls, tasks=tasks)


async def _status_calls(server: Any, settings: Any, *, hold_lock: bool, calls: int, tasks: int) -> LagReport:
    from mcp import Client

    async with Client(server) as client:
        ids = []
        for i in range(tasks):
            result = await client.call_tool(
                "generate_music", {"description": f"lag test song {i}", "wait_seconds": 0}
            )
            ids.append((result.structured_content or {})["task_id"])
        # One read of each task first: building validators and deferred models on first use is
        # start-up work (bench/startup.py measures it), not the steady state measured here.
        for task_id in ids:
            await client.call_tool("get_task_status", {"task_id": task_id})
        holder = None
        if hold_lock:
            holder = await anyio.open_process(
                [sys.executable, "-c", _LOCK_HOLDER, str(settings.ledger_path), "30"]
            )
            await anyio.sleep(0.5)  # let it take the lock for the first time
        try:
            async with lag_monitor() as report:
                limiter = anyio.CapacityLimiter(calls)

                async def one(n: int) -> None:
                    async with limiter:
                        await client.call_tool("get_task_status", {"task_id": ids[n % len(ids)]})

                with anyio.fail_after(120):
                    async with anyio.create_task_group() as tg:
                        for n in range(calls):
                            tg.start_soon(one, n)
                            # Starting 200 tasks in one step is the harness's own stall, not the
                            # server's: hand the loop back between starts.
                            await anyio.lowlevel.checkpoint()
        finally:
            if holder is not None:
                holder.kill()
                await holder.wait()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=["soak", "status", "status+lock", "all"], default="all")
    parser.add_argument(
        "--external-sandbox",
        action="store_true",
        help="run the sandbox in its own process for the status scenarios (its work is then not ours)",
    )
    parser.add_argument("--tasks", type=int, default=500)
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Everything a scenario uses is imported before the first one starts, as a server process has
    # it all imported when its service opens (and takes the start-up heap out of full collections).
    import mcp  # noqa: F401

    import suno_mcp.server.app
    import suno_mcp.service.backends  # noqa: F401
    import tests.support.soak  # noqa: F401

    wanted = ["soak", "status", "status+lock"] if args.scenario == "all" else [args.scenario]
    rows = []
    for name in wanted:
        if name == "soak":
            report = anyio.run(soak_scenario, args.tasks)
        else:
            report = anyio.run(
                lambda hold=(name == "status+lock"): status_scenario(
                    hold_lock=hold, external=args.external_sandbox
                )
            )
        rows.append((name, report))
    print(f"{'scenario':<12} {'samples':>8} {'p99 ms':>8} {'worst ms':>9}  goal <= 20 ms")
    for name, report in rows:
        print(f"{name:<12} {len(report.samples):>8} {report.p99_ms:>8.1f} {report.worst_ms:>9.1f}")


if __name__ == "__main__":
    main()
