"""Per-call overhead of ``get_task_status`` against a bare SDK tool doing one HTTP request.

Both servers run in this process behind the SDK's in-memory ``Client(server)``, and both reach
the same instant upstream: an ``httpx.MockTransport`` that answers a task-API fetch at once. The
bare tool is what a minimal server would do: one ``httpx`` GET, the JSON back. suno-mcp is
measured twice:

- a task still streaming, so every call really fetches it upstream once (the rate limit, which
  exists to protect the vendor, is lifted so it does not space the calls out);
- a task already complete, which the ledger answers with no upstream request at all.

Rounds alternate between the three so drift in the machine's load hits all alike.
Goal: suno-mcp's streaming-task call <= 1.25x the bare call.

    .venv/bin/python bench/overhead.py [--calls 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult

from suno_mcp.server.app import build_server
from suno_mcp.service.core import SunoService
from suno_mcp.service.wiring import open_service
from suno_mcp.settings import Settings, load_settings

GOAL = 1.25
BASE_URL = "https://upstream.test"
STREAMING_TASK = "bench-streaming"
BASE_CASE = "bare SDK tool + 1 httpx GET"
STREAMING_CASE = "suno-mcp, streaming task"
COMPLETE_TASK = "bench-complete"


class InstantUpstream:
    """Answers ``GET /v1/suno/fetch/{id}`` at once: one task streaming, one complete; counts requests."""

    def __init__(self) -> None:
        self.requests = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        task_id = request.url.path.rsplit("/", 1)[-1]
        items = []
        for n in (1, 2):
            clip: dict[str, Any] = {"id": f"{task_id}-clip{n}", "title": "Bench", "model_name": "chirp-v3-5"}
            if task_id == COMPLETE_TASK:
                clip.update(status="complete", audio_url=f"https://cdn.test/{task_id}-{n}.mp3", duration=60.0)
            else:  # the task API says "processing" while a preview already streams
                clip.update(status="processing", audio_url=f"https://cdn.test/{task_id}-{n}-preview.mp3")
            items.append(clip)
        return httpx.Response(200, json={"code": "success", "data": items})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


def bare_server(upstream: InstantUpstream, http: httpx.AsyncClient) -> MCPServer:
    server = MCPServer("bare")

    @server.tool()
    async def get_task_status(task_id: str) -> dict[str, Any]:
        """Fetch a task from the upstream."""
        response = await http.get(f"/v1/suno/fetch/{task_id}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    return server


def suno_settings(data_dir: Path) -> Settings:
    # The default budget of 5 upstream requests a second would space the calls 200 ms apart.
    # The poll schedule keeps its defaults: a call with wait_seconds=0 fetches at once anyway,
    # and the background polls it schedules stay seconds apart.
    return load_settings(
        environ={}, api_key="bench-key", base_url=BASE_URL, data_dir=data_dir, max_requests_per_second=1e9
    )


def suno_backend(upstream: InstantUpstream) -> Callable[[Settings], Any]:
    @asynccontextmanager
    async def backend(settings: Settings) -> AsyncIterator[SunoService]:
        async with open_service(settings, transport=upstream.transport()) as service:
            yield service

    return backend


async def timed(call: Callable[[], Awaitable[object]], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return samples


async def main(calls: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="suno-bench-") as tmp:
        bare_upstream, suno_upstream = InstantUpstream(), InstantUpstream()
        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(
                httpx.AsyncClient(transport=bare_upstream.transport(), base_url=BASE_URL)
            )
            bare = await stack.enter_async_context(Client(bare_server(bare_upstream, http)))
            suno = await stack.enter_async_context(
                Client(build_server(suno_settings(Path(tmp)), suno_backend(suno_upstream)))
            )
            # As the CLI does: httpx logs every request at INFO.
            logging.getLogger("httpx").setLevel(logging.WARNING)

            async def bare_call() -> CallToolResult:
                result = await bare.call_tool("get_task_status", {"task_id": STREAMING_TASK})
                assert not result.is_error
                return result

            async def suno_call(task_id: str) -> Callable[[], Awaitable[CallToolResult]]:
                async def call() -> CallToolResult:
                    result = await suno.call_tool("get_task_status", {"task_id": task_id})
                    assert not result.is_error, result.content
                    assert result.structured_content is not None
                    return result

                await call()  # the first call adopts the task into the ledger
                return call

            cases: dict[str, tuple[Client, Callable[[], Awaitable[CallToolResult]]]] = {
                BASE_CASE: (bare, bare_call),
                STREAMING_CASE: (suno, await suno_call(STREAMING_TASK)),
                "suno-mcp, complete task": (suno, await suno_call(COMPLETE_TASK)),
            }
            samples: dict[str, list[float]] = {name: [] for name in cases}
            checks: dict[str, float] = {}
            requests: dict[str, int] = dict.fromkeys(cases, 0)
            for _, call in cases.values():  # warm-up: caches, first-call schema work
                await timed(call, 50)
            per_round = max(1, calls // rounds)
            for _ in range(rounds):
                for name, (_, call) in cases.items():
                    upstream = bare_upstream if name == BASE_CASE else suno_upstream
                    before = upstream.requests
                    samples[name] += await timed(call, per_round)
                    requests[name] += upstream.requests - before
            # What the SDK client adds after the answer arrives: it checks the structured result
            # against the tool's output schema (jsonschema). That cost grows with the schema, and
            # it is the client's, not the server's; it is measured alone so it can be told apart.
            for name, (client, call) in cases.items():
                result = await call()

                async def check(client: Client = client, result: CallToolResult = result) -> None:
                    await client.session.validate_tool_result("get_task_status", result)

                checks[name] = statistics.median(await timed(check, 500))

    base = statistics.median(samples[BASE_CASE])
    base_server = base - checks[BASE_CASE]
    print(
        f"get_task_status through the in-memory Client, {per_round * rounds} calls each in {rounds} rounds, "
        f"python {sys.version.split()[0]}"
    )
    print(
        f"{'case':<30} {'median us':>10} {'p90 us':>7} {'req/call':>9} {'ratio':>6}"
        f" {'client check us':>16} {'median - check':>15} {'ratio':>6}"
    )
    for name, times in samples.items():
        median = statistics.median(times)
        p90 = statistics.quantiles(times, n=10)[-1]
        rest = median - checks[name]
        print(
            f"{name:<30} {median * 1e6:>10.0f} {p90 * 1e6:>7.0f} {requests[name] / len(times):>9.2f}"
            f" {median / base:>6.2f} {checks[name] * 1e6:>16.0f} {rest * 1e6:>15.0f} {rest / base_server:>6.2f}"
        )
    ratio = statistics.median(samples[STREAMING_CASE]) / base
    print(
        f"goal: streaming-task ratio <= {GOAL:.2f} -> {'met' if ratio <= GOAL else 'NOT met'} ({ratio:.2f})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000, help="measured calls per case (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    args = parser.parse_args()
    anyio.run(main, args.calls, args.rounds)
