"""Load over streamable HTTP: many MCP sessions reading task status against a rate-limited upstream.

The deployment shape is the real one, every part a process of its own on loopback: the sandbox
(``suno-mcp sandbox --rate-limit R``), our server (``suno-mcp serve --transport http``, pointed at
the sandbox through GPTPROTO_BASE_URL, so the real HTTP client path, not ``--sandbox``), and this
process running N sessions with the SDK's streamable HTTP client. Each session makes one
``generate_music(wait_seconds=0)`` then ``--reads`` ``get_task_status(wait_seconds=0)`` reads spaced
``--spacing`` seconds apart. A submit refused for a rate limit is sent again after a pause
(counted), as an assistant told "try again in about 1 s" would. Run from the repository root, as a module so the root is importable:

    .venv/bin/python -m bench.load [--sessions 200] [--reads 20] [--spacing 0.5] [--speed 10]
                                   [--rate-limit 20] [--max-rps N]

Prints the read latency (p50/p99/max; goal p99 <= 1 s), how many tool results mention a 429 or a
rate limit (goal 0), and the sandbox's own view: API requests per second against its limit and
the 429s it answered.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client
from mcp_types import CallToolResult

from suno_mcp.engine.poller import FRESH_S
from tests.support.processes import http_server_process, log_file, sandbox_process
from tests.support.stdio_session import server_env

RUN_LIMIT_S = 300.0  # the whole measured run, sessions and all
CALL_LIMIT_S = 60.0  # one tool call
SAMPLE_EVERY_S = 1.0
SUBMIT_ATTEMPTS = 5  # a rate-limited submit is sent again, after 1 s, 2 s, ...
SUBMIT_RETRY_S = 1.0
PLAYABLE = ("streaming", "complete")
# "429" standing alone (not inside an id, a number or a URL), or the words.
RATE_PATTERN = re.compile(r"(?<![\w.\-/])429(?![\w.\-])|rate[ -]limit|too many requests", re.IGNORECASE)
API_ENDPOINTS = ("submit_music", "submit_lyrics", "fetch", "generate", "feed", "concat", "upload")


@dataclass
class Results:
    submit_s: list[float] = field(default_factory=list)
    read_s: list[float] = field(default_factory=list)
    rate_mentions: Counter[str] = field(default_factory=Counter)  # tool name -> results
    mention_examples: dict[str, str] = field(default_factory=dict)  # tool name -> one such text
    errors: Counter[str] = field(default_factory=Counter)  # short error text -> count
    final_status: Counter[str] = field(default_factory=Counter)
    sessions_done: int = 0
    submit_retries: int = 0
    seen: dict[str, list[tuple[float, str]]] = field(default_factory=dict)  # task -> (wall, status)
    lag_s: list[float] = field(default_factory=list)  # upstream playable -> first read saying so
    missed_playable: int = 0  # playable upstream before the last read, never shown playable
    cpu: dict[str, float | None] = field(default_factory=dict)  # process -> CPU seconds of the run
    sessions_failed: int = 0


def result_text(result: CallToolResult) -> str:
    parts = [getattr(block, "text", "") for block in result.content]
    if result.structured_content is not None:
        parts.append(repr(result.structured_content))
    return " ".join(parts)


def mentions_rate_limit(text: str) -> bool:
    return RATE_PATTERN.search(text) is not None


def note(results: Results, tool: str, result: CallToolResult) -> None:
    text = result_text(result)
    if mentions_rate_limit(text):
        results.rate_mentions[tool] += 1
        results.mention_examples.setdefault(tool, text[:400])
    if result.is_error:
        results.errors[f"{tool}: {text[:90]}"] += 1


async def session(n: int, url: str, args: argparse.Namespace, results: Results) -> None:
    try:
        async with Client(url) as client:
            for attempt in range(1, SUBMIT_ATTEMPTS + 1):
                began = time.perf_counter()
                with anyio.fail_after(CALL_LIMIT_S):
                    submitted = await client.call_tool(
                        "generate_music", {"description": f"a load test song number {n}", "wait_seconds": 0}
                    )
                results.submit_s.append(time.perf_counter() - began)
                note(results, "generate_music", submitted)
                if not (submitted.is_error and mentions_rate_limit(result_text(submitted))):
                    break
                # What an assistant told "try again in about 1 s" would do, so the reads still happen.
                results.submit_retries += 1
                await anyio.sleep(attempt * SUBMIT_RETRY_S)
            content = submitted.structured_content or {}
            task_id = content.get("task_id")
            if submitted.is_error or not task_id:
                results.sessions_failed += 1
                return
            status = content.get("status", "?")
            start = time.perf_counter()
            for k in range(args.reads):
                await anyio.sleep(max(0.0, start + k * args.spacing - time.perf_counter()))
                began = time.perf_counter()
                with anyio.fail_after(CALL_LIMIT_S):
                    read = await client.call_tool("get_task_status", {"task_id": task_id, "wait_seconds": 0})
                results.read_s.append(time.perf_counter() - began)
                note(results, "get_task_status", read)
                status = (read.structured_content or {}).get("status", status)
                results.seen.setdefault(task_id, []).append((time.time(), str(status)))
            results.final_status[str(status)] += 1
            results.sessions_done += 1
    except Exception as err:  # one broken session is a result to report, not the end of the run
        results.sessions_failed += 1
        results.errors[f"session: {type(err).__name__}: {str(err)[:80]}"] += 1


async def playable_lags(admin: httpx.AsyncClient, results: Results) -> None:
    """How long after the upstream made a task playable a read first said so (the timelines)."""
    for task_id, reads in results.seen.items():
        timeline = (await admin.get(f"/_sandbox/tasks/{task_id}/timeline")).json()
        playable = timeline.get("first_playable")
        if not playable or playable["wall"] > reads[-1][0] - FRESH_S:
            # Not playable upstream while this session read, or only within the freshness
            # window before its last read, which may rightly answer from an earlier fetch.
            continue
        shown = [wall for wall, status in reads if status in PLAYABLE]
        if shown:
            results.lag_s.append(max(0.0, shown[0] - playable["wall"]))
        else:
            results.missed_playable += 1


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def api_counts(stats: dict[str, Any]) -> tuple[int, int]:
    requests = sum(n for name, n in stats["requests"].items() if name in API_ENDPOINTS)
    limited = sum(n for name, n in stats["rate_limited"].items() if name in API_ENDPOINTS)
    return requests, limited


async def sample_stats(admin: httpx.AsyncClient, samples: list[tuple[float, int, int]]) -> None:
    while True:
        stats = (await admin.get("/_sandbox/stats")).json()
        samples.append((time.perf_counter(), *api_counts(stats)))
        await anyio.sleep(SAMPLE_EVERY_S)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def row(name: str, value: str, goal: str = "") -> str:
    return f"| {name:<44} | {value:>22} | {goal:<12} |"


def report(
    args: argparse.Namespace, results: Results, samples: list[tuple[float, int, int]], wall: float
) -> None:
    per_second: list[tuple[float, float]] = []  # (offered, refused) per second between samples
    for (t0, r0, l0), (t1, r1, l1) in itertools.pairwise(samples):
        span = t1 - t0
        per_second.append(((r1 - r0) / span, (l1 - l0) / span))
    total_requests, total_limited = samples[-1][1], samples[-1][2]
    admitted = [offered - refused for offered, refused in per_second]
    within = sum(1 for offered, _ in per_second if offered <= args.rate_limit * 1.05)
    print()
    print(
        f"{args.sessions} sessions x (1 generate + {args.reads} reads every {args.spacing} s); sandbox speed "
        f"{args.speed}, its limit {args.rate_limit} req/s; server ceiling "
        f"{args.max_rps if args.max_rps is not None else 'default'}; wall {wall:.1f} s"
    )
    print(row("measure", "value", "goal"))
    print(row("-" * 44, "-" * 22, "-" * 12))
    reads = results.read_s
    if reads:
        print(row("get_task_status(wait 0) reads", str(len(reads))))
        print(row("  read latency p50 (s)", f"{statistics.median(reads):.3f}"))
        print(row("  read latency p99 (s)", f"{quantile(reads, 0.99):.3f}", "<= 1.0"))
        print(row("  read latency max (s)", f"{max(reads):.3f}"))
    if results.submit_s:
        print(
            row(
                "generate_music(wait 0) latency p50 / max (s)",
                f"{statistics.median(results.submit_s):.3f} / {max(results.submit_s):.3f}",
            )
        )
    print(row("generate_music sent again after a rate limit", str(results.submit_retries)))
    for tool in ("generate_music", "get_task_status"):
        print(row(f"results mentioning 429/rate limit: {tool}", str(results.rate_mentions[tool]), "0"))
    if results.lag_s:
        print(
            row(
                "playable upstream -> a read says so, p50/max (s)",
                f"{statistics.median(results.lag_s):.2f} / {max(results.lag_s):.2f}",
            )
        )
    print(row(f"playable upstream > {FRESH_S:g} s, never shown so", str(results.missed_playable), "0"))
    print(row("sessions done / failed", f"{results.sessions_done} / {results.sessions_failed}"))
    print(
        row(
            "final status seen by the sessions",
            ", ".join(f"{k} {v}" for k, v in sorted(results.final_status.items())),
        )
    )
    print(row("sandbox API requests (all)", str(total_requests)))
    print(row("sandbox 429s of its own limit", str(total_limited)))
    if per_second:
        print(
            row(
                "sandbox API requests/s mean / peak",
                f"{statistics.mean(o for o, _ in per_second):.1f} / {max(o for o, _ in per_second):.1f}",
                f"<= {args.rate_limit:g}",
            )
        )
        print(row("sandbox admitted requests/s peak", f"{max(admitted):.1f}"))
        print(row("1-s intervals within the limit", f"{within} of {len(per_second)}"))
    for name, seconds in results.cpu.items():
        if seconds is not None:
            print(row(f"CPU of {name} (s; share of wall)", f"{seconds:.1f}; {seconds / wall:.0%}"))
    for tool, text in results.mention_examples.items():
        print(f"\na {tool} result mentioning a rate limit: {text}")
    if results.errors:
        print("\nerrors (count: tool: text):")
        for text, count in results.errors.most_common(8):
            print(f"  {count:5d}: {text}")


async def run(args: argparse.Namespace, tmp: Path) -> None:
    sandbox_args = [
        "--speed",
        str(args.speed),
        "--rate-limit",
        str(args.rate_limit),
        "--profile",
        args.profile,
    ]
    extra = {"SUNO_MCP_MAX_RPS": str(args.max_rps)} if args.max_rps is not None else {}
    # Each session keeps a GET stream open and sends its calls as POSTs: the door's caps must
    # fit the load, or the benchmark measures the door instead of the waiting.
    calls = args.door if args.door is not None else 2 * args.sessions
    extra.update({"SUNO_MCP_HTTP_MAX_CALLS": str(calls), "SUNO_MCP_HTTP_MAX_CONNECTIONS": str(4 * calls)})
    with (
        log_file(tmp, "sandbox.log") as sandbox_log,
        log_file(tmp, "server.log") as server_log,
        sandbox_process(*sandbox_args, env=server_env(tmp / "sandbox"), log=sandbox_log) as (
            sandbox_url,
            sandbox,
        ),
    ):
        env = server_env(tmp / "data", GPTPROTO_API_KEY="bench-key", GPTPROTO_BASE_URL=sandbox_url, **extra)
        with http_server_process(env, log=server_log) as (mcp_url, server):
            results = Results()
            samples: list[tuple[float, int, int]] = []
            began = time.perf_counter()
            # CPU is counted from here: start-up (imports, first connections) is not load.
            before = {"our server": cpu_seconds(server.pid), "sandbox": cpu_seconds(sandbox.pid)}
            start_usage = resource.getrusage(resource.RUSAGE_SELF)
            async with httpx.AsyncClient(base_url=sandbox_url) as admin:
                with anyio.fail_after(RUN_LIMIT_S):
                    async with anyio.create_task_group() as sampler:
                        sampler.start_soon(sample_stats, admin, samples)
                        async with anyio.create_task_group() as sessions:
                            for n in range(args.sessions):
                                sessions.start_soon(session, n, mcp_url, args, results)
                        sampler.cancel_scope.cancel()
                stats = (await admin.get("/_sandbox/stats")).json()
                samples.append((time.perf_counter(), *api_counts(stats)))
                await playable_lags(admin, results)
            wall = time.perf_counter() - began
            usage = resource.getrusage(resource.RUSAGE_SELF)
            for name, proc in (("our server", server), ("sandbox", sandbox)):
                now, then = cpu_seconds(proc.pid), before[name]
                results.cpu[name] = None if now is None or then is None else now - then
            results.cpu["the client sessions"] = (
                usage.ru_utime + usage.ru_stime - start_usage.ru_utime - start_usage.ru_stime
            )
    report(args, results, samples, wall)
    if results.sessions_failed:
        print(
            f"\n(server log tail)\n{(tmp / 'server.log').read_text(errors='replace')[-1500:]}",
            file=sys.stderr,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--reads", type=int, default=20)
    parser.add_argument("--spacing", type=float, default=0.5)
    parser.add_argument(
        "--speed", type=float, default=10.0, help="sandbox time factor (10: final after ~12 s)"
    )
    parser.add_argument("--rate-limit", type=float, default=20.0, help="the sandbox's own limit, req/s")
    parser.add_argument("--profile", default="steady")
    parser.add_argument("--max-rps", type=float, default=None, help="SUNO_MCP_MAX_RPS for our server")
    parser.add_argument(
        "--door",
        type=int,
        default=None,
        help="SUNO_MCP_HTTP_MAX_CALLS for our server, and four times it as SUNO_MCP_HTTP_MAX_CONNECTIONS "
        "(default: sized for --sessions, as a team sizes its server for its users)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        anyio.run(run, args, Path(tmp))


if __name__ == "__main__":
    main()
