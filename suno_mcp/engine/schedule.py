"""When a followed task is polled next, and what its polls teach about the upstream's latency.

The schedule assumes nothing about the upstream's latency until it has learned it
(:mod:`suno_mcp.domain.latency`): from the submit, the gap between polls grows with the time
elapsed (a share, :data:`GROWTH`, of it), so the overshoot past the moment audio became playable
stays a bounded share of the real latency, whatever it is. Once this upstream's
milestones for a (family, kind, model) are known, polls are sparse before the usual
window, dense inside it and growing again past it.

A :class:`Watch` is the poller's record of one followed task (:class:`Followed`, a copy of what others
may read of it); :class:`Schedule` sets its next poll and learns from its answers. Neither does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import anyio

from suno_mcp.domain.errors import SunoError
from suno_mcp.domain.latency import LatencyKey, LatencyModel, Milestone, Window
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
# Inside a learned window, the gap is this share of the window's median.
DENSE = {"playable": 0.08, "complete": 0.3}
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

    def gap(self, watch: Watch, now: float, window: Window | None) -> float:
        """Seconds to the next poll; ``window`` is where this task's next milestone usually lands."""
        t = self.timing
        elapsed = max(0.0, now - watch.started)
        milestone = watch.milestone
        growth = GROWTH[milestone]
        if window is not None and window.high < elapsed <= LATE_SPAN * window.high:
            growth = min(growth, LATE_GROWTH)
        growing = min(t.max_gap_s, max(t.min_gap_s, growth * elapsed))
        if window is None or elapsed > window.high:
            gap = growing
        elif elapsed < window.low:
            gap = window.low - elapsed  # nothing usually happens before the window opens
        else:
            gap = min(t.max_gap_s, max(t.min_gap_s, DENSE[milestone] * window.median))
        if watch.waiters == 0:
            gap = max(gap, min(t.idle_max_gap_s, IDLE_GROWTH * elapsed))
        return max(gap, t.min_gap_s)

    def plan(self, watch: Watch, now: float, *, paused_until: float = 0.0) -> None:
        """Set the watch's next poll, no earlier than ``paused_until`` (a Retry-After)."""
        first = watch.started + self.timing.first_poll_s
        window = self.latency.window(latency_key(watch.ref), watch.milestone)
        if (
            watch.fetched_at is None
            and now < first
            and (window is None or window.low < 2 * self.timing.first_poll_s)
        ):
            # With nothing learned (or a window opening within seconds), look soon after the submit.
            due = first
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
            window = self.latency.window(latency_key(watch.ref), milestone)
            # A well-bracketed time teaches us about this upstream; so does a milestone already
            # reached by the poll that opened the window (the upstream got faster: learn it).
            opened = window is not None and high <= window.low + self.timing.min_gap_s
            if high > 0 and (high - low <= BRACKET * high or opened):
                seconds = (low + high) / 2
                self.latency.observe(latency_key(watch.ref), milestone, seconds)
                learnt.append((milestone, seconds))
        return learnt
