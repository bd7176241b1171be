"""The poll schedule alone, on a fake clock: songs one after another on every sandbox profile.

``poll.py`` runs the whole service in real time at a sandbox speed, so a loaded machine makes its
polls late and moves its figures (on the shared 2-core machine, by tens of percent). Here the
sandbox and the poller share one fake clock that moves only from one due poll to the next: what
the schedule decides is all that is measured, exactly, and the same seed gives the same numbers.

Per profile: N songs in a row on a fresh poller (told only the defaults, never the profile), each
followed by someone waiting on it from submit to complete, as ``generate_music`` does. It prints,
over the cold songs (the first two) and the warm ones (from the third on), the medians and p95s of
(time the poller saw playable / complete) over (the sandbox's own time), and the fetches per song
beside the fixed 5 s loop's on the same songs (one fetch per 5 s until complete).

``--steady 14,33`` instead follows songs on a steady upstream with those preview and final times
and prints them one by one (issue 25's own table).

Usage: python bench/poll_exact.py [--songs 30] [--profiles steady,fast,...] [--seed 3] [--steady P,F]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
from dataclasses import dataclass

import anyio
import httpx

from bench.poll import PROFILES, quantile
from suno_mcp.domain.models import MusicRequest, TaskRef
from suno_mcp.engine.poller import Poller, Timing
from suno_mcp.sandbox import SandboxConfig, run_sandbox
from suno_mcp.upstream.families import TaskApi
from suno_mcp.upstream.retry import RetryPolicy
from suno_mcp.upstream.transport import Upstream

MODEL = "chirp-v3-5"
FIXED_EVERY_S = 5.0
COLD_SONGS = 2


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Song:
    playable: float  # seen / true
    complete: float
    fetches: int
    fixed: int  # the fixed loop's fetches for it


async def songs_in_a_row(
    profile: str, count: int, seed: int, timing: Timing, steady: tuple[float, float] = (30.0, 120.0)
) -> list[Song]:
    clock = Clock()
    preview_s, complete_s = steady
    config = SandboxConfig(
        speed=1.0,
        clip_seconds=2.0,
        seed=seed,
        profile=profile,
        preview_after_s=preview_s,
        complete_after_s=complete_s,
    )
    songs = []
    async with run_sandbox(config, clock=clock) as sandbox, httpx.AsyncClient() as http:
        retry = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02, rng=random.Random(1))
        api = TaskApi(Upstream(http, base_url=sandbox.url, api_key="k", retry=retry))
        poller = Poller({"task": api}, timing=timing, clock=clock, max_requests_per_second=math.inf)
        for n in range(count):
            task = await api.submit_music(MusicRequest(gpt_description_prompt=f"song {n}", mv=MODEL))
            ref = TaskRef(task.task_id, "task", "music", model=MODEL)
            started, fetches, seen = clock.now, 0, None
            with poller.waiting(ref, started=started, current=task):
                while (followed := poller.followed(task.task_id)) is not None:
                    if seen is None and followed.task is not None and followed.task.status.playable:
                        seen = clock.now - started
                    clock.now = poller.next_due()
                    fetches += len(await poller.step(clock.now))
            done = clock.now - started
            timeline = sandbox.state.timeline(task.task_id)
            assert timeline.first_playable_s is not None
            assert timeline.completed_s is not None
            songs.append(
                Song(
                    (done if seen is None else seen) / timeline.first_playable_s,
                    done / timeline.completed_s,
                    fetches,
                    math.ceil(timeline.completed_s / FIXED_EVERY_S),
                )
            )
    return songs


def _pair(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} / {quantile(values, 0.95):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description="the poll schedule on a fake clock, songs in a row")
    parser.add_argument("--songs", type=int, default=30)
    parser.add_argument("--profiles", default=",".join(PROFILES))
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--steady",
        default=None,
        help="PREVIEW,FINAL: seconds of the steady profile, printed song by song (e.g. 14,33)",
    )
    args = parser.parse_args()
    timing = Timing()
    if args.steady is not None:
        preview_s, complete_s = (float(x) for x in args.steady.split(","))
        songs = anyio.run(songs_in_a_row, "steady", args.songs, args.seed, timing, (preview_s, complete_s))
        print(
            f"steady upstream, preview ~{preview_s:g} s, final ~{complete_s:g} s; one server, songs in a row"
        )
        print("| song | " + " | ".join(str(n + 1) for n in range(len(songs))) + " |")
        print("|---|" + "---|" * len(songs))
        print("| playable | " + " | ".join(f"{s.playable:.2f}" for s in songs) + " |")
        print("| complete | " + " | ".join(f"{s.complete:.2f}" for s in songs) + " |")
        print("| fetches | " + " | ".join(str(s.fetches) for s in songs) + " |")
        print("| fixed loop | " + " | ".join(str(s.fixed) for s in songs) + " |")
        return
    print(
        f"{args.songs} songs in a row per profile, fake clock; cold = songs 1-{COLD_SONGS}, warm = the rest; "
        "ratios seen/true, median / p95; fetches per song, ours v the fixed 5 s loop's"
    )
    print(
        "| profile | cold playable | cold complete | warm playable | warm complete | req cold | req warm | warm songs over fixed |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for profile in args.profiles.split(","):
        songs = anyio.run(songs_in_a_row, profile, args.songs, args.seed, timing)
        cold, warm = songs[:COLD_SONGS], songs[COLD_SONGS:]
        over = sum(s.fetches > s.fixed for s in warm)
        print(
            f"| {profile} | {_pair([s.playable for s in cold])} | {_pair([s.complete for s in cold])} "
            f"| {_pair([s.playable for s in warm])} | {_pair([s.complete for s in warm])} "
            f"| {statistics.mean(s.fetches for s in cold):.1f} v {statistics.mean(s.fixed for s in cold):.1f} "
            f"| {statistics.mean(s.fetches for s in warm):.1f} v {statistics.mean(s.fixed for s in warm):.1f} "
            f"| {over} of {len(warm)} |"
        )


if __name__ == "__main__":
    main()
