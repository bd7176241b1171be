"""Benchmark the long-running path against the vendor's own example loop (a fixed 5 s poll).

Everything runs against the sandbox with its latency model (preview ~30 s, final ~120 s of
model time), sped up by --speed; the fixed loop's 5 s interval is sped up the same way, so
the ratios are those of real time. Prints one table:

- time to first playable audio / the sandbox's preview-ready time (goal <= 1.05)
- upstream requests per completed task, ours / fixed loop (goal <= 1/3)
- upstream fetches while 20 waiters wait on one task / while 1 waits (goal: 1 poller, ~1x)
- resident memory with 1,000 tasks in flight (goal <= 150 MB)

Usage: python bench/poll.py [--speed 10] [--tasks 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

from suno_mcp.models import MusicRequest
from suno_mcp.poller import Timing
from suno_mcp.sandbox.runner import SandboxHandle, run_sandbox
from suno_mcp.sandbox.state import SandboxConfig
from suno_mcp.service import SunoService, open_service
from suno_mcp.settings import load_settings

KEY = "bench-key"
VENDOR_INTERVAL_S = 5.0


def _timing(config: SandboxConfig) -> Timing:
    return Timing(
        preview_s=config.preview_after_s, complete_s=config.complete_after_s, lyrics_s=config.lyrics_after_s
    ).scaled(config.speed)


def _preview_ready(sandbox: SandboxHandle, clip_ids: list[str]) -> float:
    """The clock time at which the first of these clips became playable in the sandbox."""
    speed = sandbox.state.config.speed
    clips = [sandbox.state.clips[c] for c in clip_ids]
    return min(c.submitted_at + c.preview_at_s / speed for c in clips)


async def _ours_to_playable(service: SunoService, sandbox: SandboxHandle, i: int) -> tuple[float, str]:
    request = MusicRequest(gpt_description_prompt=f"bench song {i}", prompt="", mv="chirp-v3-5")
    outcome = await service.submit_music(request, wait_s=service.settings.max_wait)
    playable_at = time.monotonic()
    record = outcome.record
    assert record.task_id is not None, record
    assert record.status.playable, record
    ready = _preview_ready(sandbox, list(record.clip_ids))
    submitted = min(sandbox.state.clips[c].submitted_at for c in record.clip_ids)
    return (playable_at - submitted) / (ready - submitted), record.task_id


async def _ours_to_complete(service: SunoService, task_id: str) -> None:
    with anyio.fail_after(600):
        while True:
            outcome = await service.status(task_id, wait_s=service.settings.max_wait)
            if outcome.record.status.finished:
                return


async def _vendor_loop(
    http: httpx.AsyncClient, sandbox: SandboxHandle, i: int, interval: float
) -> tuple[float, int]:
    """The vendor example: submit, then sleep a fixed interval and fetch until completed."""
    headers = {"Authorization": f"Bearer {KEY}"}
    answer = await http.post(
        f"{sandbox.url}/v1/suno/submit/music",
        json={"gpt_description_prompt": f"vendor song {i}", "mv": "chirp-v3-5"},
        headers=headers,
    )
    task_id = answer.json()["data"]
    requests = 1
    first_playable: float | None = None
    while True:
        await anyio.sleep(interval)
        items = (await http.get(f"{sandbox.url}/v1/suno/fetch/{task_id}", headers=headers)).json()["data"]
        requests += 1
        if first_playable is None and any(item.get("audio_url") for item in items):
            first_playable = time.monotonic()
        if items and all(item["status"] == "completed" for item in items):
            break
    clip_ids = [item["id"] for item in items]
    submitted = min(sandbox.state.clips[c].submitted_at for c in clip_ids)
    ready = _preview_ready(sandbox, clip_ids)
    assert first_playable is not None
    return (first_playable - submitted) / (ready - submitted), requests


async def bench_latency_and_requests(speed: float, tasks: int) -> dict[str, float]:
    config = SandboxConfig(speed=speed, clip_seconds=5.0, seed=3)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with run_sandbox(config) as sandbox:
            # The request-rate cap is real time; the sandbox compresses time by `speed`.
            settings = load_settings(
                environ={},
                api_key=KEY,
                base_url=sandbox.url,
                data_dir=Path(tmp),
                max_requests_per_second=5 * speed,
            )
            before = dict(sandbox.state.stats.requests)
            ratios: list[float] = []
            async with open_service(settings, timing=_timing(config), sandbox=True) as service:

                async def one(i: int) -> None:
                    ratio, task_id = await _ours_to_playable(service, sandbox, i)
                    ratios.append(ratio)
                    await _ours_to_complete(service, task_id)

                async with anyio.create_task_group() as tg:
                    for i in range(tasks):
                        tg.start_soon(one, i)
            after = sandbox.state.stats.requests
            ours_requests = sum(after.values()) - sum(before.values())

            vendor: list[tuple[float, int]] = []
            async with httpx.AsyncClient() as http:

                async def vendor_one(i: int) -> None:
                    vendor.append(await _vendor_loop(http, sandbox, i, VENDOR_INTERVAL_S / speed))

                async with anyio.create_task_group() as tg:
                    for i in range(tasks):
                        tg.start_soon(vendor_one, i)
    results["ours_playable_ratio"] = statistics.median(ratios)
    results["ours_playable_ratio_worst"] = max(ratios)
    results["vendor_playable_ratio"] = statistics.median(r for r, _ in vendor)
    results["ours_requests_per_task"] = ours_requests / tasks
    results["vendor_requests_per_task"] = statistics.mean(n for _, n in vendor)
    return results


async def bench_shared_waiters(speed: float) -> tuple[int, int]:
    """Upstream fetches while 1 waiter, then 20 waiters, follow a task from submit to complete."""
    config = SandboxConfig(speed=speed, clip_seconds=5.0, seed=5)
    counts = []
    for waiters in (1, 20):
        with tempfile.TemporaryDirectory() as tmp:
            async with run_sandbox(config) as sandbox:
                settings = load_settings(environ={}, api_key=KEY, base_url=sandbox.url, data_dir=Path(tmp))
                async with open_service(settings, timing=_timing(config), sandbox=True) as service:
                    request = MusicRequest(gpt_description_prompt="shared", prompt="", mv="chirp-v3-5")
                    outcome = await service.submit_music(request, wait_s=0)
                    task_id = outcome.record.task_id
                    assert task_id is not None
                    async with anyio.create_task_group() as tg:
                        for _ in range(waiters):
                            tg.start_soon(_ours_to_complete, service, task_id)
                counts.append(sandbox.state.stats.requests.get("fetch", 0))
    return counts[0], counts[1]


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def bench_memory(in_flight: int) -> tuple[float, float]:
    """RSS of this process (the sandbox runs in another one) before and with 1,000 tasks in flight."""
    port = 18000 + os.getpid() % 1000
    sandbox = await anyio.open_process(
        [sys.executable, "-m", "suno_mcp", "sandbox", "--port", str(port), "--speed", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient() as probe:
            with anyio.fail_after(20):
                while True:
                    try:
                        await probe.get(f"{url}/_sandbox/stats")
                        break
                    except httpx.TransportError:
                        await anyio.sleep(0.1)
        with tempfile.TemporaryDirectory() as tmp:
            settings = load_settings(
                environ={}, api_key=KEY, base_url=url, data_dir=Path(tmp), max_requests_per_second=200
            )
            baseline = _rss_mb()
            async with open_service(settings) as service:
                limiter = anyio.CapacityLimiter(50)

                async def submit(i: int) -> None:
                    async with limiter:
                        request = MusicRequest(
                            gpt_description_prompt=f"memory {i}", prompt="", mv="chirp-v3-5"
                        )
                        await service.submit_music(request, wait_s=0)

                async with anyio.create_task_group() as tg:
                    for i in range(in_flight):
                        tg.start_soon(submit, i)
                assert service.poller.watching == in_flight
                # Let the poller make its first round over every task (due at ~27 s of real time).
                await anyio.sleep(30)
                loaded = _rss_mb()
        return baseline, loaded
    finally:
        sandbox.terminate()
        with anyio.move_on_after(10):
            await sandbox.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="long-running path benchmark")
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--in-flight", type=int, default=1000)
    args = parser.parse_args()

    latency = anyio.run(bench_latency_and_requests, args.speed, args.tasks)
    one, twenty = anyio.run(bench_shared_waiters, args.speed)
    baseline, loaded = anyio.run(bench_memory, args.in_flight)

    rows = [
        (
            "time to first playable / preview ready (median)",
            f"{latency['ours_playable_ratio']:.3f}",
            f"{latency['vendor_playable_ratio']:.3f}",
            "<= 1.05",
        ),
        (
            "time to first playable / preview ready (worst)",
            f"{latency['ours_playable_ratio_worst']:.3f}",
            "",
            "",
        ),
        (
            "upstream requests per completed task",
            f"{latency['ours_requests_per_task']:.1f}",
            f"{latency['vendor_requests_per_task']:.1f}",
            "ours <= 1/3 of fixed loop",
        ),
        (
            "  ratio ours / fixed loop",
            f"{latency['ours_requests_per_task'] / latency['vendor_requests_per_task']:.2f}",
            "",
            "<= 0.33",
        ),
        ("fetches: 20 waiters / 1 waiter on one task", f"{twenty} / {one} = {twenty / one:.2f}", "", "~1.00"),
        (
            f"RSS with {args.in_flight} tasks in flight (MB)",
            f"{loaded:.0f} (idle {baseline:.0f})",
            "",
            "<= 150",
        ),
    ]
    print(
        f"sandbox speed x{args.speed:g}, {args.tasks} concurrent tasks, fixed loop every {VENDOR_INTERVAL_S:g} s"
    )
    print(f"| {'measure':<50} | {'suno-mcp':<22} | {'fixed 5 s loop':<14} | {'goal':<26} |")
    print(f"|{'-' * 52}|{'-' * 24}|{'-' * 16}|{'-' * 28}|")
    for name, ours, vendor, goal in rows:
        print(f"| {name:<50} | {ours:<22} | {vendor:<14} | {goal:<26} |")


if __name__ == "__main__":
    main()
