"""How long this upstream takes, learned from the tasks it has finished.

For every (API family, kind, model) the poller records when each task was first seen
playable and complete, as seconds after its submit; the ledger keeps them, so what was
learned survives a restart. From the most recent samples the model reads where the next
task's milestone will most likely land: a :class:`Window` made of one stretch per cluster of
samples (an upstream with two speeds gets two stretches and nothing between them).

One sample is enough to start. Each stretch spans its cluster's centre plus or minus
:data:`COVER` spreads (in log time); the spread is the cluster's own, pulled towards a prior
spread (:data:`PRIOR_SPREAD`, worth :data:`PRIOR_WEIGHT` samples) while few tasks agree, so the
window is wide after one task and narrows as more agree. An upstream that changes speed starts
a cluster of its own at the new times, and the old one ages out after :data:`KEEP` tasks.

Each task that is seen reaching both also gives how many times its preview time the final took
(:meth:`LatencyModel.observe_ratio`; the ledger keeps both times of a task, so this too
survives a restart). That ratio bounds the final from the
preview: a task whose preview has not come by ``t`` will not finish before ``t`` times the
ratio's low edge, and once its preview is seen, its final lands in the stretch that preview
implies (an upstream with two speeds tells them apart by the preview).

The configured expectations are only the prior that progress messages quote until this
upstream's own times are known.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, Literal

from suno_mcp.domain.models import ApiFamily, TaskKind

Milestone = Literal["playable", "complete"]
LatencyKey = tuple[ApiFamily, TaskKind, str | None]

# Samples kept per key and milestone: the most recent ones, so a change of speed wins within KEEP tasks.
KEEP = 12
# Two neighbouring samples further apart than this (log seconds, ~1.42x) belong to separate clusters.
SPLIT = 0.35
# The spread (log seconds) assumed of a cluster before its samples say otherwise, and how many
# samples that assumption is worth: one sample alone gives a stretch of about 0.5x-2x its time.
PRIOR_SPREAD = 0.2
PRIOR_WEIGHT = 0.25
# A stretch covers this many predicted spreads either side of its cluster's centre (~98%).
COVER = 2.3


@dataclass(frozen=True)
class Window:
    """Where a milestone usually lands, in seconds after the submit: ``stretches`` in time order,
    ``low``/``high`` the first one's start and the last one's end."""

    low: float
    median: float
    high: float
    samples: int
    stretches: tuple[tuple[float, float], ...] = ()

    def stretch_after(self, seconds: float) -> tuple[float, float] | None:
        """The stretch ``seconds`` falls in, or the next one after it; None past the last."""
        for low, high in self.stretches:
            if seconds < high:
                return low, high
        return None


def clusters(logs: list[float]) -> list[list[float]]:
    """Sorted log times split wherever two neighbours are more than :data:`SPLIT` apart."""
    groups: list[list[float]] = []
    for value in sorted(logs):
        if groups and value - groups[-1][-1] <= SPLIT:
            groups[-1].append(value)
        else:
            groups.append([value])
    return groups


def stretch(cluster: list[float]) -> tuple[float, float]:
    """The log-time span one cluster's next task most likely lands in (see the module's text)."""
    n = len(cluster)
    centre = statistics.fmean(cluster)
    squares = sum((x - centre) ** 2 for x in cluster)
    spread = math.sqrt((PRIOR_WEIGHT * PRIOR_SPREAD**2 + squares) / (PRIOR_WEIGHT + n - 1))
    half = COVER * spread * math.sqrt(1 + 1 / n)
    return min(centre - half, cluster[0]), max(centre + half, cluster[-1])


def stretches(samples: list[float]) -> tuple[tuple[float, float], ...]:
    """Every cluster's stretch in seconds, overlapping ones merged, in time order."""
    merged: list[tuple[float, float]] = []
    for low, high in sorted(stretch(c) for c in clusters([math.log(s) for s in samples])):
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return tuple((math.exp(low), math.exp(high)) for low, high in merged)


class LatencyModel:
    """Recent milestone times per key, and the windows they imply."""

    def __init__(self, *, prior_playable_s: float, prior_complete_s: float, prior_lyrics_s: float) -> None:
        self._prior = {"playable": prior_playable_s, "complete": prior_complete_s}
        self._prior_lyrics = prior_lyrics_s
        self._samples: dict[tuple[LatencyKey, Milestone], deque[float]] = defaultdict(
            lambda: deque(maxlen=KEEP)
        )
        self._windows: dict[tuple[LatencyKey, Milestone], Window] = {}
        self._ratios: dict[LatencyKey, deque[float]] = defaultdict(lambda: deque(maxlen=KEEP))
        self._ratio_spans: dict[LatencyKey, tuple[float, float]] = {}

    def observe(self, key: LatencyKey, milestone: Milestone, seconds: float) -> None:
        """One task reached ``milestone`` ``seconds`` after its submit."""
        if seconds > 0:
            self._samples[(key, milestone)].append(seconds)
            self._windows.pop((key, milestone), None)

    def observe_task(self, key: LatencyKey, playable_s: float | None, complete_s: float | None) -> None:
        """One task's milestone times as the ledger kept them (either may be unknown)."""
        if playable_s is not None:
            self.observe(key, "playable", playable_s)
        if complete_s is not None:
            self.observe(key, "complete", complete_s)
            if playable_s:
                self.observe_ratio(key, complete_s / playable_s)

    def observe_ratio(self, key: LatencyKey, ratio: float) -> None:
        """One task took ``ratio`` times its preview time to finish."""
        if ratio >= 1:
            self._ratios[key].append(ratio)
            self._ratio_spans.pop(key, None)

    def ratio(self, key: LatencyKey) -> tuple[float, float] | None:
        """Where final over preview time lands (never below 1), or None before any task said."""
        found = self._ratio_spans.get(key)
        if found is None and self._ratios.get(key):
            spans = stretches(list(self._ratios[key]))
            found = self._ratio_spans[key] = (max(1.0, spans[0][0]), spans[-1][1])
        return found

    def window(self, key: LatencyKey, milestone: Milestone) -> Window | None:
        """The learned window for this key, or None while no task has been seen reaching it."""
        found = self._windows.get((key, milestone))
        if found is not None:
            return found
        samples = self._samples.get((key, milestone))
        if not samples:
            return None
        spans = stretches(list(samples))
        found = Window(
            low=spans[0][0],
            median=statistics.median(samples),
            high=spans[-1][1],
            samples=len(samples),
            stretches=spans,
        )
        self._windows[(key, milestone)] = found
        return found

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
