"""Latency profiles: how long the sandbox's upstream takes, drawn once per task.

The server is told one expectation (the ``steady`` numbers, preview ~30 s and final ~120 s);
a profile lets the sandbox behave differently without telling it, so the poller meets an
upstream that is faster, slower, spread out or split in two, the way the vendor's queue moves
with the model and the time of day.

A profile is a weighted mixture of *modes*. Each task (both clips of a music submit, or one
lyrics job) draws one mode and one preview/final time from it; each clip then gets only a small
jitter of its own, so the two clips of a task land near each other, as Suno's do. Numbers are
model seconds for ``chirp-v3-5``; with ``by_model`` the draw is scaled by :data:`MODEL_FACTORS`
(newer models render faster). Speed still applies on top: real seconds = model seconds / speed.

``steady`` is the sandbox's original behaviour: the config's own ``preview_after_s`` /
``complete_after_s`` / ``lyrics_after_s``, no spread between tasks, +-10% per clip, and no
per-model factor, so tests written against those numbers keep their exact windows.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TypeVar

DEFAULT_PROFILE = "steady"

_T = TypeVar("_T")

# A final render always takes at least this multiple of its preview time: audio streams before
# it is finished, never after.
_MIN_COMPLETE_OVER_PREVIEW = 1.3
# No draw, however far in a tail, makes a preview playable sooner than this.
_MIN_PREVIEW_S = 1.0

#: Relative render time per model (``chirp-v3-5`` = 1). Newer models are faster; the oldest a
#: bit slower. A model name is matched by its longest known prefix after dropping the
#: ``-upload`` / ``-tau`` suffixes, so ``chirp-v4-5-plus`` renders like ``chirp-v4-5``.
MODEL_FACTORS: dict[str, float] = {
    "chirp-v3-0": 1.2,
    "chirp-v3": 1.2,
    "chirp-v3-5": 1.0,
    "chirp-v4": 0.6,
    "chirp-v4-5": 0.4,
    "chirp-v5": 0.35,
}


def model_factor(model: str) -> float:
    """How much longer (>1) or shorter (<1) ``model`` takes than chirp-v3-5."""
    name = model.removesuffix("-upload").removesuffix("-tau")
    best = ""
    for known in MODEL_FACTORS:
        if (name == known or name.startswith(known + "-")) and len(known) > len(best):
            best = known
    return MODEL_FACTORS[best] if best else 1.0


@dataclass(frozen=True)
class Spread:
    """A log-normal draw around ``median`` (``sigma`` in log space), clamped to ``[lo, hi]``."""

    median: float
    sigma: float = 0.0
    lo: float = 0.0
    hi: float = math.inf

    def draw(self, rng: random.Random) -> float:
        """One value; always consumes one normal variate so the stream stays aligned."""
        z = rng.gauss(0.0, 1.0)
        return min(self.hi, max(self.lo, self.median * math.exp(self.sigma * z)))


@dataclass(frozen=True)
class Mode:
    """One cluster of a profile: how often it happens and the times its tasks take."""

    weight: float
    preview: Spread
    complete: Spread


@dataclass(frozen=True)
class TaskLatency:
    """The times one task drew, in model seconds after its submit (before per-clip jitter)."""

    preview_s: float
    complete_s: float


@dataclass(frozen=True)
class LatencyProfile:
    """A named way of taking time: modes for music, modes for lyrics, per-clip jitter."""

    name: str
    description: str
    modes: tuple[Mode, ...]
    lyrics: tuple[tuple[float, Spread], ...]
    clip_jitter: float = 0.03
    by_model: bool = True

    def draw_task(self, rng: random.Random, model: str) -> TaskLatency:
        """The preview and final times of one music task rendered by ``model``."""
        mode = _pick(rng, [(m.weight, m) for m in self.modes])
        factor = model_factor(model) if self.by_model else 1.0
        preview = max(_MIN_PREVIEW_S, mode.preview.draw(rng) * factor)
        complete = max(mode.complete.draw(rng) * factor, preview * _MIN_COMPLETE_OVER_PREVIEW)
        return TaskLatency(preview, complete)

    def draw_lyrics(self, rng: random.Random) -> float:
        """How long one lyrics task takes."""
        return max(0.1, _pick(rng, list(self.lyrics)).draw(rng))


def _pick(rng: random.Random, weighted: list[tuple[float, _T]]) -> _T:
    # One uniform per pick, whatever the weights, so adding a mode shifts nothing upstream.
    roll = rng.random() * sum(w for w, _ in weighted)
    for weight, item in weighted:
        roll -= weight
        if roll < 0:
            return item
    return weighted[-1][1]


def steady_profile(preview_after_s: float, complete_after_s: float, lyrics_after_s: float) -> LatencyProfile:
    """The original behaviour: the given times for every task, +-10% per clip, any model."""
    return LatencyProfile(
        name="steady",
        description=(
            f"every task previews at ~{preview_after_s:g} s and completes at ~{complete_after_s:g} s "
            "(+-10% per clip, the same for every model): what the server is told to expect"
        ),
        modes=(Mode(1.0, Spread(preview_after_s), Spread(complete_after_s)),),
        lyrics=((1.0, Spread(lyrics_after_s)),),
        clip_jitter=0.1,
        by_model=False,
    )


#: The named profiles besides ``steady`` (whose numbers come from the config).
PROFILES: dict[str, LatencyProfile] = {
    p.name: p
    for p in (
        LatencyProfile(
            name="fast",
            description="a quiet queue: previews at ~8 s, finals at ~25 s",
            modes=(Mode(1.0, Spread(8.0, 0.15, 5.0, 12.0), Spread(25.0, 0.15, 16.0, 40.0)),),
            lyrics=((1.0, Spread(2.0, 0.2, 1.0, 4.0)),),
        ),
        LatencyProfile(
            name="typical",
            description="previews at 20-45 s, finals at 1.5-3 min (median ~30 s / ~120 s)",
            modes=(Mode(1.0, Spread(30.0, 0.2, 18.0, 50.0), Spread(120.0, 0.22, 80.0, 200.0)),),
            lyrics=((1.0, Spread(5.0, 0.25, 2.5, 12.0)),),
        ),
        LatencyProfile(
            name="slow",
            description="a busy queue: previews at 60-90 s, finals at 4-5 min",
            modes=(Mode(1.0, Spread(75.0, 0.12, 60.0, 90.0), Spread(270.0, 0.06, 240.0, 300.0)),),
            lyrics=((1.0, Spread(15.0, 0.2, 8.0, 30.0)),),
        ),
        LatencyProfile(
            name="heavy-tail",
            description="most tasks quick (~20 s / ~60 s); about 1 in 8 takes 5-10 min",
            modes=(
                Mode(0.87, Spread(20.0, 0.2, 12.0, 35.0), Spread(60.0, 0.2, 40.0, 100.0)),
                Mode(0.13, Spread(60.0, 0.35, 30.0, 120.0), Spread(420.0, 0.2, 300.0, 600.0)),
            ),
            lyrics=((0.87, Spread(4.0, 0.2, 2.0, 8.0)), (0.13, Spread(40.0, 0.3, 20.0, 90.0))),
        ),
        LatencyProfile(
            name="bimodal",
            description="two clusters, half each: ~15 s / ~60 s and ~45 s / ~200 s",
            modes=(
                Mode(0.5, Spread(15.0, 0.08, 12.0, 19.0), Spread(60.0, 0.08, 50.0, 72.0)),
                Mode(0.5, Spread(45.0, 0.08, 37.0, 55.0), Spread(200.0, 0.08, 170.0, 240.0)),
            ),
            lyrics=((0.5, Spread(3.0, 0.1, 2.0, 4.0)), (0.5, Spread(10.0, 0.1, 8.0, 13.0))),
        ),
    )
}

#: Every profile name a config, the CLI or the admin endpoint accepts.
PROFILE_NAMES: tuple[str, ...] = (DEFAULT_PROFILE, *PROFILES)


def check_profile(name: str) -> None:
    """Raise ValueError naming the known profiles when ``name`` is not one of them."""
    if name not in PROFILE_NAMES:
        raise ValueError(f"unknown latency profile {name!r}; known: {', '.join(PROFILE_NAMES)}")


def resolve_profile(
    name: str, *, preview_after_s: float, complete_after_s: float, lyrics_after_s: float
) -> LatencyProfile:
    """The profile called ``name``; ``steady`` is built from the given config times."""
    check_profile(name)
    if name == DEFAULT_PROFILE:
        return steady_profile(preview_after_s, complete_after_s, lyrics_after_s)
    return PROFILES[name]
