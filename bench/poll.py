"""Benchmark the long-running path over every sandbox latency profile, against a fixed 5 s loop.

The service runs at its default schedule and is never told the profile: like the sandbox
backend (suno_mcp/service/backends.py) it only gets the sandbox's speed, through ``Timing.scaled``.
A client drives it the way a model would: ``submit_music(wait_s=W)``, then
``status(task_id, wait_s=W)`` until the task is complete, W being ~50 s of model time.
Next to it runs the vendor's example loop (sleep 5 s, fetch, repeat) at the same speed,
straight over HTTP.

The sandbox knows when each task really became playable and complete (``state.timeline``), so
the latency figures are exact: model seconds from the submit until the client saw playable audio
(or the finished task), over the upstream's own time for that milestone. Per profile, one fresh data directory:

- cold: the first 5 tasks, run together, nothing learned yet
- warm: after 20 tasks have finished (the 5 cold ones and 15 more), 10 more run together
- fixed: 30 tasks through the fixed loop at once, on a sandbox of its own with the same
  profile and seed. The sandbox draws each task's latency in submit order from its seed, so
  the fixed loop's 1st-5th tasks are the cold tasks' draws and its 21st-30th the warm ones':
  each phase is compared with the fixed loop on the same tasks.

plus upstream fetch requests (``fetch``/``feed`` in the sandbox's stats) per completed task,
and the sharing check: 20 waiters following one task cost the fetches of 1.

Usage: python bench/poll.py [--speed 30] [--profiles steady,fast,...] [--in-flight 0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx

from suno_mcp.domain.models import MusicRequest, Status
from suno_mcp.engine.poller import Timing
from suno_mcp.sandbox.runner import SandboxHandle, run_sandbox
from suno_mcp.sandbox.state import SandboxConfig
from suno_mcp.service.core import SunoService
from suno_mcp.service.wiring import open_service
from suno_mcp.settings import load_settings

KEY = "bench-key"
PROFILES = ("steady", "fast", "typical", "slow", "heavy-tail", "bimodal")
VENDOR_INTERVAL_S = 5.0  # model seconds
CLIENT_WAIT_S = 50.0  # model seconds a client asks each call to wait, at most
DEFAULT_RPS = 10.0  # the settings' default request ceiling, in model time
COLD_TASKS, WARMUP_TASKS, WARM_TASKS = 5, 20, 10
FIXED_TASKS = WARMUP_TASKS + WARM_TASKS
# A task that is not complete after this much model time counts as a broken run.
TASK_LIMIT_S = 1200.0
# The goals, in the brief's terms.
COLD_FACTOR, COLD_SLACK_S = 1.15, 1.0
# Issue 25's goal for warm tasks, playable and complete alike.
WARM_MEDIAN, WARM_P95 = 1.05, 1.10
FETCH_ENDPOINTS = ("fetch", "feed")


@dataclass(frozen=True)
class Sample:
    """One task: when the client saw it playable and when it really was (model s after submit),
    and the same for complete."""

    seen_s: float
    true_s: float
    seen_complete_s: float
    true_complete_s: float

    @property
    def ratio(self) -> float:
        return self.seen_s / self.true_s

    @property
    def complete_ratio(self) -> float:
        return self.seen_complete_s / self.true_complete_s

    @property
    def slack_ratio(self) -> float:
        """The ratio once the goal's 1 s allowance is taken off (<= 1.15 meets the cold goal)."""
        return (self.seen_s - COLD_SLACK_S) / self.true_s


