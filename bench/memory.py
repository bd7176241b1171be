"""Memory under long uptime: a day of a busy team server at high speed; RSS must stay flat.

The service runs in team mode with auto-download on (to a temporary directory) against the sandbox
at ``--speed`` (500: a 2-minute song takes 0.24 s, a day 173 s). Tasks are submitted at a steady
rate by tenants that come and go in waves, so keys and limiters go idle and are dropped
(SUNO_MCP_TENANT_IDLE_S is scaled to the speed, as every time scale of the poller is). Every
``--every`` seconds the process's resident memory (VmRSS of /proc/self/status) is sampled with
what it holds; the table ends with the ratio of the last sample to the first one after warm-up
(the first ``--warmup`` share of the run). Goal: within 10%.

The sandbox runs in a child process: it keeps every task and clip it ever made (it is the vendor's
database), which is not this process's memory to account for. Downloaded files are deleted as the
run goes (disk, not memory). Downloads do not speed up with the sandbox: at 500x a day's songs
finish faster than 3 downloads at a time can fetch them, so the "downloads" column (running and
queued) grows during the run; that backlog is tuples in a queue, which is what the cap is for.

    .venv/bin/python -m bench.memory [--tasks 3000] [--tenants 300] [--speed 500] [--hours 24]
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
from pydantic import SecretStr

from suno_mcp.domain.errors import SunoError
from suno_mcp.domain.models import MusicRequest
from suno_mcp.domain.tenancy import Caller, tenant_id
from suno_mcp.engine.poller import Timing
from suno_mcp.sandbox.state import SandboxConfig
from suno_mcp.service.core import SunoService
from suno_mcp.service.wiring import open_service
from suno_mcp.settings import TENANT_IDLE_S, load_settings

SECRET = SecretStr("bench-memory-secret-0123456789ab")
CLIP_SECONDS = 1.0  # short synthesized clips: the downloads are real, their size does not matter here
STARTED_LIMIT_S = 20.0
GOAL = 1.10


def rss_mb() -> float:
    """This process's resident memory in MiB (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


@dataclass
class Sample:
    seconds: float
    model_hours: float
    submitted: int
    failed: int
    following: int
    keys: int
    limiters: int
    downloads: int
    rss_mb: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _sandbox_child(port: int, speed: float) -> None:
    from suno_mcp.sandbox.runner import serve_forever

    serve_forever(SandboxConfig(speed=speed, clip_seconds=CLIP_SECONDS), host="127.0.0.1", port=port)


def _start_sandbox(speed: float) -> tuple[str, subprocess.Popen[bytes]]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.memory", "--sandbox-child", str(port), "--speed", str(speed)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTED_LIMIT_S
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/_sandbox/stats", timeout=1.0)
            return url, proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the sandbox did not start")


def _delete_saved(audio: Path) -> None:
    """Delete the saved audio files (not the part files being written, nor the directories)."""
    for path in audio.rglob("*.wav"):
        if not path.name.startswith(".part-"):
            path.unlink(missing_ok=True)


def _held(service: SunoService) -> tuple[int, int, int]:
    """Keys, tenant limiters and auto-downloads (running + queued) held now."""
    queue = service._auto_downloads
    downloads = 0 if queue is None else queue.running + queue.waiting
    return len(service.keys), service.poller._limiters.tenants, downloads


