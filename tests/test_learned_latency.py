"""The learned schedule follows the upstream: when the sandbox's profile changes mid-run, the
window the poller learned moves to the new times, which the sandbox's timelines give exactly."""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import anyio
import httpx
import pytest

from suno_mcp.domain.latency import KEEP
from suno_mcp.domain.models import MusicRequest, Status
from suno_mcp.engine.poller import Timing
from suno_mcp.sandbox import SandboxConfig, SandboxHandle, run_sandbox
from suno_mcp.service.core import SunoService
from suno_mcp.service.wiring import open_service
from suno_mcp.settings import load_settings
from suno_mcp.upstream.retry import RetryPolicy

SPEED = 20.0  # "slow" finals (~270 model s) take ~13.5 s of real time; faster, a loaded machine
# delays polls past the bracket a sample needs, and too few samples are learned
MODEL = "chirp-v3-5"  # the profiles' reference model: no per-model factor
KEY = ("task", "music", MODEL)
PER_PHASE = 8
BOUND_S = 40.0
RETRY = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02, rng=random.Random(1))


async def run_tasks(service: SunoService, sandbox: SandboxHandle, phase: str) -> dict[str, float]:
    """Submit PER_PHASE songs at once and follow each to complete; the true median times (s)."""
    task_ids: list[str] = []

    async def one(n: int) -> None:
        request = MusicRequest(gpt_description_prompt=f"{phase} song number {n}", mv=MODEL)
        outcome = await service.submit_music(request, wait_s=0)
        task_id = outcome.record.task_id
        assert task_id is not None
        task_ids.append(task_id)
        status = outcome.record.status
        while not status.finished:
            status = (await service.status(task_id, wait_s=5)).record.status
        assert status is Status.COMPLETE

    with anyio.fail_after(BOUND_S):
        async with anyio.create_task_group() as tg:
            for n in range(PER_PHASE):
                tg.start_soon(one, n)
    timelines = [sandbox.state.timeline(t) for t in task_ids]
    assert {t.profile for t in timelines} == {phase}
    playable = [t.first_playable_s for t in timelines]
    complete = [t.completed_s for t in timelines]
    assert None not in playable
    assert None not in complete
    return {
        "playable": statistics.median(p / SPEED for p in playable if p is not None),
        "complete": statistics.median(c / SPEED for c in complete if c is not None),
    }


def learned_median(service: SunoService, milestone: str) -> float:
    window = service.poller.latency.window(KEY, milestone)  # type: ignore[arg-type]
    assert window is not None, service.latency()
    return window.median


@pytest.mark.slow  # ~17 s: sixteen tasks on the sandbox's real clock, and timed by it
@pytest.mark.timed
async def test_the_learned_window_moves_to_the_new_times_when_the_upstream_slows_down(
    tmp_path: Path,
) -> None:
    config = SandboxConfig(speed=SPEED, clip_seconds=2.0, profile="fast")
    async with run_sandbox(config) as sandbox:
        settings = load_settings(
            environ={}, api_key="k", base_url=sandbox.url, data_dir=tmp_path, max_requests_per_second=1000.0
        )
        # Told the sandbox's speed, never its latency: the prior stays the vendor-like 30 s / 120 s.
        timing = Timing().scaled(SPEED)
        async with open_service(settings, timing=timing, retry=RETRY, sandbox=True) as service:
            fast = await run_tasks(service, sandbox, "fast")
            for milestone in ("playable", "complete"):
                assert abs(learned_median(service, milestone) - fast[milestone]) <= 0.3 * fast[milestone]

            # Mid-run, through the admin endpoint, as an operator would.
            async with httpx.AsyncClient(base_url=sandbox.url) as admin:
                answer = await admin.post("/_sandbox/profile", json={"profile": "slow"})
            assert answer.json()["profile"] == "slow"

            slow = await run_tasks(service, sandbox, "slow")
            for milestone in ("playable", "complete"):
                moved = learned_median(service, milestone)
                assert slow[milestone] > 5 * fast[milestone]  # the two profiles really differ
                assert abs(moved - slow[milestone]) <= 0.3 * slow[milestone], (milestone, moved, slow)

            # The snapshot people read says the same, from the most recent samples only.
            rows = {row["milestone"]: row for row in service.latency() if row["kind"] == "music"}
            for milestone in ("playable", "complete"):
                assert 0 < rows[milestone]["samples"] <= KEEP
                assert rows[milestone]["median_s"] == round(learned_median(service, milestone), 1)
