"""Cold start over stdio: spawn -> initialize -> tools/list, ``suno-mcp`` against a bare SDK server.

The reference is a hello-world ``MCPServer`` with one tool on the same SDK and interpreter, so the
ratio is what suno-mcp adds on top of the SDK's own start-up. Both are driven with the same raw
JSON-RPC lines over pipes (no client library in the measured path); runs alternate between the
two so drift in the machine's load hits both alike. Goal: median ratio <= 1.05 over 30 runs.

    .venv/bin/python bench/startup.py [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

GOAL = 1.05
RUNS = 30
# The checkout this script belongs to: the console script imports it (not whichever checkout the
# virtualenv's editable install points at), and so does every phase interpreter.
CHECKOUT = Path(__file__).resolve().parents[1]
READ_LIMIT_S = 30.0

HELLO_WORLD = '''\
from mcp.server.mcpserver import MCPServer

server = MCPServer("hello")


@server.tool()
def hello(name: str) -> str:
    """Say hello to someone."""
    return f"hello {name}"


if __name__ == "__main__":
    server.run("stdio")
'''

# Where suno-mcp's start-up time goes, phase by phase, in a fresh interpreter (--phases).
PHASES = """\
import json, time
marks = [time.perf_counter()]
import mcp.server.mcpserver
marks.append(time.perf_counter())
import httpx
marks.append(time.perf_counter())
import suno_mcp.service.backends, suno_mcp.server.app
marks.append(time.perf_counter())
from suno_mcp.settings import load_settings
settings = load_settings()
suno_mcp.server.app.build_server(settings, suno_mcp.service.backends.upstream_backend)
marks.append(time.perf_counter())
import anyio
async def opened():
    async with suno_mcp.service.backends.upstream_backend(settings):
        marks.append(time.perf_counter())
anyio.run(opened)
print(json.dumps([b - a for a, b in zip(marks, marks[1:])]))
"""
PHASE_NAMES = (
    "import the SDK (the bare server pays this too)",
    "import httpx (a stdio session: on the first call)",
    "import suno_mcp's modules",
    "build_server (tools etc. registered on first need)",
    "lifespan: open HTTP client (TLS), ledger, poller",
)

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "0"},
    },
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


def _send(stream: IO[bytes], message: dict[str, Any]) -> None:
    stream.write(json.dumps(message).encode() + b"\n")
    stream.flush()


def _answer(stream: IO[bytes], request_id: int) -> dict[str, Any]:
    # readline() blocks; the process is killed on the way out if it never answers, and the
    # whole run is bounded by the subprocess timeout in one_run().
    while True:
        line = stream.readline()
        if not line:
            raise RuntimeError("the server closed stdout before answering")
        message: dict[str, Any] = json.loads(line)
        if message.get("id") == request_id:
            return message


def _environment(data_dir: Path) -> dict[str, str]:
    """The servers' environment: no key, a fresh data directory, and this checkout first on the
    path (the bare server gets the same path, and imports nothing from it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPTPROTO_", "SUNO_MCP_"))}
    env["SUNO_MCP_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(CHECKOUT), env.get("PYTHONPATH", "")) if p)
    # The warm-up run writes the bytecode an install would have written (the SDK's is there already):
    # without it every measured start would compile our modules from source.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def one_run(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds from spawn to the tools/list answer, and the CPU seconds of the whole process.

    Wall time is what a user waits for; CPU time (user + system, spawn to exit) is far less
    disturbed by other load on the machine, so it shows the same difference with less noise.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        _send(proc.stdin, INITIALIZE)
        _answer(proc.stdout, 1)
        _send(proc.stdin, INITIALIZED)
        _send(proc.stdin, TOOLS_LIST)
        tools = _answer(proc.stdout, 2)["result"]["tools"]
        elapsed = time.perf_counter() - start
        if not tools:
            raise RuntimeError(f"{command[0]} listed no tools")
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=READ_LIMIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=RUNS, help=f"measured runs per server (default {RUNS})")
    parser.add_argument("--phases", action="store_true", help="also break suno-mcp's start-up into phases")
    args = parser.parse_args()

    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="suno-bench-") as tmp:
        hello = Path(tmp) / "hello_server.py"
        hello.write_text(HELLO_WORLD)
        env = _environment(Path(tmp) / "data")
        servers = {
            "bare MCPServer (1 tool)": [sys.executable, str(hello)],
            "suno-mcp": [str(bin_dir / "suno-mcp")],
        }
        wall: dict[str, list[float]] = {name: [] for name in servers}
        cpu: dict[str, list[float]] = {name: [] for name in servers}
        for command in servers.values():  # one warm-up each: bytecode caches, disk cache
            one_run(command, env)
        for _ in range(args.runs):
            for name, command in servers.items():
                elapsed, used = one_run(command, env)
                wall[name].append(elapsed)
                cpu[name].append(used)

    base_name = next(iter(servers))
    base_wall = statistics.median(wall[base_name])
    base_cpu = statistics.median(cpu[base_name])
    print(
        f"cold start over stdio (spawn -> initialize -> tools/list), {args.runs} runs each, python {sys.version.split()[0]}"
    )
    print(f"{'server':<26} {'wall ms':>8} {'min':>6} {'max':>6} {'ratio':>6} {'cpu ms':>8} {'ratio':>6}")
    for name in servers:
        median = statistics.median(wall[name])
        cpu_median = statistics.median(cpu[name])
        print(
            f"{name:<26} {median * 1000:>8.0f} {min(wall[name]) * 1000:>6.0f} {max(wall[name]) * 1000:>6.0f} "
            f"{median / base_wall:>6.2f} {cpu_median * 1000:>8.0f} {cpu_median / base_cpu:>6.2f}"
        )
    ratio = statistics.median(wall["suno-mcp"]) / base_wall
    print(f"goal: wall ratio <= {GOAL:.2f} -> {'met' if ratio <= GOAL else 'NOT met'} ({ratio:.2f})")
    if args.phases:
        print_phases(args.runs)


def print_phases(runs: int) -> None:
    """Median time of each start-up phase of suno-mcp, each run in a fresh interpreter."""
    samples: list[list[float]] = []
    with tempfile.TemporaryDirectory(prefix="suno-bench-") as tmp:
        env = _environment(Path(tmp))
        for _ in range(runs):
            done = subprocess.run(
                [sys.executable, "-c", PHASES],
                capture_output=True,
                text=True,
                env=env,
                check=True,
                timeout=READ_LIMIT_S,
            )
            samples.append(json.loads(done.stdout))
    print(f"\nsuno-mcp start-up by phase, median of {runs} fresh interpreters")
    for index, name in enumerate(PHASE_NAMES):
        print(f"{name:<50} {statistics.median(s[index] for s in samples) * 1000:>6.0f} ms")


if __name__ == "__main__":
    main()
