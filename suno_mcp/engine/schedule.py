"""When a followed task is polled next, and what its polls teach about the upstream's latency.

The schedule assumes nothing about the upstream's latency until it has learned it
(:mod:`suno_mcp.domain.latency`): from the submit, the gap between polls grows with the time
elapsed (a share, :data:`GROWTH`, of it), so the overshoot past the moment audio became playable
stays a bounded share of the real latency, whatever it is. Once this upstream's
milestones for a (family, kind, model) are known (one finished task is enough), polls
are sparse before the usual window, dense inside it and growing again past it. Inside
the window the gap is a small share of the time elapsed (so a milestone is seen within
that share of its own time), shorter still when the window is narrow (it is covered by a
few polls), and never shorter than a fetch's round trip. Once learned, a task is never
fetched more often than a poll every :attr:`Timing.fetch_every_s` would (the vendor's own
5 s loop): what the sparse start saves is what the window spends.

A :class:`Watch` is the poller's record of one followed task (:class:`Followed`, a copy of what others
may read of it); :class:`Schedule` sets its next poll and learns from its answers. Neither does I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import anyio

from suno_mcp.domain.errors import SunoError
from suno_mcp.domain.latency import LatencyKey, LatencyModel, Milestone, Window, spread
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
# Inside a learned window, at least this many polls cover it (the gap is at most its width
# over this); the share of the elapsed time the gap may reach is Timing.learned_step.
WINDOW_POLLS = 4
# The last learned stretch reaches this much further (a share of its far edge), and the budget
# is spread over it too: a task slower than the samples is still seen within the learned ratio,
# and so is learnt from (samples only of tasks inside the window would narrow it for ever).
TAIL = 1.25
# A fetch's round trip, averaged with this weight for the newest one.
ROUND_TRIP_WEIGHT = 0.2
# A milestone time is learned only when the polls around it bracket it this tightly (a share
# of the time): the schedule's own gaps stay inside it, a task first seen after a restart does not.
BRACKET = 0.35
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
    # How long a replica's lease to poll a task lasts (a few times the longest gap): once its
    # holder has been gone this long, another replica takes the task over.
    lease_s: float = 60.0
    # Inside a learned window the gap is at most this share of the time since the submit: a
    # milestone is seen within about this share of its own time (half of it, typically).
    learned_step: float = 0.07
    # The same for the final audio. The person already hears the preview, so a wider share
    # (0.15: a "complete" ~8% later, for about half the fetches inside its window) is a fair
    # trade where requests are scarce; by default the final is followed as closely.
    learned_final_step: float = 0.07
    # Once learned, a task is fetched at most once per this on average since its submit: never
    # more often than the vendor's example loop.
    fetch_every_s: float = 5.0

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
            learned_step=self.learned_step,
            learned_final_step=self.learned_final_step,
            fetch_every_s=self.fetch_every_s / factor,
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
    moved_at: float = 0.0  # when its status last changed
    in_flight: bool = False
    gap: float = 0.0  # the gap its schedule last chose
    fetches: int = 0  # upstream fetches of it made here (polls and reads)
    playable_s: float | None = None  # when it became playable (seconds after the submit), once known
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


def stretches(times: list[float]) -> list[tuple[float, float]]:
    """Where tasks may land, from where ``times`` (in order) did: each widened by the spread
    their number allows, overlapping ones merged; a gap no task fell in stays a gap."""
    margin = spread(len(times))
    merged: list[tuple[float, float]] = []
    for time in times:
        lo, hi = time * (1 - margin), time * (1 + margin)
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


class Schedule:
    """Sets each watch's next poll from the time scales and the latency learned so far."""

    def __init__(self, timing: Timing, latency: LatencyModel) -> None:
        self.timing = timing
        self.latency = latency
        self.round_trip = 0.0  # seconds a fetch takes, lately

    def took(self, seconds: float) -> None:
        """A fetch took ``seconds`` from request to answer: no poll inside a window comes sooner."""
        self.round_trip += ROUND_TRIP_WEIGHT * (seconds - self.round_trip)

    def gap(self, watch: Watch, now: float, window: Window | None) -> float:
        """Seconds to the next poll; ``window`` is where this task's next milestone usually lands."""
        t = self.timing
        elapsed = max(0.0, now - watch.started)
        milestone = watch.milestone
        growth = GROWTH[milestone]
        if window is not None and window.high < elapsed <= LATE_SPAN * window.high:
            growth = min(growth, LATE_GROWTH)
        growing = min(t.max_gap_s, max(t.min_gap_s, growth * elapsed))
        floor = t.min_gap_s
        if window is None or elapsed > window.high:
            gap = growing
        elif elapsed < window.low:
            gap = window.low - elapsed  # nothing usually happens before the window opens
        else:
            step = t.learned_step if milestone == "playable" else t.learned_final_step
            gap = min(t.max_gap_s, step * elapsed, (window.high - window.low) / WINDOW_POLLS)
            # Closer than a round trip, a poll would ask before the last answer is in; closer
            # than min_gap_s only where the step asks for it (plan's budget bounds the count).
            floor = max(self.round_trip, min(t.min_gap_s, step * elapsed))
        if watch.waiters == 0:
            gap = max(gap, min(t.idle_max_gap_s, IDLE_GROWTH * elapsed))
        return max(gap, floor)

    def plan(self, watch: Watch, now: float, *, paused_until: float = 0.0) -> None:
        """Set the watch's next poll, no earlier than ``paused_until`` (a Retry-After)."""
        first = watch.started + self.timing.first_poll_s
        key = latency_key(watch.ref)
        window = self.latency.window(key, watch.milestone)
        learned = self._learned_gap(watch, now)
        if (
            watch.fetched_at is None
            and now < first
            and (window is None or window.low <= self.timing.first_poll_s)
        ):
            # With nothing learned (or a window open by then), look soon after the submit.
            due = first
        elif learned is not None:
            due = now + learned
        else:
            due = now + self.gap(watch, now, window)
        due = max(due, self._budget_due(watch))
        watch.gap = max(self.timing.min_gap_s, due - now)
        watch.next_at = max(due, paused_until)

    def _ahead(self, watch: Watch, age: float) -> list[tuple[float, float]]:
        """Where this task's next milestone may still land (seconds after its submit): the
        :func:`stretches` of past tasks' times, those behind ``age`` dropped. A final looks only
        at the stretches where tasks whose preview came when this one's did finished."""
        key = latency_key(watch.ref)
        if watch.milestone == "playable":
            spans = stretches(self.latency.samples(key, "playable"))
        else:
            low = watch.polled_unreached.get("playable", watch.started) - watch.started
            seen = math.inf if watch.playable_s is None else watch.playable_s
            spans = self._finals(watch, low, seen)
        if spans:  # a task a little slower than any before is followed as closely
            spans[-1] = (spans[-1][0], spans[-1][1] * TAIL)
        return [(lo, hi) for lo, hi in spans if hi > age]

    def _finals(self, watch: Watch, low: float, high: float = math.inf) -> list[tuple[float, float]]:
        """The stretches of final times holding a final of a task whose preview came between
        ``low`` and ``high`` (all of them when no such task is known): a cluster of slower tasks
        is skipped by a task that is not one of them."""
        key = latency_key(watch.ref)
        spans = stretches(self.latency.samples(key, "complete"))
        margin = spread(len(self.latency.samples(key, "playable")))
        like = self.latency.finals_after(key, low * (1 - margin), high * (1 + margin))
        kept = [(lo, hi) for lo, hi in spans if any(lo <= c <= hi for c in like)]
        return kept or spans

    def _learned_gap(self, watch: Watch, now: float) -> float | None:
        """Seconds to the next poll while a learned stretch lies ahead; None past them all.

        Inside the stretches polls go at a fixed ratio of the task's age (a milestone is then seen
        within that ratio of its own time), the budget spread evenly over what is left of them;
        across a gap where no task has landed, the next poll waits for the next stretch.
        """
        t = self.timing
        age = max(0.0, now - watch.started)
        ahead = self._ahead(watch, age)
        if not ahead:
            return None
        step = t.learned_step if watch.milestone == "playable" else t.learned_final_step
        ratio = 1 + step
        left = self._budget_left(watch, ahead)
        if left is not None:
            # Counted fetches are spent evenly over what is left; where they are plenty, on a
            # ratio half as wide (a milestone then seen within ~2% of its time, not ~4%).
            need = sum(math.log(hi / max(lo, age)) for lo, hi in ahead)
            ratio = max(1 + step / 2, math.exp(need / max(1.0, left)))
        lo = ahead[0][0]
        # The first poll opens the stretch; it also tells when tasks come sooner than any before.
        gap = lo - age if age < lo else age * (ratio - 1)
        gap = max(gap, self.round_trip, min(t.min_gap_s, (ratio - 1) * age))
        if watch.waiters == 0:
            gap = max(gap, min(t.idle_max_gap_s, IDLE_GROWTH * age))
        return gap

    def _free_until(self, watch: Watch) -> float | None:
        """The earliest this task's final may come (None: a task too short to count fetches)."""
        every = self.timing.fetch_every_s
        low = max(watch.polled_unreached.get("playable", watch.started) - watch.started, 0.0)
        finals = self._finals(watch, low)
        if not finals or finals[0][0] < 2 * every:
            return None  # a short task costs the fixed loop 1-2 fetches: not worth counting
        return finals[0][0]

    def _budget_left(self, watch: Watch, ahead: list[tuple[float, float]]) -> float | None:
        """Fetches this task may still make over the stretches ahead (None: not counted)."""
        free = self._free_until(watch)
        if free is None:
            return None
        every = self.timing.fetch_every_s
        until = free if watch.milestone == "playable" else max(free, ahead[-1][1])
        return math.floor(until / every) - watch.fetches

    def _budget_due(self, watch: Watch) -> float:
        """The earliest the next fetch keeps this task within the fixed loop's fetches.

        The fixed loop fetches once per fetch_every_s until the final is there. Before the earliest
        a final has come (given when this task's preview did), any number up to what the loop
        makes by then may go; after it, the n-th fetch comes no sooner than the loop's n-th, so a
        final seen by fetch n came after the loop's (n-1)-th: the loop made n too.
        """
        free = self._free_until(watch)
        if free is None:
            return -math.inf
        every = self.timing.fetch_every_s
        if watch.fetches + 1 <= math.floor(free / every):
            return -math.inf
        return watch.started + (watch.fetches + 1) * every

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
            window = self.latency.window(latency_key(watch.ref), milestone)
            # A well-bracketed time teaches us about this upstream; so does a milestone already
            # reached by the poll that opened the window (the upstream got faster: learn it).
            key = latency_key(watch.ref)
            spans = stretches(self.latency.samples(key, milestone))
            opened = window is not None and high <= spans[0][0] + self.timing.min_gap_s
            if high > 0 and (high - low <= BRACKET * high or opened):
                seconds = (low + high) / 2
                if opened and high - low > BRACKET * high:
                    # Found by the poll that opened the window: a little sooner than any before.
                    seconds = high * (1 - spread(window.samples if window else 1))
                self.latency.observe(latency_key(watch.ref), milestone, seconds)
                learnt.append((milestone, seconds))
                if milestone == "playable":
                    watch.playable_s = seconds
                elif watch.playable_s is not None:
                    self.latency.observe_pair(latency_key(watch.ref), watch.playable_s, seconds)
            elif milestone == "playable":
                watch.playable_s = high  # not learnt from, but this task's finals follow it
        return learnt
