"""The learned schedule's rules, one at a time, on a Schedule driven by hand (no I/O, no clock)."""

from __future__ import annotations

import math

import pytest

from suno_mcp.domain.latency import LatencyKey, LatencyModel
from suno_mcp.domain.models import TaskRef
from suno_mcp.engine.schedule import STEP, Schedule, Timing, Watch

KEY: LatencyKey = ("task", "music", "m")
REF = TaskRef("t", "task", "music", model="m")


def model(playable: list[float], complete: list[float]) -> LatencyModel:
    latency = LatencyModel(prior_playable_s=30.0, prior_complete_s=120.0, prior_lyrics_s=10.0)
    for seconds in playable:
        latency.observe(KEY, "playable", seconds)
    for seconds in complete:
        latency.observe(KEY, "complete", seconds)
    return latency


def test_one_finished_task_is_enough_for_a_window() -> None:
    latency = model([30.0], [120.0])
    window = latency.window(KEY, "playable")
    assert window is not None
    assert window.low < 30.0 < window.high
    assert window.high / window.low < 4  # wide, but a window


def test_agreeing_tasks_narrow_the_window() -> None:
    one = model([30.0], [120.0]).window(KEY, "playable")
    six = model([29.0, 30.0, 31.0, 30.5, 29.5, 30.2], [120.0]).window(KEY, "playable")
    assert one is not None
    assert six is not None
    assert six.high / six.low < (one.high / one.low) ** 0.5


def test_two_speeds_give_two_stretches_and_nothing_polled_between_them() -> None:
    latency = model([15.0, 16.0, 14.5, 45.0, 44.0, 46.0], [60.0, 200.0])
    window = latency.window(KEY, "playable")
    assert window is not None
    assert len(window.stretches) == 2
    (_, first_end), (second_start, _) = window.stretches
    schedule = Schedule(Timing(), latency)
    watch = Watch.new(REF, started=0.0, current=None, now=0.0)
    watch.waiters = 1
    gap = schedule.gap(watch, first_end, window)
    assert first_end + gap == pytest.approx(second_start)


def test_inside_a_stretch_polls_come_a_step_of_the_elapsed_time_apart_less_the_round_trip() -> None:
    latency = model([29.0, 30.0, 31.0, 30.5, 29.5, 30.2], [300.0, 310.0])
    schedule = Schedule(Timing(), latency)
    window = latency.window(KEY, "playable")
    assert window is not None
    watch = Watch.new(REF, started=0.0, current=None, now=0.0)
    watch.waiters = 1
    assert schedule.gap(watch, 30.0, window) == pytest.approx(30.0 * STEP - 30.0)
    for _ in range(50):
        schedule.took(0.5)
    assert schedule.round_trip == pytest.approx(0.5, rel=0.01)
    assert schedule.gap(watch, 30.0, window) == pytest.approx(30.0 * STEP - 30.0 - schedule.round_trip)


@pytest.mark.parametrize("complete_at", [40.0, 55.0, 80.0])
def test_once_the_final_is_learned_no_task_costs_more_than_the_five_second_loop(complete_at: float) -> None:
    # Previews spread widely (a window polls at 7% steps would cost more than the loop pays for).
    latency = model([6.0, 9.0, 14.0, 20.0], [38.0, 45.0, 52.0, 60.0])
    schedule = Schedule(Timing(), latency)
    watch = Watch.new(REF, started=0.0, current=None, now=0.0)
    watch.waiters = 1
    now, fetches = 0.0, 0
    schedule.plan(watch, now)
    while now < complete_at:
        now = watch.next_at
        fetches += 1
        watch.fetched_at, watch.fetches = now, fetches
        schedule.plan(watch, now)
    assert fetches <= math.ceil(complete_at / 5.0)