async def run(args: argparse.Namespace) -> list[Sample]:
    """Submit ``args.tasks`` songs over the run, sampling memory; returns the samples."""
    duration = args.hours * 3600 / args.speed
    interval = duration / args.tasks
    url, sandbox = _start_sandbox(args.speed)
    samples: list[Sample] = []
    failed = 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = SandboxConfig(speed=args.speed, clip_seconds=CLIP_SECONDS)
            timing = Timing(
                preview_s=config.preview_after_s,
                complete_s=config.complete_after_s,
                lyrics_s=config.lyrics_after_s,
            ).scaled(args.speed)
            settings = load_settings(
                environ={},
                base_url=url,
                data_dir=Path(tmp),
                keys="per-request",
                tenant_secret=SECRET.get_secret_value(),
                auto_download=True,
                max_requests_per_second=2000.0,
                tenant_max_rps=200.0,
                tenant_idle_s=TENANT_IDLE_S / args.speed,
                read_timeout=10.0,
            )
            audio = settings.audio_dir
            async with open_service(settings, timing=timing, sandbox=True) as service:
                started = time.monotonic()
                submitted = 0

                async def submit(n: int) -> None:
                    nonlocal failed
                    # Tenants come in waves: a few dozen at a time, each wave replacing the last.
                    wave = n * args.tenants // args.tasks
                    key = f"gp-bench-{(wave + n % 40) % args.tenants}"
                    caller = Caller(tenant=tenant_id(SECRET, key), key=SecretStr(key))
                    request = MusicRequest(gpt_description_prompt=f"memory bench song {n}", mv="chirp-v3-5")
                    try:
                        await service.for_caller(caller).submit_music(request, wait_s=0)
                    except SunoError:
                        failed += 1

                def sample() -> None:
                    gc.collect()
                    keys, limiters, downloads = _held(service)
                    elapsed = time.monotonic() - started
                    samples.append(
                        Sample(
                            seconds=round(elapsed, 1),
                            model_hours=round(elapsed * args.speed / 3600, 1),
                            submitted=submitted,
                            failed=failed,
                            following=service.poller.watching,
                            keys=keys,
                            limiters=limiters,
                            downloads=downloads,
                            rss_mb=round(rss_mb(), 1),
                        )
                    )
                    print(_row(samples[-1]), flush=True)

                print(_header(), flush=True)
                next_sample = started
                async with anyio.create_task_group() as tg:
                    for n in range(args.tasks):
                        due = started + n * interval
                        now = time.monotonic()
                        if now >= next_sample:
                            sample()
                            next_sample += args.every
                            # Disk, not memory: the files are not what this run measures.
                            await anyio.to_thread.run_sync(_delete_saved, audio)
                        if due > now:
                            await anyio.sleep(due - now)  # pacing the load, not waiting for a result
                        tg.start_soon(submit, n)
                        submitted += 1
                # A quiet model hour after the last submit: tasks finish, downloads run, idle tenants go.
                await anyio.sleep(3600 / args.speed)
                sample()
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    return samples


def _header() -> str:
    return (
        f"{'seconds':>8} {'model h':>8} {'submitted':>9} {'failed':>6} {'following':>9} "
        f"{'keys':>5} {'limiters':>8} {'downloads':>9} {'RSS MiB':>8}"
    )


def _row(s: Sample) -> str:
    return (
        f"{s.seconds:>8} {s.model_hours:>8} {s.submitted:>9} {s.failed:>6} {s.following:>9} "
        f"{s.keys:>5} {s.limiters:>8} {s.downloads:>9} {s.rss_mb:>8}"
    )


def main() -> None:
    """Run the day and print the table; exit non-zero when RSS grew past the goal after warm-up."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--tenants", type=int, default=300)
    parser.add_argument("--speed", type=float, default=500.0)
    parser.add_argument("--hours", type=float, default=24.0, help="model hours to run")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=0.25, help="share of the run that is warm-up")
    parser.add_argument("--sandbox-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sandbox_child is not None:
        _sandbox_child(args.sandbox_child, args.speed)
        return
    os.environ.pop("GPTPROTO_API_KEY", None)
    samples = anyio.run(run, args)
    duration = args.hours * 3600 / args.speed
    warm = next((s for s in samples if s.seconds >= args.warmup * duration), samples[-1])
    end = samples[-1]
    ratio = end.rss_mb / warm.rss_mb if warm.rss_mb else math.nan
    print(
        f"\nRSS after warm-up ({warm.model_hours} model h): {warm.rss_mb} MiB; at the end "
        f"({end.model_hours} model h): {end.rss_mb} MiB; end/warm-up = {ratio:.3f} (goal <= {GOAL})"
    )
    sys.exit(0 if ratio <= GOAL else 1)


if __name__ == "__main__":
    main()
