"""How long a queue of requests takes to pass the limiter, against the pacing alone.

``n`` requests queue for a turn while a Retry-After holds the limiter back (as after a 429); once the
hold ends they pass one by one, and the pacing alone takes (n - 1) / rate from there. The table shows
the measured time from the end of the hold until the last turn was granted, and the ratio.
Goal: ratio <= 1.10 for 800 queued requests.

``--arriving`` measures another case: the n requests arrive together at a free limiter, and the time
runs from the first grant, while the event loop is still starting the other requests' tasks (that
start-up, not the limiter, is most of what goes past the pacing there).

``--deadlines`` gives every request a deadline far away (as submits and reads carry), which makes the
limiter check that each one's turn comes in time. ``--old`` runs the limiter of commit ce66fc9 too
(loaded from git: the class alone, out of that commit's poller module), which woke every waiter on each
grant; it is slow, so ``--old-up-to`` caps the queue sizes it is given.

Usage: python bench/limiter.py [--counts 100,400,800,1600] [--rates 1000,4000] [--deadlines]
                               [--arriving] [--old] [--old-up-to 800] [--repeat 1]
"""

from __future__ import annotations

import argparse
import ast
import heapq
import itertools
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Protocol

import anyio

from suno_mcp.engine.limiter import WAITED, AdaptiveLimiter

OLD_COMMIT = "ce66fc9"
OLD_PATH = "suno_mcp/engine/poller.py"
GOAL = 1.10
# Long enough for every request to be queued before the hold ends (checked).
HOLD_S = 0.5


class Limiter(Protocol):
    rate: float

    async def acquire(
        self, priority: int = WAITED, *, due: float = 0.0, deadline: float | None = None
    ) -> bool: ...

    def rate_limited(self, retry_after: float | None) -> None: ...


def load_old_limiter() -> type[Any]:
    """The AdaptiveLimiter class of commit ce66fc9, compiled from git on its own."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{OLD_COMMIT}:{OLD_PATH}"], cwd=root, check=True, capture_output=True, text=True
    ).stdout
    tree = ast.parse(source)
    wanted = {"AdaptiveLimiter", "CUT_EVERY_S", "READ", "WAITED", "IDLE"}
    kept: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in wanted:
            kept.append(node)
        elif isinstance(node, ast.Assign):
            names = {t.id for t in node.targets if isinstance(t, ast.Name)}
            names |= {
                e.id
                for t in node.targets
                if isinstance(t, ast.Tuple)
                for e in t.elts
                if isinstance(e, ast.Name)
            }
            if names & wanted:
                kept.append(node)
    module = ast.Module(body=kept, type_ignores=[])
    namespace: dict[str, Any] = {
        "__name__": "old_limiter",
        "anyio": anyio,
        "heapq": heapq,
        "itertools": itertools,
        "math": math,
        "time": time,
    }
    exec(compile(module, f"{OLD_COMMIT}:{OLD_PATH}", "exec"), namespace)  # noqa: S102 (our own history)
    limiter: type[Any] = namespace["AdaptiveLimiter"]
    return limiter


async def measure(make: type[Any], count: int, rate: float, deadlines: bool, arriving: bool) -> float:
    """Seconds from the start (the hold's end, or the first grant) until the last of ``count`` has a turn."""
    limiter: Limiter = make(rate, start=rate)
    far = time.monotonic() + 3600.0 if deadlines else None
    grants: list[float] = []

    async def one() -> None:
        assert await limiter.acquire(WAITED, deadline=far)
        grants.append(time.monotonic())

    async with anyio.create_task_group() as tg:
        if arriving:
            for _ in range(count):
                tg.start_soon(one)
        else:
            limiter.rate_limited(retry_after=HOLD_S)
            limiter.rate = rate  # the hold, without the halving that comes with a 429
            start = time.monotonic() + HOLD_S  # no later than the limiter's own reading
            for _ in range(count):
                tg.start_soon(one)
            await anyio.wait_all_tasks_blocked()
            if time.monotonic() >= start or grants:
                raise SystemExit(f"queueing {count} requests took longer than the {HOLD_S} s hold")
    assert len(grants) == count
    return grants[-1] - (grants[0] if arriving else start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--counts", default="100,400,800,1600")
    parser.add_argument("--rates", default="1000,4000")
    parser.add_argument("--deadlines", action="store_true")
    parser.add_argument("--arriving", action="store_true")
    parser.add_argument("--old", action="store_true", help="also run the limiter of commit ce66fc9")
    parser.add_argument("--old-up-to", type=int, default=800)
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the median is shown")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]
    rates = [float(r) for r in args.rates.split(",")]
    limiters: list[tuple[str, type[Any]]] = [("new", AdaptiveLimiter)]
    if args.old:
        limiters.insert(0, (f"old {OLD_COMMIT}", load_old_limiter()))

    scenario = "arriving together at a free limiter" if args.arriving else "queued behind a hold"
    print(f"{scenario}; deadlines: {'yes' if args.deadlines else 'no'}; median of {args.repeat} run(s)")
    print(f"{'limiter':<12} {'rate/s':>7} {'queued':>7} {'pacing s':>9} {'measured s':>11} {'ratio':>7}")
    failed = False
    for name, make in limiters:
        for rate in rates:
            for count in counts:
                if name != "new" and count > args.old_up_to:
                    continue
                pacing = (count - 1) / rate
                runs = [
                    anyio.run(measure, make, count, rate, args.deadlines, args.arriving)
                    for _ in range(args.repeat)
                ]
                measured = statistics.median(runs)
                ratio = measured / pacing
                if name == "new" and count == 800 and ratio > GOAL:
                    failed = True
                print(f"{name:<12} {rate:>7.0f} {count:>7} {pacing:>9.3f} {measured:>11.3f} {ratio:>7.2f}")
    print(f"goal: 800 queued requests pass in the pacing time x {GOAL:.2f} (new limiter)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
