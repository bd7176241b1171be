"""The learned schedule polls where past tasks landed and spends no more fetches than the fixed
loop: driven step by step on a made-up clock, with a task whose times are given."""

from __future__ import annotations

import math

from suno_mcp.domain.latency import LatencyModel
from suno_mcp.domain.models import Status, Task, TaskRef
from suno_mcp.engine.schedule import Schedule, Timing, Watch

REF = TaskRef("t1", "task", "music", model="m")
KEY = ("task", "music", "m")


def _model(pairs: list[tuple[float, float]]) -> LatencyModel:
    latency = LatencyModel(prior_playable_s=30.0, prior_complete_s=120.0, prior_lyrics_s=10.0)
    for playable, complete in pairs:
        latency.observe(KEY, "playable", playable)
        latency.observe(KEY, "complete", complete)
        latency.observe_pair(KEY, playable, complete)
    return latency


def _follow(latency: LatencyModel, playable_s: float, complete_s: float) -> list[float]:
    """The ages at which one task (playable, then complete, at these times) is polled."""
    schedule = Schedule(Timing(), latency)
    watch = Watch.new(REF, started=0.0, current=None, now=0.0)
    watch.waiters = 1
    schedule.plan(watch, 0.0)
    polls: list[float] = []
    while len(polls) < 200:
        now = watch.next_at
        polls.append(now)
        watch.fetches += 1
        status = (
            Status.COMPLETE
            if now >= complete_s
            else Status.STREAMING
            if now >= playable_s
            else Status.PENDING
        )
        task = Task(task_id="t1", api="task", status=status, kind="music")
        schedule.learn(watch, task, now)
        watch.task, watch.fetched_at = task, now
        if status is Status.COMPLETE:
            return polls
        schedule.plan(watch, now)
    raise AssertionError("never saw the task complete")


def test_a_learned_task_is_seen_within_a_few_percent_for_no_more_fetches_than_the_fixed_loop() -> None:
    latency = _model([(28.0, 110.0), (31.0, 125.0), (30.0, 118.0), (33.0, 130.0)])
    polls = _follow(latency, playable_s=30.5, complete_s=121.0)
    seen_playable = min(p for p in polls if p >= 30.5)
    assert seen_playable <= 30.5 * 1.05
    assert polls[-1] <= 121.0 * 1.05
    assert len(polls) <= math.ceil(121.0 / 5.0)


def test_a_gap_where_no_task_ever_landed_is_not_polled() -> None:
    # Two clusters: previews at ~15 s or ~45 s, never in between.
    latency = _model([(15.0, 60.0), (45.0, 200.0), (14.0, 58.0), (46.0, 205.0), (16.0, 62.0), (44.0, 195.0)])
    polls = _follow(latency, playable_s=45.0, complete_s=200.0)
    assert not [p for p in polls if 22.0 < p < 35.0]
    assert not [p for p in polls if 80.0 < p < 150.0]  # a slow preview: its final is a slow one
    assert len(polls) <= math.ceil(200.0 / 5.0)
