"""The learned schedule against the sandbox, on one fake clock shared by sandbox and poller.

The poller is never told the profile (its prior is the vendor-like 30 s / 120 s, as a fresh
server's): from the first finished task on it knows the upstream's times, so the third task of a
steady upstream is polled where its milestones land, not from the submit on, and for no more
requests than the vendor's 5 s loop. When the sandbox's profile changes mid-run, the window moves
to the new times within a few tasks. The sandbox's timelines give each task's true times.
"""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import httpx

from suno_mcp.domain.models import MusicRequest, TaskRef
from suno_mcp.engine.poller import Poller, Timing
from suno_mcp.sandbox import SandboxConfig, SandboxHandle, run_sandbox
from suno_mcp.upstream.families import TaskApi
from suno_mcp.upstream.retry import RetryPolicy
from suno_mcp.upstream.transport import Upstream
from tests.support.clock import FakeClock

MODEL = "chirp-v3-5"  # the profiles' reference model: no per-model factor
KEY = ("task", "music", MODEL)
TIMING = Timing()  # the defaults: first poll 3 s in, gaps of 1-15 s, a 5 s fetch budget
BOUND_S = 10.0  # real seconds any one task may take here (it runs on the fake clock)


@dataclass(frozen=True)
class Followed:
    """One task followed from submit to complete: its polls (s after the submit) and true times."""

    polls: list[float]
    seen_playable_s: float
    true_playable_s: float
    true_complete_s: float

    @property
    def fixed_loop_fetches(self) -> int:
        """What the vendor's example loop (sleep 5 s, fetch) spends on this task."""
        return math.ceil(self.true_complete_s / TIMING.fetch_every_s)


@dataclass
class Run:
    """A sandbox, our client of it and a poller fetching through it, all on one fake clock."""

    sandbox: SandboxHandle
    api: TaskApi
    poller: Poller
    clock: FakeClock

    async def follow(self, name: str) -> Followed:
        """Submit a song; the poller follows it, someone waiting on it, until it is complete."""
        task = await self.api.submit_music(MusicRequest(gpt_description_prompt=name, mv=MODEL))
        ref = TaskRef(task.task_id, "task", "music", model=MODEL)
        started, polls, seen = self.clock.now, [], None
        with anyio.fail_after(BOUND_S), self.poller.waiting(ref, started=started, current=task):
            while (followed := self.poller.followed(task.task_id)) is not None:
                if seen is None and followed.task is not None and followed.task.status.playable:
                    seen = polls[-1]
                self.clock.now = self.poller.next_due()
                assert await self.poller.step(self.clock.now) == [ref]
                polls.append(self.clock.now - started)
        timeline = self.sandbox.state.timeline(task.task_id)
        assert timeline.first_playable_s is not None
        assert timeline.completed_s is not None
        return Followed(
            polls, polls[-1] if seen is None else seen, timeline.first_playable_s, timeline.completed_s
        )


@asynccontextmanager
async def sandboxed() -> AsyncIterator[Run]:
    clock = FakeClock(1000.0)
    config = SandboxConfig(speed=1.0, clip_seconds=2.0, seed=7, profile="steady")
    async with run_sandbox(config, clock=clock) as sandbox, httpx.AsyncClient() as http:
        retry = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02, rng=random.Random(1))
        api = TaskApi(Upstream(http, base_url=sandbox.url, api_key="k", retry=retry))
        poller = Poller({"task": api}, timing=TIMING, clock=clock, max_requests_per_second=math.inf)
        yield Run(sandbox, api, poller, clock)


async def test_the_third_song_of_a_steady_upstream_is_polled_on_the_learned_schedule() -> None:
    async with sandboxed() as run:
        first, second, third = [await run.follow(f"steady song {n}") for n in range(3)]
    # The first song is followed from the submit on: nothing is known yet.
    assert first.polls[0] == TIMING.first_poll_s
    # By the third, the first poll waits for the window where previews land, and the song costs
    # fewer requests than the first one, and than the fixed loop.
    assert third.polls[0] >= 0.75 * third.true_playable_s
    assert len(third.polls) < len(first.polls)
    assert len(third.polls) <= third.fixed_loop_fetches
    assert third.true_playable_s <= third.seen_playable_s <= 1.1 * third.true_playable_s
    assert third.polls[-1] <= 1.1 * third.true_complete_s
    assert second.polls[0] > TIMING.first_poll_s  # one finished song already taught it


async def test_when_the_upstream_slows_down_mid_run_the_learned_schedule_moves_within_a_few_songs() -> None:
    async with sandboxed() as run:
        for n in range(4):
            await run.follow(f"steady song {n}")
        steady = run.poller.latency.window(KEY, "playable")
        assert steady is not None
        run.sandbox.state.set_profile("slow")  # previews at 60-90 s, finals at 4-5 min
        slow = [await run.follow(f"slow song {n}") for n in range(5)]
    assert min(s.true_playable_s for s in slow) > 1.5 * steady.high  # the profiles really differ
    moved = run.poller.latency.window(KEY, "playable")
    assert moved is not None
    assert moved.low > steady.high  # the steady samples are forgotten
    last = slow[-1]
    assert last.polls[0] > steady.high  # nothing asked where steady previews landed
    assert last.true_playable_s <= last.seen_playable_s <= 1.1 * last.true_playable_s
    assert len(last.polls) <= last.fixed_loop_fetches
