"""When a followed task is polled next, and what its polls teach about the upstream's latency.

The schedule assumes nothing about the upstream's latency until it has learned it
(:mod:`suno_mcp.domain.latency`): from the submit, the gap between polls grows with the time
elapsed (a share, :data:`GROWTH`, of it), so the overshoot past the moment audio became playable
stays a bounded share of the real latency, whatever it is. Once one task of a (family, kind,
model) has reached a milestone, the next ones are polled on its window: not at all before a
stretch of it, every :data:`STEP` of the elapsed time inside one (a poll at a stretch's end too),
straight on to the next stretch, and growing again past the last.

Once the final file's window is known, a task never costs more fetches than the vendor's fixed
loop (one every :attr:`Timing.loop_s`) would for a task finishing at that window's start or later:
the fetches that loop would make by then may be spent as the preview needs, and after it one per
``loop_s``. When the preview's window needs more than that, its polls are spaced wider.

A :class:`Watch` is the poller's record of one followed task (:class:`Followed`, a copy of what others
may read of it); :class:`Schedule` sets its next poll and learns from its answers. Neither does I/O.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace
from typing import Literal

import anyio

from suno_mcp.domain.errors import SunoError
from suno_mcp.domain.latency import COVER, LatencyKey, LatencyModel, Milestone, Window
from suno_mcp.domain.models import Task, TaskRef

Goal = Literal["playable", "complete"]

# A fetch this recent (seconds) answers a read without another request.
FRESH_S = 2.0
# With no learned window, the next poll comes after this share of the time since the submit.
# The first playable audio is what a person waits for; final audio follows a preview they can
# already hear, so its polls are spaced wider (fewer requests, a later "complete").
GROWTH = {"playable": 0.2, "complete": 0.3}
# Just past a learned window (up to LATE_SPAN times its far edge) the gap grows more slowly:
# a task only a little slower than usual is still found soon.
LATE_GROWTH = 0.12
LATE_SPAN = 1.5
# Inside a learned stretch, each poll comes this multiple of the time elapsed after the one before:
# a milestone is then seen at most ~7% after it happened (~3.5% at the median).
STEP = 1.07
# A milestone's time is learned (as the geometric middle) only when the polls around it bracket
# it this tightly (a ratio): the schedule's own gaps stay inside it, a task first seen after a
# restart does not.
BRACKET = 2.0
# With a window to read it by, a bracket this wide still teaches (see Schedule._middle).
WIDE_BRACKET = 4.0
# How much each fetch's round trip moves the smoothed one.
ROUND_TRIP_WEIGHT = 0.2
# A task already there when its window opened is learned this factor before the window's start.
SOONER = 1.25
# Clock readings this close count as the same moment (a poll due at a stretch's start).
EPSILON_S = 1e-6
# A task nobody waits for is polled at most this often, as a share of its age.
IDLE_GROWTH = 0.5


@dataclass(frozen=True)
class Timing:
    """Time scales of the schedule. ``preview_s``/``complete_s``/``lyrics_s`` are only the
    prior (quoted in progress messages until this upstream's times are learned)."""

    preview_s: float = 30.0
    complete_s: float = 120.0
    lyrics_s: float = 10.0
    first_poll_s: float = 3.0
    fresh_s: float = FRESH_S
    min_gap_s: float = 1.0
    max_gap_s: float = 15.0
    idle_max_gap_s: float = 60.0
    horizon_s: float = 30 * 60.0  # stop watching a task nobody waits for after this
    stall_s: float = 30 * 60.0  # a task whose status has not moved for this long is stalled
    progress_every_s: float = 5.0
    # The vendor's example loop fetches every this many seconds: a learned schedule spends no more.
    loop_s: float = 5.0
    # How long a replica's lease to poll a task lasts (a few times the longest gap): once its
    # holder has been gone this long, another replica takes the task over.
    lease_s: float = 60.0

    @classmethod
    def expecting(cls, preview_s: float, complete_s: float, *, stall_s: float = 30 * 60.0) -> Timing:
        """The default time scales with another prior and stall limit."""
        return cls(preview_s=preview_s, complete_s=complete_s, stall_s=stall_s)

    def scaled(self, factor: float) -> Timing:
        """The same schedule for an upstream ``factor`` times faster (the sandbox's speed)."""
        return Timing(
            preview_s=self.preview_s / factor,
            complete_s=self.complete_s / factor,
            lyrics_s=self.lyrics_s / factor,
            first_poll_s=self.first_poll_s / factor,
            fresh_s=self.fresh_s / factor,
            min_gap_s=self.min_gap_s / factor,
            max_gap_s=self.max_gap_s / factor,
            idle_max_gap_s=self.idle_max_gap_s / factor,
            horizon_s=self.horizon_s,
            stall_s=self.stall_s / factor,
            progress_every_s=min(self.progress_every_s, max(0.05, self.preview_s / factor / 4)),
            lease_s=self.lease_s / factor,
            loop_s=self.loop_s / factor,
        )


def reached(task: Task | None, goal: Goal) -> bool:
    """True when a waiter with this goal can stop waiting."""
    if task is None:
        return False
    if not task.status.followed:  # finished, or stalled: nothing more will come by waiting
        return True
    return goal == "playable" and task.kind != "lyrics" and task.status.playable


def latency_key(ref: TaskRef) -> LatencyKey:
    return (ref.api, ref.kind, ref.model)


@dataclass(frozen=True)
class Followed:
    """A followed task as its poller sees it now."""

    ref: TaskRef
    task: Task | None  # the newest state known here
    next_poll_at: float  # when its next scheduled poll falls due (math.inf while a poll is under way)
    waiters: int  # calls waiting on it now


@dataclass
class Watch:
    """The poller's record of one followed task."""

    ref: TaskRef
    started: float
    next_at: float
    waiters: int = 0
    misses: int = 0
    task: Task | None = None
    error: SunoError | None = None
    fetched_at: float | None = None  # when the last answer (of any kind) came back
    seen_at: float | None = None  # when the upstream last answered with this task's state
    polled_unreached: dict[str, float] = field(default_factory=dict)  # milestone -> last poll before it
    preview: tuple[float, float] | None = None  # seconds after submit its preview came between
    preview_s: float | None = None  # and the time learned from that
    probe: tuple[Milestone, float] | None = None  # an extra poll before its window (milestone, seconds)
    moved_at: float = 0.0  # when its status last changed
    in_flight: bool = False
    gap: float = 0.0  # the gap its schedule last chose
    fetches: int = 0  # requests made for it here, answered or not (held to the fixed loop's once learned)
    version: int = 0  # counts this process's own answers (a ledger read older than one is dropped)
    loading: bool = False  # a ledger read for another replica's notice is under way
    reload: bool = False  # another notice came meanwhile: read again
    changed: anyio.Event = field(default_factory=anyio.Event)

    @classmethod
    def new(cls, ref: TaskRef, *, started: float, current: Task | None, now: float) -> Watch:
        """A watch of a task submitted at ``started``, whose newest known state is ``current``."""
        watch = cls(ref=ref, started=started, next_at=now, moved_at=now, task=current)
        if current is None or not current.status.playable:
            # At the submit nothing was playable yet: that brackets the first milestone.
            watch.polled_unreached = {"playable": started, "complete": started}
        return watch

    def notify(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    def followed(self) -> Followed:
        return Followed(ref=self.ref, task=self.task, next_poll_at=self.next_at, waiters=self.waiters)

    def moves_on(self, task: Task) -> bool:
        """Whether this state moves the task on from the one known (status, or the upstream's word)."""
        before = self.task
        return before is None or (before.status, before.raw_status) != (task.status, task.raw_status)

    @property
    def milestone(self) -> Milestone:
        """The next milestone this task is heading for."""
        if self.ref.kind == "lyrics" or (self.task is not None and self.task.status.playable):
            return "complete"
        return "playable"


class Schedule:
    """Sets each watch's next poll from the time scales and the latency learned so far."""

    def __init__(self, timing: Timing, latency: LatencyModel) -> None:
        self.timing = timing
        self.latency = latency
        # (key, milestone) a task reached before its window opened, with no poll before to say by
        # how much: the next task polls once more at the given seconds, half as soon as that.
        self._probes: dict[tuple[LatencyKey, Milestone], float] = {}
        self.round_trip = 0.0  # seconds a fetch takes, smoothed: a poll is sent that much earlier

    def took(self, seconds: float) -> None:
        """A fetch took ``seconds`` from asking to the answer."""
        self.round_trip += ROUND_TRIP_WEIGHT * (max(0.0, seconds) - self.round_trip)

    def gap(self, watch: Watch, now: float, window: Window | None) -> float:
        """Seconds to the next poll; ``window`` is where this task's next milestone usually lands."""
        t = self.timing
        elapsed = max(0.0, now - watch.started)
        milestone = watch.milestone
        span = None if window is None else window.stretch_after(elapsed)
        probe = watch.probe
        if (
            span is not None
            and probe is not None
            and probe[0] == milestone
            and elapsed + EPSILON_S < probe[1]
        ):
            span = (probe[1], probe[1])  # one look before the window
        budget = self._budget(watch)
        if span is not None:
            low, high = span
            inside = elapsed >= low - EPSILON_S  # the poll that opened it lands on its start
            step = self._step(watch, elapsed, window, budget) if inside else 1.0
            # Asked a round trip early, the answer comes when a step of the elapsed time is up.
            gap = max(low, min(high, elapsed * step - self.round_trip)) - elapsed
            gap = max(gap, t.min_gap_s if inside else 0.0)
        else:
            growth = GROWTH[milestone]
            if window is not None and window.high < elapsed <= LATE_SPAN * window.high:
                growth = min(growth, LATE_GROWTH)
            gap = min(t.max_gap_s, max(t.min_gap_s, growth * elapsed))
        if watch.waiters == 0:
            gap = max(gap, min(t.idle_max_gap_s, IDLE_GROWTH * elapsed))
        if budget is not None:
            gap = max(gap, budget.earliest(watch.fetches) - elapsed)
        return max(gap, t.min_gap_s)

    def _budget(self, watch: Watch) -> Budget | None:
        """The fixed loop's budget for this task, once its final file's window is known: from the
        earliest it can finish, by that window and by its preview (not yet come, or seen)."""
        key = latency_key(watch.ref)
        final = self.latency.window(key, "complete")
        if final is None:
            return None
        floor = final.low
        ratio = self.latency.ratio(key)
        if ratio is not None and watch.ref.kind != "lyrics":
            before = (
                watch.preview[0]
                if watch.preview
                else watch.polled_unreached.get("playable", watch.started) - watch.started
            )
            floor = max(floor, ratio[0] * before)
        return Budget(self.timing.loop_s, floor)

    def window(self, watch: Watch) -> Window | None:
        """Where this task's next milestone most likely lands: the learned window, and for the
        final of a task whose preview was seen, the part of it that preview implies."""
        key = latency_key(watch.ref)
        window = self.latency.window(key, watch.milestone)
        ratio = self.latency.ratio(key)
        if window is None or watch.milestone != "complete" or watch.preview is None or ratio is None:
            return window
        low, high = watch.preview[0] * ratio[0], watch.preview[1] * ratio[1]
        kept = tuple((max(a, low), min(b, high)) for a, b in window.stretches if a < high and b > low)
        kept = kept or ((low, high),)
        return replace(window, low=kept[0][0], high=kept[-1][1], stretches=kept)

    def _step(self, watch: Watch, elapsed: float, window: Window | None, budget: Budget | None) -> float:
        """The ratio between polls inside a stretch: :data:`STEP`, or wider when the preview's
        stretch would otherwise spend more than the budget allows before the final's window
        (keeping one poll for each later stretch; past the final's window the budget paces the
        polls itself, and a preview not come by a stretch's end raises the budget)."""
        if window is None or watch.milestone != "playable" or budget is None or elapsed >= budget.final_low:
            return STEP
        ahead = [
            (low, min(high, budget.final_low)) for low, high in window.stretches if low < budget.final_low
        ]
        current = [(low, high) for low, high in ahead if low <= elapsed + EPSILON_S < high]
        if not current:
            return STEP
        width = math.log(current[0][1] / elapsed)
        later = sum(low > elapsed + EPSILON_S for low, _ in ahead)
        spare = budget.before_final - watch.fetches - later - 1  # one left for the final's window
        return max(STEP, math.exp(width / max(1, spare)))

    def plan(self, watch: Watch, now: float, *, paused_until: float = 0.0) -> None:
        """Set the watch's next poll, no earlier than ``paused_until`` (a Retry-After)."""
        first = watch.started + self.timing.first_poll_s
        if watch.fetched_at is None and self._probes:
            key = latency_key(watch.ref)
            for milestone in ("playable", "complete"):
                seconds = self._probes.pop((key, milestone), None)
                if seconds is not None and watch.probe is None:
                    watch.probe = (milestone, seconds)
        window = self.window(watch)
        if watch.fetched_at is None and now < first and window is None:
            due = first  # with nothing learned, look soon after the submit
        else:
            due = now + self.gap(watch, now, window)
        watch.gap = max(self.timing.min_gap_s, due - now)
        watch.next_at = max(due, paused_until)

    def learn(self, watch: Watch, task: Task, now: float) -> list[tuple[Milestone, float]]:
        """Learn when this task reached a milestone: between the last poll before and this one.

        Returns the milestones learnt, with their seconds after the submit.
        """
        before = watch.task
        checks: list[tuple[Milestone, bool, bool]] = [
            (
                "complete",
                task.status.finished and task.status.value == "complete",
                bool(before and before.status.finished),
            ),
        ]
        if task.kind != "lyrics":
            checks.append(("playable", task.status.playable, bool(before and before.status.playable)))
        learnt: list[tuple[Milestone, float]] = []
        for milestone, now_there, was_there in checks:
            if was_there:
                continue
            if not now_there:
                watch.polled_unreached[milestone] = now
                continue
            last_before = watch.polled_unreached.get(milestone)
            if last_before is None:
                continue  # first seen already there: we do not know when it happened
            low, high = last_before - watch.started, now - watch.started
            if high <= 0:
                continue
            if milestone == "playable":
                watch.preview = (low, high)
            window = self.latency.window(latency_key(watch.ref), milestone)
            if window is not None and high <= window.low + self.timing.min_gap_s:
                # Already there when its window opened: sooner than the window says, so the window
                # cannot tell where. Learn it well under the window's start (so the next window
                # reaches lower; several such tasks at once move it further), and have the next
                # task look once at half that time.
                seconds = max(math.sqrt(low * high) if low > 0 else 0.0, high / SOONER)
                if low <= 0 or high > WIDE_BRACKET * low:
                    self._probes[(latency_key(watch.ref), milestone)] = max(low, high / 2)
            elif low > 0 and high <= (BRACKET if window is None else WIDE_BRACKET) * low:
                seconds = self._middle(low, high, window)
            else:
                continue
            self.latency.observe(latency_key(watch.ref), milestone, seconds)
            learnt.append((milestone, seconds))
        times = dict(learnt)
        if "playable" in times:
            watch.preview_s = times["playable"]
        if "complete" in times and watch.preview_s is not None:
            self.latency.observe_ratio(latency_key(watch.ref), times["complete"] / watch.preview_s)
        return learnt

    @staticmethod
    def _middle(low: float, high: float, window: Window | None) -> float:
        """The most likely time in the bracket ``(low, high]``: its geometric middle, or with a
        window, the median of the window's spread cut to the bracket (a bracket as wide as a
        budget leaves it is then read where tasks usually land, not at its middle)."""
        if low <= 0:
            return 0.0
        if window is None:
            return math.sqrt(low * high)
        start, end = min(
            window.stretches, key=lambda s: abs(math.log(math.sqrt(s[0] * s[1]) / math.sqrt(low * high)))
        )
        centre, spread = math.log(start * end) / 2, max(1e-3, math.log(end / start) / (2 * COVER))
        shape = statistics.NormalDist(centre, spread)
        lo, hi = shape.cdf(math.log(low)), shape.cdf(math.log(high))
        if hi - lo < 1e-9:
            return math.sqrt(low * high)
        return min(high, max(low, math.exp(shape.inv_cdf((lo + hi) / 2))))


@dataclass(frozen=True)
class Budget:
    """What the vendor's fixed loop (a fetch every ``loop_s``) spends on a task that finishes at
    ``final_low`` or later: its fetches up to then at any time before, one per ``loop_s`` after."""

    loop_s: float
    final_low: float

    @property
    def before_final(self) -> int:
        """The loop's fetches by the final's window (also what any task finishing later costs it)."""
        return max(1, math.ceil(self.final_low / self.loop_s))

    def earliest(self, spent: int) -> float:
        """How long after the submit the next fetch fits, ``spent`` fetches made: the k-th fetch
        past the budget no sooner than k loops in, so the loop has made as many by then."""
        return 0.0 if spent < self.before_final else (spent + 1) * self.loop_s
