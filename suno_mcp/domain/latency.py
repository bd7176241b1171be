"""How long this upstream takes, learned from the tasks it has finished.

For every (API family, kind, model) the poller records when each task was first seen
playable and complete, as seconds after its submit; the ledger keeps them, so what was
learned survives a restart. The window where the next milestone usually lands is read
off the most recent samples: one finished task already gives one, wide (a third each way),
and it narrows as more samples agree, to the samples' own spread and a tenth more.

A real shift (a faster model, a slow evening) moves it within :data:`SHIFT` tasks: when the
newest samples all land on one side outside the window the older ones made, the older ones
are forgotten. A lone outlier moves only the edge it stands at, and from ten samples on the
edges are quantiles, which an outlier or two cannot move.

The poller also reads the samples themselves (:meth:`LatencyModel.samples`: where past tasks
actually landed, gaps between clusters included) and the pairs of both milestones of one task
(:meth:`LatencyModel.finals_after`: what a task's final time was, given when its preview came).

Until a key has a sample there is no window: the poller then assumes nothing about the
latency. The configured expectations are only the prior that progress messages quote until
this upstream's own times are known.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from suno_mcp.domain.models import ApiFamily, TaskKind

Milestone = Literal["playable", "complete"]
LatencyKey = tuple[ApiFamily, TaskKind, str | None]

# Samples kept per key and milestone, and how many make a window worth trusting.
KEEP = 12
MIN_SAMPLES = 1
# The window's edges: the samples' extremes, or from QUANTILE_FROM samples on their quantiles,
# widened each way by a margin that starts at FIRST_MARGIN for one sample and shrinks towards
# MARGIN as more come (MARGIN + (FIRST_MARGIN - MARGIN) / n).
LOW_Q, HIGH_Q = 0.1, 0.9
QUANTILE_FROM = 10
MARGIN, FIRST_MARGIN = 0.1, 0.3
# The newest SHIFT samples all outside the older samples' window, on one side: the upstream
# changed speed, and only they are kept.
SHIFT = 3


@dataclass(frozen=True)
class Window:
    """Where a milestone usually lands, in seconds after the submit."""

    low: float
    median: float
    high: float
    samples: int


class LatencyModel:
    """Recent milestone times per key, and the windows they imply."""

    def __init__(self, *, prior_playable_s: float, prior_complete_s: float, prior_lyrics_s: float) -> None:
        self._prior = {"playable": prior_playable_s, "complete": prior_complete_s}
        self._prior_lyrics = prior_lyrics_s
        self._samples: dict[tuple[LatencyKey, Milestone], deque[float]] = defaultdict(
            lambda: deque(maxlen=KEEP)
        )
        # (playable, complete) of tasks that taught both; only in memory (the ledger keeps each
        # milestone on its own), so after a restart the schedule reads the finals alone.
        self._pairs: dict[LatencyKey, deque[tuple[float, float]]] = defaultdict(lambda: deque(maxlen=KEEP))

    def observe(self, key: LatencyKey, milestone: Milestone, seconds: float) -> None:
        """One task reached ``milestone`` ``seconds`` after its submit."""
        if seconds <= 0:
            return
        samples = self._samples[(key, milestone)]
        samples.append(seconds)
        if len(samples) > SHIFT:
            newest = list(samples)[-SHIFT:]
            before = _window(list(samples)[:-SHIFT])
            if before is not None and (
                all(s > before.high for s in newest) or all(s < before.low for s in newest)
            ):
                samples.clear()
                samples.extend(newest)
                self._pairs.pop(key, None)  # they paired the old speed's times

    def observe_pair(self, key: LatencyKey, playable_s: float, complete_s: float) -> None:
        """One task reached both milestones at these times (after :meth:`observe` of each)."""
        self._pairs[key].append((playable_s, complete_s))

    def samples(self, key: LatencyKey, milestone: Milestone) -> list[float]:
        """The recent times of ``milestone``, in order (empty while none is known)."""
        return sorted(self._samples.get((key, milestone)) or ())

    def finals_after(self, key: LatencyKey, low: float, high: float = math.inf) -> list[float]:
        """The final times of the tasks whose preview came between ``low`` and ``high`` seconds
        (a task not yet playable at ``low`` is one of them); empty when none is known."""
        return sorted(c for p, c in self._pairs.get(key, ()) if low < p <= high)

    def window(self, key: LatencyKey, milestone: Milestone) -> Window | None:
        """The learned window for this key, or None while no task has been seen."""
        return _window(self._samples.get((key, milestone)) or ())

    def typical(self, key: LatencyKey, milestone: Milestone) -> float:
        """The usual time to ``milestone``: learned when known, else the configured prior."""
        window = self.window(key, milestone)
        if window is not None:
            return window.median
        if key[1] == "lyrics":
            return self._prior_lyrics
        return self._prior[milestone]

    def snapshot(self) -> list[dict[str, Any]]:
        """What has been learned, for people to read (the suno://latency resource)."""
        rows = []
        for (key, milestone), samples in sorted(self._samples.items(), key=lambda item: str(item[0])):
            window = self.window(key, milestone)
            rows.append(
                {
                    "api": key[0],
                    "kind": key[1],
                    "model": key[2],
                    "milestone": milestone,
                    "samples": len(samples),
                    "median_s": None if window is None else round(window.median, 1),
                    "window_s": None if window is None else [round(window.low, 1), round(window.high, 1)],
                }
            )
        return rows


def spread(samples: int) -> float:
    """How far (a share, each way) a time may fall from where ``samples`` samples landed."""
    return MARGIN + (FIRST_MARGIN - MARGIN) / max(1, samples)


def _window(samples: Iterable[float]) -> Window | None:
    ordered = sorted(samples)
    n = len(ordered)
    if n < MIN_SAMPLES:
        return None
    if n >= QUANTILE_FROM:
        cuts = statistics.quantiles(ordered, n=10, method="inclusive")
        low, high = cuts[int(LOW_Q * 10) - 1], cuts[int(HIGH_Q * 10) - 1]
    else:
        low, high = ordered[0], ordered[-1]
    margin = spread(n)
    return Window(
        low=low * (1 - margin), median=statistics.median(ordered), high=high * (1 + margin), samples=n
    )
