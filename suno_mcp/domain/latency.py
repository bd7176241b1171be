"""How long this upstream takes, learned from the tasks it has finished.

For every (API family, kind, model) the poller records when each task was first seen
playable and complete, as seconds after its submit; the ledger keeps them, so what was
learned survives a restart. The window where the next milestone usually lands is read
off the most recent samples with quantiles, which an outlier or two cannot move and a
real shift (a faster model, a slow evening) moves within about half a window of tasks.

Until a key has enough samples there is no window: the poller then assumes nothing
about the latency. The configured expectations are only the prior that progress
messages quote until this upstream's own times are known.
"""

from __future__ import annotations

import statistics
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, Literal

from suno_mcp.domain.models import ApiFamily, TaskKind

Milestone = Literal["playable", "complete"]
LatencyKey = tuple[ApiFamily, TaskKind, str | None]

# Samples kept per key and milestone, and how many make a window worth trusting.
KEEP = 12
MIN_SAMPLES = 4
# The window's edges, as quantiles of the samples, widened a little each way.
LOW_Q, HIGH_Q = 0.1, 0.9
LOW_MARGIN, HIGH_MARGIN = 0.1, 0.1


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

    def observe(self, key: LatencyKey, milestone: Milestone, seconds: float) -> None:
        """One task reached ``milestone`` ``seconds`` after its submit."""
        if seconds > 0:
            self._samples[(key, milestone)].append(seconds)

    def window(self, key: LatencyKey, milestone: Milestone) -> Window | None:
        """The learned window for this key, or None while too few tasks have been seen."""
        samples = self._samples.get((key, milestone))
        if not samples or len(samples) < MIN_SAMPLES:
            return None
        ordered = sorted(samples)
        cuts = statistics.quantiles(ordered, n=10, method="inclusive")
        low, high = cuts[int(LOW_Q * 10) - 1], cuts[int(HIGH_Q * 10) - 1]
        return Window(
            low=low * (1 - LOW_MARGIN),
            median=statistics.median(ordered),
            high=high * (1 + HIGH_MARGIN),
            samples=len(ordered),
        )

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
