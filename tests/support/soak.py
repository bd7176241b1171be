"""The soak harness: many paid requests through faults and a restart; nothing may be lost or paid twice.

Shared by ``tests/test_soak.py`` (a small run in CI) and ``bench/soak.py`` (the long run by hand), so the
tests do not import the benchmarks. Runs N music tasks against the sandbox with injected faults (20% of
requests by default), restarts the service (a fresh process's worth of state, same data directory)
halfway, then follows every task to the end, and counts:

- submitted: submits the upstream accepted (tasks it created)
- complete / failed: final states in the ledger
- unknown: submits whose answer was lost (recorded as unknown, as designed)
- lost: tasks the upstream created that the ledger has no trace of (must be 0)
- duplicates: requests the upstream received and accepted more than once (must be 0)
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from suno_mcp.domain.errors import SubmitOutcomeUnknownError, SunoError
from suno_mcp.domain.models import MusicRequest, Status
from suno_mcp.engine.poller import Timing
from suno_mcp.sandbox.runner import run_sandbox
from suno_mcp.sandbox.state import SandboxConfig
from suno_mcp.service.core import SunoService
from suno_mcp.service.wiring import open_service
from suno_mcp.settings import load_settings
from suno_mcp.store.sqlite import SqliteLedger
from suno_mcp.upstream.retry import RetryPolicy

# The share of each fault kind in the injected faults; scaled to the requested rate.
FAULT_MIX = {
    "429": 0.2,
    "500": 0.2,
    "502": 0.1,
    "503": 0.1,
    "drop": 0.15,
    "malformed": 0.1,
    "code_error": 0.1,
    "slow": 0.05,
}
SUBMIT_ATTEMPTS = 6  # a refused submit (nothing charged) is tried again, as a model would
FOLLOW_LIMIT_S = 300.0


@dataclass
class SoakReport:
    tasks: int
    api: str
    submitted: int
    complete: int
    failed: int
    unknown: int
    refused_for_good: int
    lost: int
    duplicates: int
    upstream_requests: int
    seconds: float


def fault_spec(rate: float) -> str:
    """A sandbox fault spec whose kinds add up to ``rate`` of all requests."""
    return ",".join(f"{kind}:{share * rate:.4f}" for kind, share in FAULT_MIX.items())


async def _submit_all(service: SunoService, indices: range, refused: list[int]) -> None:
    limiter = anyio.CapacityLimiter(20)

    async def one(i: int) -> None:
        async with limiter:
            request = MusicRequest(gpt_description_prompt=f"soak song number {i}", prompt="", mv="chirp-v3-5")
            for _ in range(SUBMIT_ATTEMPTS):
                try:
                    await service.submit_music(request, wait_s=0)
                    return
                except SubmitOutcomeUnknownError:
                    return  # maybe charged: never resubmit blindly
                except SunoError:
                    await anyio.sleep(0.05)
            refused.append(i)

    async with anyio.create_task_group() as tg:
        for i in indices:
            tg.start_soon(one, i)


async def _follow_all(service: SunoService) -> None:
    limiter = anyio.CapacityLimiter(50)

    async def one(task_id: str) -> None:
        async with limiter:
            with anyio.move_on_after(FOLLOW_LIMIT_S):
                while True:
                    try:
                        outcome = await service.status(task_id, wait_s=5)
                    except SunoError:
                        await anyio.sleep(0.1)
                        continue
                    if outcome.record.status.finished:
                        return

    records = await service.ledger.recent(limit=100_000)
    async with anyio.create_task_group() as tg:
        for record in records:
            if record.task_id and not record.status.finished and record.status is not Status.UNKNOWN:
                tg.start_soon(one, record.task_id)


async def run_soak(
    tasks: int, *, speed: float, fault_rate: float, api: str, data_dir: Path, seed: int = 7
) -> SoakReport:
    """Run the soak and return its counts."""
    started = time.monotonic()
    config = SandboxConfig(
        speed=speed, clip_seconds=2.0, faults=fault_spec(fault_rate), seed=seed, slow_delay_s=0.2
    )
    timing = Timing(
        preview_s=config.preview_after_s, complete_s=config.complete_after_s, lyrics_s=config.lyrics_after_s
    ).scaled(config.speed)
    retry = RetryPolicy(
        max_attempts=5, base_delay=0.02, max_delay=0.2, max_retry_after=0.2, rng=random.Random(seed)
    )
    refused: list[int] = []
    async with run_sandbox(config) as sandbox:
        settings = load_settings(
            environ={},
            api_key="soak-key",
            base_url=sandbox.url,
            data_dir=data_dir,
            api=api,
            max_requests_per_second=500.0,
            read_timeout=5.0,
        )
        half = tasks // 2
        async with open_service(settings, timing=timing, retry=retry, sandbox=True) as service:
            await _submit_all(service, range(half), refused)
        # The restart: everything in memory is gone; only the ledger remains.
        async with open_service(settings, timing=timing, retry=retry, sandbox=True) as service:
            await _submit_all(service, range(half, tasks), refused)
            await _follow_all(service)
        stats = sandbox.state.stats
        accepted = stats.submits_by_fingerprint
        upstream_requests = sum(stats.requests.values())

    ledger = await SqliteLedger.open(settings.ledger_path)
    try:
        records = await ledger.recent(limit=100_000)
    finally:
        await ledger.close()

    # The ledger keeps the family-independent request; each family's client leaves out or
    # sends an empty prompt as its examples do, so unset and empty fields are compared alike.
    def canonical(body: dict[str, Any]) -> str:
        return json.dumps({k: v for k, v in body.items() if v not in (None, "")}, sort_keys=True)

    in_ledger = {canonical(r.request) for r in records if r.task_id or r.status is Status.UNKNOWN}
    lost = 0
    for key, count in accepted.items():
        if canonical(json.loads(key)["body"]) not in in_ledger:
            lost += count
    return SoakReport(
        tasks=tasks,
        api=api,
        submitted=sum(accepted.values()),
        complete=sum(1 for r in records if r.status is Status.COMPLETE),
        failed=sum(1 for r in records if r.status is Status.FAILED and r.task_id),
        unknown=sum(1 for r in records if r.status is Status.UNKNOWN),
        refused_for_good=len(refused),
        lost=lost,
        duplicates=sum(count - 1 for count in accepted.values() if count > 1),
        upstream_requests=upstream_requests,
        seconds=round(time.monotonic() - started, 1),
    )
