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
import statistics
from dataclasses import dataclass

import anyio
import httpx

from bench.poll import PROFILES, quantile
from suno_mcp.engine.poller import Timing
from suno_mcp.sandbox import SandboxConfig, run_sandbox
from tests.support.clock import FakeClock
from tests.support.songs import Songs

COLD_SONGS = 2


@dataclass(frozen=True)
class Song:
    playable: float  # seen / true
    complete: float
    fetches: int
    fixed: int  # the fixed loop's fetches for it


async def songs_in_a_row(
    profile: str, count: int, seed: int, timing: Timing, steady: tuple[float, float] = (30.0, 120.0)
) -> list[Song]:
    clock = FakeClock(1000.0)
    preview_s, complete_s = steady
    config = SandboxConfig(
        speed=1.0,
        clip_seconds=2.0,
        seed=seed,
        profile=profile,
        preview_after_s=preview_s,
        complete_after_s=complete_s,
    )
    async with run_sandbox(config, clock=clock) as sandbox, httpx.AsyncClient() as http:
        songs = Songs(sandbox, http, clock, timing)
        followed = [await songs.song(n) for n in range(count)]
    return [
        Song(
            s.playable_s / s.true_playable_s,
            s.complete_s / s.true_complete_s,
            len(s.polls),
            s.loop_fetches,
        )
        for s in followed
    ]


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
