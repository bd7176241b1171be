"""Songs in a row against the sandbox, on a fake clock both share: from the third song on the
poller follows what it learned (no look before the usual window, as few fetches as the vendor's
fixed 5 s loop or fewer, both milestones seen within 10%), and an upstream that changes speed
mid-run moves what it learned, whichever way it goes. What was learned, the ratio of the final's
time to the preview's included, comes back from the ledger after a restart."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from suno_mcp.domain.latency import KEEP, LatencyKey, LatencyModel
from suno_mcp.domain.models import MusicRequest
from suno_mcp.engine.poller import Timing
from suno_mcp.sandbox import SandboxConfig, run_sandbox
from suno_mcp.service.wiring import open_service
from suno_mcp.settings import load_settings
from tests.support.clock import FakeClock
from tests.support.songs import MODEL, RETRY, Songs

TIMING = Timing()  # the defaults: a first look 3 s after the submit, the vendor-like prior


@pytest.mark.parametrize("seed", [3, 7])
async def test_from_the_third_song_a_steady_upstream_is_polled_on_what_was_learned(seed: int) -> None:
    clock = FakeClock(1000.0)
    config = SandboxConfig(speed=1.0, clip_seconds=2.0, seed=seed)  # steady: ~30 s / ~120 s
    async with run_sandbox(config, clock=clock) as sandbox, httpx.AsyncClient() as http:
        run = Songs(sandbox, http, clock, TIMING)
        songs = [await run.song(n) for n in range(5)]
    first = songs[0]
    assert first.polls[0] == pytest.approx(TIMING.first_poll_s)  # cold: a look soon after the submit
    for song in songs[2:]:
        # Learned: nothing polled long before the preview usually comes, and no more than the loop.
        assert song.polls[0] >= 0.6 * song.true_playable_s, song.polls
        assert len(song.polls) <= song.loop_fetches, (song.polls, song.loop_fetches)
        assert len(song.polls) < len(first.polls)
        assert song.true_playable_s <= song.playable_s <= 1.10 * song.true_playable_s, song
        assert song.true_complete_s <= song.complete_s <= 1.10 * song.true_complete_s, song


@pytest.mark.parametrize(("before", "after"), [("fast", "slow"), ("slow", "fast")])
async def test_an_upstream_that_changes_speed_mid_run_moves_what_was_learned(before: str, after: str) -> None:
    clock = FakeClock(1000.0)
    config = SandboxConfig(speed=1.0, clip_seconds=2.0, seed=5, profile=before)
    async with run_sandbox(config, clock=clock) as sandbox, httpx.AsyncClient() as http:
        run = Songs(sandbox, http, clock, TIMING)
        for n in range(6):
            await run.song(n)
        learned = {m: run.median(m) for m in ("playable", "complete")}
        answer = await http.post(f"{sandbox.url}/_sandbox/profile", json={"profile": after})
        assert answer.json()["profile"] == after
        # As many songs as the model keeps samples: the old speed's have then all aged out.
        songs = [await run.song(10 + n) for n in range(KEEP)]
        moved = {m: run.median(m) for m in ("playable", "complete")}
    true = {
        "playable": sorted(s.true_playable_s for s in songs)[len(songs) // 2],
        "complete": sorted(s.true_complete_s for s in songs)[len(songs) // 2],
    }
    for milestone in ("playable", "complete"):
        assert abs(learned[milestone] - true[milestone]) > 0.5 * true[milestone]  # the two really differ
        assert abs(moved[milestone] - true[milestone]) <= 0.3 * true[milestone], (milestone, moved, true)
    # The last songs are followed on the new times: each seen within 25% and for no more than the loop.
    for song in songs[-3:]:
        assert song.complete_s <= 1.25 * song.true_complete_s, song
        assert len(song.polls) <= song.loop_fetches + 1, (song.polls, song.loop_fetches)


def learned(latency: LatencyModel) -> tuple[float, float, float, float]:
    """The learned playable and complete medians and the final-over-preview ratio's span (low, high)."""
    key: LatencyKey = ("task", "music", MODEL)
    playable, complete, ratio = (
        latency.window(key, "playable"),
        latency.window(key, "complete"),
        latency.ratio(key),
    )
    assert playable is not None
    assert complete is not None
    assert ratio is not None
    return playable.median, complete.median, *ratio


async def test_what_was_learned_comes_back_after_a_restart_with_both_times_of_each_task(
    tmp_path: Path,
) -> None:
    speed = 60.0  # steady: ~0.5 s / ~2 s of real time
    config = SandboxConfig(speed=speed, clip_seconds=2.0)
    timing = Timing().scaled(speed)
    async with run_sandbox(config) as sandbox:
        settings = load_settings(
            environ={}, api_key="k", base_url=sandbox.url, data_dir=tmp_path, max_requests_per_second=1000.0
        )
        async with open_service(settings, timing=timing, retry=RETRY, sandbox=True) as service:
            request = MusicRequest(gpt_description_prompt="a song to learn from", mv=MODEL)
            record = (await service.submit_music(request, wait_s=0)).record
            assert record.task_id is not None
            with anyio.fail_after(30):
                while not record.status.finished:
                    record = (await service.status(record.task_id, wait_s=5)).record
            before = learned(service.poller.latency)
        async with open_service(settings, timing=timing, retry=RETRY, sandbox=True) as service:
            after = learned(service.poller.latency)
    assert after == pytest.approx(before)