@dataclass(frozen=True)
class Phase:
    samples: tuple[Sample, ...]
    fetches: int

    @property
    def per_task(self) -> float:
        return self.fetches / len(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(s.ratio for s in self.samples)

    @property
    def p95(self) -> float:
        return quantile([s.ratio for s in self.samples], 0.95)

    @property
    def complete_median(self) -> float:
        return statistics.median(s.complete_ratio for s in self.samples)

    @property
    def complete_p95(self) -> float:
        return quantile([s.complete_ratio for s in self.samples], 0.95)


@dataclass(frozen=True)
class ProfileResult:
    profile: str
    preview_s: float  # the median true first-playable time over every task of the profile
    cold: Phase
    warm: Phase
    fixed_cold: Phase  # the fixed loop on the cold tasks' latency draws
    fixed_warm: Phase  # and on the warm tasks'
    seconds: float


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (inclusive), defined for any number of values."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _fetches(sandbox: SandboxHandle) -> int:
    return sum(sandbox.state.stats.requests.get(name, 0) for name in FETCH_ENDPOINTS)


def _timing(config: SandboxConfig) -> Timing:
    # What backends.py gives the service: the defaults, sped up; never the profile.
    return Timing(
        preview_s=config.preview_after_s, complete_s=config.complete_after_s, lyrics_s=config.lyrics_after_s
    ).scaled(config.speed)


def _sample(sandbox: SandboxHandle, task_id: str, seen_clock: float, done_clock: float) -> Sample:
    timeline = sandbox.state.timeline(task_id)
    assert timeline.first_playable_s is not None, timeline
    assert timeline.completed_s is not None, timeline
    return Sample(
        (seen_clock - timeline.submitted_clock) * timeline.speed,
        timeline.first_playable_s,
        (done_clock - timeline.submitted_clock) * timeline.speed,
        timeline.completed_s,
    )


async def _client(service: SunoService, sandbox: SandboxHandle, prompt: str) -> Sample:
    """One task as a model would follow it: a waited submit, then waited status reads."""
    speed = sandbox.state.config.speed
    wait_s = CLIENT_WAIT_S / speed
    request = MusicRequest(gpt_description_prompt=prompt, prompt="", mv="chirp-v3-5")
    with anyio.fail_after(TASK_LIMIT_S / speed):
        record = (await service.submit_music(request, wait_s=wait_s)).record
        task_id = record.task_id
        assert task_id is not None, record
        seen = time.monotonic() if record.status.playable else None
        while not record.status.finished:
            record = (await service.status(task_id, wait_s=wait_s)).record
            if seen is None and record.status.playable:
                seen = time.monotonic()
        done = time.monotonic()
    assert record.status is Status.COMPLETE, record
    assert seen is not None, record
    return _sample(sandbox, task_id, seen, done)


async def _phase(service: SunoService, sandbox: SandboxHandle, label: str, count: int) -> Phase:
    before = _fetches(sandbox)
    samples: list[Sample] = []

    async def one(i: int) -> None:
        samples.append(await _client(service, sandbox, f"bench {label} song {i}"))

    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(one, i)
    return Phase(tuple(samples), _fetches(sandbox) - before)


async def _fixed_one(http: httpx.AsyncClient, sandbox: SandboxHandle, i: int) -> tuple[str, Sample, int]:
    """The vendor example: submit, then sleep a fixed interval and fetch until completed."""
    speed = sandbox.state.config.speed
    headers = {"Authorization": f"Bearer {KEY}"}
    answer = await http.post(
        f"{sandbox.url}/v1/suno/submit/music",
        json={"gpt_description_prompt": f"vendor song {i}", "mv": "chirp-v3-5"},
        headers=headers,
    )
    task_id = answer.json()["data"]
    seen: float | None = None
    fetches = 0
    with anyio.fail_after(TASK_LIMIT_S / speed):
        while True:
            await anyio.sleep(VENDOR_INTERVAL_S / speed)
            fetched = await http.get(f"{sandbox.url}/v1/suno/fetch/{task_id}", headers=headers)
            fetches += 1
            items = fetched.json()["data"]
            if seen is None and any(item.get("audio_url") for item in items):
                seen = time.monotonic()
            if items and all(item["status"] == "completed" for item in items):
                break
    assert seen is not None
    return task_id, _sample(sandbox, task_id, seen, time.monotonic()), fetches


async def _fixed_loop(config: SandboxConfig) -> tuple[Phase, Phase]:
    """The fixed loop over as many tasks as ours, split into the cold and warm tasks' draws."""
    # A connection per request: a kept-alive one could be closed by the sandbox just as a slow
    # task's next fetch reuses it (httpx.ReadError), which a loop this simple does not retry.
    fresh = httpx.Limits(max_keepalive_connections=0)
    async with run_sandbox(config) as sandbox, httpx.AsyncClient(limits=fresh) as http:
        done: dict[str, tuple[Sample, int]] = {}

        async def one(i: int) -> None:
            task_id, sample, fetches = await _fixed_one(http, sandbox, i)
            done[task_id] = (sample, fetches)

        async with anyio.create_task_group() as tg:
            for i in range(FIXED_TASKS):
                tg.start_soon(one, i)
        assert sum(n for _, n in done.values()) == _fetches(sandbox)
        in_submit_order = [done[task_id] for task_id in sandbox.state.tasks]

    def phase(part: list[tuple[Sample, int]]) -> Phase:
        return Phase(tuple(sample for sample, _ in part), sum(n for _, n in part))

    return phase(in_submit_order[:COLD_TASKS]), phase(in_submit_order[WARMUP_TASKS:])


async def bench_profile(profile: str, speed: float, seed: int) -> ProfileResult:
    """Cold, warm and fixed-loop phases for one latency profile."""
    started = time.monotonic()
    config = SandboxConfig(speed=speed, clip_seconds=2.0, seed=seed, profile=profile)
    fixed: list[tuple[Phase, Phase]] = []

    async def run_fixed() -> None:
        fixed.append(await _fixed_loop(config))

    with tempfile.TemporaryDirectory() as tmp:
        async with anyio.create_task_group() as tg:
            # The fixed loop has a sandbox of its own (its fetches are counted apart) and runs
            # meanwhile: it learns nothing, so when it runs does not matter.
            tg.start_soon(run_fixed)
            async with run_sandbox(config) as sandbox:
                # The default ceiling is 10 requests per second of model time; the sandbox
                # compresses time by `speed`, so the real-time ceiling grows alike.
                settings = load_settings(
                    environ={},
                    api_key=KEY,
                    base_url=sandbox.url,
                    data_dir=Path(tmp),
                    max_requests_per_second=DEFAULT_RPS * speed,
                )
                async with open_service(settings, timing=_timing(config), sandbox=True) as service:
                    cold = await _phase(service, sandbox, "cold", COLD_TASKS)
                    await _phase(service, sandbox, "warmup", WARMUP_TASKS - COLD_TASKS)
                    warm = await _phase(service, sandbox, "warm", WARM_TASKS)
                true_times = [
                    t.first_playable_s
                    for t in (sandbox.state.timeline(task_id) for task_id in sandbox.state.tasks)
                    if t.first_playable_s is not None
                ]
    return ProfileResult(
        profile=profile,
        preview_s=statistics.median(true_times),
        cold=cold,
        warm=warm,
        fixed_cold=fixed[0][0],
        fixed_warm=fixed[0][1],
        seconds=time.monotonic() - started,
    )


async def _follow(service: SunoService, task_id: str, wait_s: float) -> None:
    with anyio.fail_after(TASK_LIMIT_S):
        while not (await service.status(task_id, wait_s=wait_s)).record.status.finished:
            pass


async def bench_shared_waiters(speed: float) -> tuple[int, int]:
    """Upstream fetches while 1 waiter, then 20 waiters, follow a task from submit to complete."""
    config = SandboxConfig(speed=speed, clip_seconds=2.0, seed=5)
    counts = []
    for waiters in (1, 20):
        with tempfile.TemporaryDirectory() as tmp:
            async with run_sandbox(config) as sandbox:
                settings = load_settings(
                    environ={},
                    api_key=KEY,
                    base_url=sandbox.url,
                    data_dir=Path(tmp),
                    max_requests_per_second=DEFAULT_RPS * speed,
                )
                async with open_service(settings, timing=_timing(config), sandbox=True) as service:
                    request = MusicRequest(gpt_description_prompt="shared", prompt="", mv="chirp-v3-5")
                    outcome = await service.submit_music(request, wait_s=0)
                    task_id = outcome.record.task_id
                    assert task_id is not None
                    async with anyio.create_task_group() as tg:
                        for _ in range(waiters):
                            tg.start_soon(_follow, service, task_id, CLIENT_WAIT_S / speed)
                counts.append(_fetches(sandbox))
    return counts[0], counts[1]


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def bench_memory(in_flight: int) -> tuple[float, float]:
    """RSS of this process (the sandbox runs in another one) before and with many tasks in flight."""
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
                # Let the poller go over every task a few times (the first poll is 3 s in).
                await anyio.sleep(30)
                loaded = _rss_mb()
        return baseline, loaded
    finally:
        sandbox.terminate()
        with anyio.move_on_after(10):
            await sandbox.wait()


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def goals(result: ProfileResult) -> str:
    """The goals this profile's numbers meet or miss, in a few words."""
    cold_slack = statistics.median(s.slack_ratio for s in result.cold.samples)
    warm = result.warm
    latency = (
        warm.median <= WARM_MEDIAN
        and warm.p95 <= WARM_P95
        and warm.complete_median <= WARM_MEDIAN
        and warm.complete_p95 <= WARM_P95
    )
    requests = (
        result.cold.per_task <= result.fixed_cold.per_task and warm.per_task <= result.fixed_warm.per_task
    )
    return f"cold {_verdict(cold_slack <= COLD_FACTOR)}, warm {_verdict(latency)}, req {_verdict(requests)}"


def draw_mismatch(ours: Phase, fixed: Phase) -> float:
    """The largest relative gap between the two runs' true playable times, sorted: ~0 when the
    fixed loop really met the same latency draws (only the per-clip jitter differs)."""
    pairs = zip(sorted(s.true_s for s in ours.samples), sorted(s.true_s for s in fixed.samples), strict=True)
    return max(abs(a - b) / b for a, b in pairs)


def _pair(phase: Phase) -> str:
    return f"{phase.median:.2f} / {phase.p95:.2f}"


def _complete_pair(phase: Phase) -> str:
    return f"{phase.complete_median:.2f} / {phase.complete_p95:.2f}"


def print_table(results: Sequence[ProfileResult], shared: tuple[int, int], speed: float) -> None:
    """The one table: latency ratios and fetches per task for every profile, with the goals."""
    header = (
        "profile",
        "preview",
        "cold med/p95",
        "fixed",
        "warm med/p95",
        "fixed",
        "cold complete",
        "warm complete",
        "fixed",
        "req cold",
        "fixed",
        "req warm",
        "fixed",
        "goals",
    )
    rows = [
        (
            r.profile,
            f"{r.preview_s:.0f} s",
            _pair(r.cold),
            _pair(r.fixed_cold),
            _pair(r.warm),
            _pair(r.fixed_warm),
            _complete_pair(r.cold),
            _complete_pair(r.warm),
            _complete_pair(r.fixed_warm),
            f"{r.cold.per_task:.1f}",
            f"{r.fixed_cold.per_task:.1f}",
            f"{r.warm.per_task:.1f}",
            f"{r.fixed_warm.per_task:.1f}",
            goals(r),
        )
        for r in results
    ]
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    print(
        f"sandbox speed x{speed:g}; client waits <= {CLIENT_WAIT_S:g} s per call; fixed loop every "
        f"{VENDOR_INTERVAL_S:g} s; cold = first {COLD_TASKS} tasks, warm = {WARM_TASKS} tasks after "
        f"{WARMUP_TASKS}; each 'fixed' column is the fixed loop on the same tasks; times are model seconds"
    )
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    mismatch = max(
        max(draw_mismatch(r.cold, r.fixed_cold), draw_mismatch(r.warm, r.fixed_warm)) for r in results
    )
    print(f"same tasks: true playable times of ours and the fixed loop's differ by at most {mismatch:.1%}")
    one, twenty = shared
    print(
        f"sharing: fetches with 20 waiters on one task / with 1 = {twenty} / {one} = {twenty / one:.2f} (goal ~1)"
    )
    print(
        "med/p95: time to first playable over the upstream's own playable time; complete: the same for "
        "the finished task; req: upstream fetches per completed task; preview: the profile's median true "
        "first-playable time.\n"
        f"goals: cold = median (seen - {COLD_SLACK_S:g} s) / true <= {COLD_FACTOR}; warm = playable and "
        f"complete medians <= {WARM_MEDIAN} and p95s <= {WARM_P95}; req = fetches per task <= the fixed "
        "loop's on the same tasks, cold and warm."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="long-running path benchmark over latency profiles")
    parser.add_argument("--speed", type=float, default=30.0)
    parser.add_argument("--profiles", default=",".join(PROFILES))
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=0, help="also measure RSS with this many tasks")
    args = parser.parse_args()

    started = time.monotonic()
    results = []
    for profile in args.profiles.split(","):
        result = anyio.run(bench_profile, profile, args.speed, args.seed)
        print(f"  {profile}: {result.seconds:.0f} s", file=sys.stderr)
        results.append(result)
    shared = anyio.run(bench_shared_waiters, args.speed)
    print_table(results, shared, args.speed)
    if args.in_flight:
        baseline, loaded = anyio.run(bench_memory, args.in_flight)
        print(
            f"RSS with {args.in_flight} tasks in flight: {loaded:.0f} MB (idle {baseline:.0f}; goal <= 150)"
        )
    print(f"ran in {time.monotonic() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
