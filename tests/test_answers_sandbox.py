"""The vendor's documented answers and odd statuses, end to end: service -> real HTTP -> sandbox.

And waiting that does not depend on being told the upstream's latency: the service's
configured expectation is 10x too slow or 5x too fast for the sandbox here.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from suno_mcp.domain.errors import AuthenticationError, ContentPolicyError, SubmitOutcomeUnknownError
from suno_mcp.domain.models import MusicRequest, Status
from suno_mcp.engine.poller import Timing
from suno_mcp.sandbox import SandboxConfig, SandboxHandle, run_sandbox
from suno_mcp.service.core import SunoService
from suno_mcp.service.wiring import open_service
from suno_mcp.settings import load_settings
from suno_mcp.upstream.retry import RetryPolicy

SPEED = 1000.0  # sandbox seconds per real second: a task completes in ~0.13 s
BOUND_S = 20.0
KEY = "canary-key-6c1f"
RETRY = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02, rng=random.Random(1))


def request(n: int = 0) -> MusicRequest:
    return MusicRequest(gpt_description_prompt=f"a song about the sea {n}", mv="chirp-v3-5")


@asynccontextmanager
async def service_on(
    tmp_path: Path,
    *,
    expect_preview_s: float = 30.0,
    stall_s: float = 1800.0,
    speed: float = SPEED,
    **config: object,
) -> AsyncIterator[tuple[SunoService, SandboxHandle]]:
    """A service against a sandbox at ``speed``; its timing is told the speed, never the latency."""
    sandbox_config = SandboxConfig(speed=speed, clip_seconds=2.0, **config)  # type: ignore[arg-type]
    async with run_sandbox(sandbox_config) as sandbox:
        settings = load_settings(
            environ={}, api_key=KEY, base_url=sandbox.url, data_dir=tmp_path, max_requests_per_second=1000.0
        )
        timing = Timing.expecting(expect_preview_s, expect_preview_s * 4, stall_s=stall_s).scaled(speed)
        async with open_service(settings, timing=timing, retry=RETRY, sandbox=True) as service:
            yield service, sandbox


async def until_finished(service: SunoService, task_id: str) -> Status:
    with anyio.fail_after(BOUND_S):
        while True:
            outcome = await service.status(task_id, wait_s=0.5)
            if outcome.record.status.finished or outcome.record.status is Status.STALLED:
                return outcome.record.status


async def test_a_documented_policy_refusal_leaves_the_row_refused_and_the_same_request_is_sent_again(
    tmp_path: Path,
) -> None:
    async with service_on(tmp_path) as (service, sandbox):
        sandbox.state.inject("policy_503", "submit_music")
        with pytest.raises(ContentPolicyError):
            await service.submit_music(request())
        (row,) = await service.list_tasks()
        assert row.status is Status.FAILED  # refused: nothing was made
        again = await service.submit_music(request())
        assert not again.deduplicated
        assert sandbox.state.stats.tasks_created == 1


async def test_an_invalid_token_403_is_an_authentication_error_not_a_balance_one(tmp_path: Path) -> None:
    async with service_on(tmp_path) as (service, sandbox):
        sandbox.state.inject("invalid_token", "submit_music")
        with pytest.raises(AuthenticationError):
            await service.submit_music(request())


async def test_the_submits_answer_as_received_is_kept_on_the_row_accepted_or_unknown(tmp_path: Path) -> None:
    async with service_on(tmp_path) as (service, sandbox):
        sandbox.state.inject("wrapped_id", "submit_music")
        accepted = await service.submit_music(request(1))
        assert accepted.record.task_id is not None
        kept = await service.record(accepted.record.task_id)
        assert kept is not None
        assert kept.raw_answer is not None
        assert accepted.record.task_id in kept.raw_answer
        sandbox.state.inject("malformed", "submit_music")
        with pytest.raises(SubmitOutcomeUnknownError):
            await service.submit_music(request(2))
        (unknown,) = await service.list_tasks(status=Status.UNKNOWN)
        assert unknown.raw_answer
        assert KEY not in unknown.raw_answer


@pytest.mark.parametrize("shape", ["wrapped_id", "wrapped_id_plain", "odd_id"])
async def test_a_wrapped_or_odd_id_answer_keeps_the_task_followable_to_complete(
    tmp_path: Path, shape: str
) -> None:
    async with service_on(tmp_path) as (service, sandbox):
        sandbox.state.inject(shape, "submit_music")
        outcome = await service.submit_music(request())
        assert outcome.record.task_id is not None
        assert await until_finished(service, outcome.record.task_id) is Status.COMPLETE


async def test_a_task_the_upstream_reports_cancelled_ends_as_failed_with_the_vendors_word(
    tmp_path: Path,
) -> None:
    async with service_on(tmp_path) as (service, sandbox):
        sandbox.state.inject("status:cancelled", "submit_music")
        outcome = await service.submit_music(request())
        assert outcome.record.task_id is not None
        assert await until_finished(service, outcome.record.task_id) is Status.FAILED
        record = await service.record(outcome.record.task_id)
        assert record is not None
        assert "cancel" in (record.error or "").lower()


async def test_a_task_stuck_in_an_unknown_word_is_stalled_after_the_limit_and_no_longer_polled(
    tmp_path: Path,
) -> None:
    async with service_on(tmp_path, stall_s=60.0) as (service, sandbox):  # 0.06 s of real time
        sandbox.state.inject("stuck", "submit_music")
        outcome = await service.submit_music(request())
        task_id = outcome.record.task_id
        assert task_id is not None
        assert await until_finished(service, task_id) is Status.STALLED
        assert service.poller.watching == 0
        before = sandbox.state.stats.requests["fetch"]
        # Five of the longest gaps an unwatched task's polls would have: a stalled task is not
        # polled in the background any more.
        await anyio.sleep(0.3)
        assert sandbox.state.stats.requests["fetch"] == before
        again = await service.status(task_id)  # but a person can still look
        assert sandbox.state.stats.requests["fetch"] == before + 1
        assert again.record.status is Status.STALLED


@pytest.mark.slow  # ~7 s each: the sandbox's own latency at speed 5, measured in real time
@pytest.mark.timed
@pytest.mark.parametrize("told_preview_s", [300.0, 6.0], ids=["told-10x-too-slow", "told-5x-too-fast"])
async def test_a_waited_generate_returns_the_preview_soon_after_it_plays_whatever_the_server_was_told(
    tmp_path: Path, told_preview_s: float
) -> None:
    # Slow enough that a busy machine's scheduling delays stay well under a model second: at 10 the
    # preview was seen at 36.0-37.8 model s against a bound of 37.3 (the schedule's own 1.15x plus
    # 50-180 ms of real-time jitter), a coin toss on a CI machine.
    speed = 5.0
    async with service_on(tmp_path, expect_preview_s=told_preview_s, speed=speed) as (service, sandbox):
        outcome = await service.submit_music(request(), wait_s=BOUND_S)
        assert outcome.record.status.playable
        assert outcome.record.task_id is not None
        timeline = sandbox.state.timeline(outcome.record.task_id).as_json()
        playable_model_s = timeline["first_playable"]["model_s"]
        seen_model_s = outcome.waited_s * speed
        # The goal: 1.15x the upstream's own time plus a second (of model time here).
        assert seen_model_s <= 1.15 * playable_model_s + 1.0


async def test_a_status_read_with_a_wait_of_a_task_already_complete_upstream_says_complete_at_once(
    tmp_path: Path,
) -> None:
    async with service_on(tmp_path, expect_preview_s=300.0) as (service, sandbox):
        outcome = await service.submit_music(request(), wait_s=0)
        task_id = outcome.record.task_id
        assert task_id is not None

        def complete_upstream() -> bool:
            completed = sandbox.state.timeline(task_id).as_json()["completed"]
            return completed is not None and bool(completed["reached"])

        with anyio.fail_after(BOUND_S):
            while not complete_upstream():  # noqa: ASYNC110
                await anyio.sleep(0.02)  # a polling interval inside a bounded wait
        first = await service.status(task_id, wait_s=5)
        assert first.record.status is Status.COMPLETE


@pytest.mark.slow  # ~4 s: five tasks one after another, learned from real-time polls
@pytest.mark.timed
async def test_the_latency_resource_shows_what_was_learned_from_finished_tasks(tmp_path: Path) -> None:
    from mcp import Client

    from suno_mcp.server.app import build_server
    from suno_mcp.service.backends import SandboxOptions, sandbox_backend

    server = build_server(
        load_settings(environ={}, data_dir=tmp_path),
        sandbox_backend(SandboxOptions(speed=200.0, clip_seconds=2.0)),
    )
    async with Client(server) as client:
        for n in range(5):
            task = await client.call_tool(
                "generate_music", {"description": f"latency {n}", "wait_seconds": 5}
            )
            task_id = (task.structured_content or {})["task_id"]
            with anyio.fail_after(BOUND_S):
                while (task.structured_content or {}).get("status") != "complete":
                    task = await client.call_tool("get_task_status", {"task_id": task_id, "wait_seconds": 5})
        learned = (await client.read_resource("suno://latency")).contents[0]
    import json

    rows = json.loads(learned.text)["learned"]  # type: ignore[union-attr]
    # At this speed a poll's jitter can blur the short preview bracket; final audio is always learned.
    (final,) = [r for r in rows if r["milestone"] == "complete" and r["model"] == "chirp-v3-5"]
    assert final["samples"] == 5
    assert 0.5 <= final["median_s"] <= 0.9  # the sandbox's ~120 s of model time at x200


@pytest.mark.timed  # the pacing leaves 20 % of the upstream's rate spare: a stall eats that
async def test_a_burst_of_submits_is_paced_under_the_upstreams_rate_limit_instead_of_refused(
    tmp_path: Path,
) -> None:
    sandbox_config = SandboxConfig(speed=SPEED, clip_seconds=2.0, rate_limit_rps=10.0, rate_burst=2)
    async with run_sandbox(sandbox_config) as sandbox:
        settings = load_settings(
            environ={}, api_key=KEY, base_url=sandbox.url, data_dir=tmp_path, max_requests_per_second=8.0
        )
        async with open_service(
            settings, timing=Timing().scaled(SPEED), retry=RETRY, sandbox=True
        ) as service:
            with anyio.fail_after(BOUND_S):
                async with anyio.create_task_group() as tg:
                    for n in range(10):
                        tg.start_soon(service.submit_music, request(n))
        assert sandbox.state.stats.tasks_created == 10
        assert sum(sandbox.state.stats.rate_limited.values()) == 0
