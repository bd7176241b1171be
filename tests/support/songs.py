"""Songs followed one after another by a poller and a sandbox that share one fake clock.

The clock jumps from one due poll to the next, so what is measured is what the schedule decides,
exactly, whatever the machine's load. Used by the learned-schedule tests and by
``bench/poll_exact.py``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import httpx

from suno_mcp.domain.latency import Milestone
from suno_mcp.domain.models import MusicRequest, TaskRef
from suno_mcp.engine.poller import Poller, Timing
from suno_mcp.engine.schedule import latency_key
from suno_mcp.sandbox import SandboxHandle
from suno_mcp.upstream.families import TaskApi
from suno_mcp.upstream.retry import RetryPolicy
from suno_mcp.upstream.transport import Upstream
from tests.support.clock import FakeClock

MODEL = "chirp-v3-5"  # the profiles' reference model: no per-model factor
LOOP_S = 5.0  # the vendor's example loop: one fetch every 5 s until complete
RETRY = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02, rng=random.Random(1))


@dataclass(frozen=True)
class Song:
    """One song as the poller followed it; times are seconds after its submit."""

    polls: list[float]
    playable_s: float  # when the poller saw it playable (complete_s if never before)
    complete_s: float
    true_playable_s: float  # when the sandbox made it so
    true_complete_s: float

    @property
    def loop_fetches(self) -> int:
        """What the vendor's fixed loop spends on it: a fetch every 5 s until complete."""
        return math.ceil(self.true_complete_s / LOOP_S)


class Songs:
    """One poller (told ``timing`` only) and one sandbox on ``clock``, one song after another."""

    def __init__(
        self, sandbox: SandboxHandle, http: httpx.AsyncClient, clock: FakeClock, timing: Timing
    ) -> None:
        self.sandbox, self.clock = sandbox, clock
        self.api = TaskApi(Upstream(http, base_url=sandbox.url, api_key="k", retry=RETRY))
        self.poller = Poller({"task": self.api}, timing=timing, clock=clock, max_requests_per_second=math.inf)

    async def song(self, n: int) -> Song:
        """Submit song ``n`` and follow it, someone waiting on it, until it is complete."""
        task = await self.api.submit_music(MusicRequest(gpt_description_prompt=f"song {n}", mv=MODEL))
        ref = TaskRef(task.task_id, "task", "music", model=MODEL)
        started, polls, playable = self.clock.now, [], None
        with self.poller.waiting(ref, started=started, current=task):
            while (followed := self.poller.followed(task.task_id)) is not None:
                if playable is None and followed.task is not None and followed.task.status.playable:
                    playable = self.clock.now - started
                self.clock.now = self.poller.next_due()
                if await self.poller.step(self.clock.now):
                    polls.append(self.clock.now - started)
        timeline = self.sandbox.state.timeline(task.task_id)
        assert timeline.first_playable_s is not None
        assert timeline.completed_s is not None
        complete = self.clock.now - started
        return Song(polls, playable or complete, complete, timeline.first_playable_s, timeline.completed_s)

    def median(self, milestone: Milestone) -> float:
        """The learned median time of ``milestone`` for the songs' model."""
        window = self.poller.latency.window(
            latency_key(TaskRef("x", "task", "music", model=MODEL)), milestone
        )
        assert window is not None
        return window.median
