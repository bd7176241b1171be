"""One poller per process: every waiter on a task shares one upstream fetch per tick.

Tasks of the clip API are fetched together in one feed request; tasks of the task API
one request each (that API has no batch read). The schedule adapts to where a task
stands: the first poll lands just before the time a preview is usually ready, polls
then come quickly while it is due and back off to a cap; Retry-After pushes every
task of that family back; a global limit caps upstream requests per second.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import anyio

from suno_mcp.client import MusicApi, TaskRef
from suno_mcp.errors import NotFoundError, RateLimitedError, SunoError
from suno_mcp.models import ApiFamily, Task

log = logging.getLogger(__name__)

Goal = Literal["playable", "complete"]
ProgressFn = Callable[[Task | None, float, str | None], Awaitable[None]]

# Polls come every _DENSE_SHARE of the expected time until _WINDOW_END of it has passed.
_DENSE_SHARE = {"preview": 0.04, "complete": 0.08, "lyrics": 0.1}
_WINDOW_END = 1.15
# Past the window, the gap is this share of how late the task is.
_LATE_SHARE = 0.25

# A task the upstream has not heard of this long after its submit really is unknown.
NOT_FOUND_GRACE_S = 60.0
# The longest a status read waits for its fetch to come back.
REFRESH_LIMIT_S = 20.0


@dataclass(frozen=True)
class Timing:
    """Typical upstream latencies (seconds of real time) that shape the schedule."""

    preview_s: float = 30.0
    complete_s: float = 120.0
    lyrics_s: float = 10.0
    min_gap_s: float = 1.0
    max_gap_s: float = 15.0
    horizon_s: float = 30 * 60.0  # stop watching a task nobody waits for after this
    progress_every_s: float = 5.0

    @classmethod
    def expecting(cls, preview_s: float, complete_s: float) -> Timing:
        """The default schedule stretched or shrunk to an upstream with these typical latencies."""
        base = cls()
        return base.scaled(base.complete_s / complete_s).with_preview(preview_s)

    def with_preview(self, preview_s: float) -> Timing:
        """The same schedule with another typical time to a playable preview."""
        return Timing(
            preview_s=preview_s,
            complete_s=self.complete_s,
            lyrics_s=self.lyrics_s,
            min_gap_s=self.min_gap_s,
            max_gap_s=self.max_gap_s,
            horizon_s=self.horizon_s,
            progress_every_s=self.progress_every_s,
        )

    def scaled(self, factor: float) -> Timing:
        """The same schedule for an upstream ``factor`` times faster (the sandbox's speed)."""
        return Timing(
            preview_s=self.preview_s / factor,
            complete_s=self.complete_s / factor,
            lyrics_s=self.lyrics_s / factor,
            min_gap_s=self.min_gap_s / factor,
            max_gap_s=self.max_gap_s / factor,
            horizon_s=self.horizon_s,
            progress_every_s=min(self.progress_every_s, max(0.05, self.preview_s / factor / 4)),
        )


def reached(task: Task | None, goal: Goal) -> bool:
    """True when a waiter with this goal can stop waiting."""
    if task is None:
        return False
    if task.status.finished:
        return True
    return goal == "playable" and task.kind != "lyrics" and task.status.playable


@dataclass
class _Watch:
    ref: TaskRef
    started: float
    next_at: float
    phase: str = ""
    polls_in_phase: int = 0
    misses: int = 0
    waiters: int = 0
    task: Task | None = None
    error: SunoError | None = None
    fetched_at: float | None = None
    in_flight: bool = False
    changed: anyio.Event = field(default_factory=anyio.Event)

    def notify(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()


class RateLimiter:
    """Spaces requests at least 1/rate seconds apart across the whole process."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = anyio.Lock()

    async def acquire(self) -> None:
        """Return when the next request may go."""
        async with self._lock:
            now = self._clock()
            if self._next > now:
                await self._sleep(self._next - now)
            self._next = max(now, self._next) + self._interval


class Poller:
    """Watches tasks and wakes their waiters; run :meth:`run` in a task group."""

    def __init__(
        self,
        apis: Mapping[ApiFamily, MusicApi],
        *,
        timing: Timing | None = None,
        max_requests_per_second: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        on_update: Callable[[Task], Awaitable[None]] | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._apis = apis
        self.timing = timing or Timing()
        self._clock = clock
        self._limiter = limiter or RateLimiter(max_requests_per_second, clock)
        self._watches: dict[str, _Watch] = {}
        self._wake = anyio.Event()
        self._on_update = on_update
        self._family_paused_until: dict[ApiFamily, float] = defaultdict(float)
        self.fetches = 0  # upstream fetch requests made, for tests and benchmarks
        self._clip_feed_out = False  # a batched feed request of the polling loop is in flight

    # ------------------------------------------------------------ schedule

    def _expected(self, watch: _Watch) -> tuple[str, float]:
        t = self.timing
        if watch.ref.kind == "lyrics":
            return "lyrics", t.lyrics_s
        if watch.task is not None and watch.task.status.playable:
            return "complete", t.complete_s
        return "preview", t.preview_s

    def _schedule(self, watch: _Watch, now: float) -> None:
        phase, expected = self._expected(watch)
        if phase != watch.phase:
            watch.phase, watch.polls_in_phase = phase, 0
        t = self.timing
        first = watch.started + 0.9 * expected
        if now < first and watch.polls_in_phase == 0:
            watch.next_at = first
            return
        # Dense polls through the window where the milestone usually lands (the first
        # playable audio is what a person waits for, so that window is the densest); past
        # it, the gap grows with how late the task is, up to the cap.
        dense = max(t.min_gap_s, _DENSE_SHARE[phase] * expected)
        late = now - (watch.started + _WINDOW_END * expected)
        gap = dense if late <= 0 else min(t.max_gap_s, max(dense, late * _LATE_SHARE))
        watch.next_at = max(now + gap, self._family_paused_until[watch.ref.api])

    # ------------------------------------------------------------ public

    def watch(self, ref: TaskRef, *, started: float | None = None) -> _Watch:
        """Start (or keep) watching a task; ``started`` is its submit time on this clock."""
        existing = self._watches.get(ref.task_id)
        if existing is not None:
            if ref.clip_ids and not existing.ref.clip_ids:
                existing.ref = ref
            return existing
        now = self._clock()
        watch = _Watch(ref=ref, started=now if started is None else started, next_at=now)
        self._schedule(watch, now)
        self._watches[ref.task_id] = watch
        self._wake.set()
        return watch

    @property
    def watching(self) -> int:
        return len(self._watches)

    async def wait(
        self,
        ref: TaskRef,
        *,
        goal: Goal,
        wait_s: float,
        started: float | None = None,
        current: Task | None = None,
        progress: ProgressFn | None = None,
    ) -> Task | None:
        """Wait up to ``wait_s`` seconds for the task to reach ``goal``; returns the newest state.

        With ``wait_s`` 0 it fetches once (sharing any fetch already due) and returns.
        """
        watch = self.watch(ref, started=started)
        if watch.task is None and current is not None:
            watch.task = current
        if wait_s <= 0 or reached(watch.task, goal):
            if wait_s <= 0:
                await self._refresh(watch)
            return watch.task
        watch.waiters += 1
        begun = self._clock()
        try:
            with anyio.move_on_after(wait_s):
                while not reached(watch.task, goal):
                    event = watch.changed
                    with anyio.move_on_after(self.timing.progress_every_s):
                        await event.wait()
                    if progress is not None:
                        await progress(watch.task, self._clock() - begun, self._describe_error(watch))
        finally:
            watch.waiters -= 1
        return watch.task

    async def _refresh(self, watch: _Watch, limit_s: float = REFRESH_LIMIT_S) -> None:
        """Fetch now, or join the fetch already in flight, and wait for its answer, bounded.

        The fetch runs in the caller's task rather than through the polling loop: one hop
        less for every status read, and callers arriving meanwhile still share it.
        """
        with anyio.move_on_after(limit_s):
            before = watch.fetched_at
            while watch.fetched_at == before:
                if not watch.in_flight:
                    # Nobody is fetching it (or the fetch we joined was cancelled): fetch here.
                    await self._poll_batch(watch.ref.api, [watch])
                    return
                watch.waiters += 1
                try:
                    await watch.changed.wait()
                finally:
                    watch.waiters -= 1

    @staticmethod
    def _describe_error(watch: _Watch) -> str | None:
        return None if watch.error is None else watch.error.message

    def last_error(self, task_id: str) -> SunoError | None:
        """The error of the last poll of this task, if it failed."""
        watch = self._watches.get(task_id)
        return None if watch is None else watch.error

    # ------------------------------------------------------------ loop

    async def run(self) -> None:
        """Poll forever; cancel the surrounding task group to stop.

        Fetches run in their own tasks, so one slow upstream answer never holds up the
        polls of other tasks.
        """
        async with anyio.create_task_group() as fetches:
            while True:
                now = self._clock()
                idle = [w for w in self._watches.values() if not w.in_flight]
                # While a feed request is out, clip-API tasks falling due wait for the next
                # one, so they share it: that is what keeps the feed batched.
                ready = [
                    w for w in idle if w.next_at <= now and not (w.ref.api == "clip" and self._clip_feed_out)
                ]
                if not ready:
                    upcoming = min((w.next_at for w in idle if w.next_at > now), default=math.inf)
                    wake = self._wake
                    with anyio.move_on_after(min(upcoming - now, 3600.0)):
                        await wake.wait()
                    if wake is self._wake:
                        self._wake = anyio.Event()
                    continue
                clip_batch: list[_Watch] = []
                for watch in ready:
                    # Taken now, before its fetch task starts, so the next turn skips it.
                    watch.in_flight = True
                    if watch.ref.api == "clip":
                        clip_batch.append(watch)
                    else:
                        fetches.start_soon(self._poll_batch, watch.ref.api, [watch])
                if clip_batch:
                    self._clip_feed_out = True
                    fetches.start_soon(self._poll_clip_batch, clip_batch)

    async def _poll_clip_batch(self, watches: Sequence[_Watch]) -> None:
        try:
            await self._poll_batch("clip", watches)
        finally:
            self._clip_feed_out = False
            self._wake.set()

    async def _poll_batch(self, family: ApiFamily, watches: Sequence[_Watch]) -> None:
        for watch in watches:
            watch.in_flight = True
            watch.next_at = math.inf  # rescheduled when the answer is in
        try:
            await self._fetch_batch(family, watches)
        except Exception as err:
            # One bad answer (or a bug) must not end the process's only poller: log it, keep
            # it as the task's last error, and try again on the next tick.
            log.exception("polling %d %s task(s) failed unexpectedly", len(watches), family)
            now = self._clock()
            for watch in watches:
                watch.error = SunoError(f"the status check failed unexpectedly ({type(err).__name__})")
                watch.fetched_at = now
                self._schedule(watch, now)
        finally:
            for watch in watches:
                watch.in_flight = False
                if watch.next_at == math.inf:  # cancelled before it was rescheduled
                    watch.next_at = self._clock()
                watch.notify()  # a waiter sharing a cancelled fetch must not wait for nothing
            self._wake.set()

    async def _fetch_batch(self, family: ApiFamily, watches: Sequence[_Watch]) -> None:
        await self._limiter.acquire()
        self.fetches += 1
        refs = [w.ref for w in watches]
        try:
            tasks = await self._apis[family].fetch(refs)
        except SunoError as error:
            now = self._clock()
            if isinstance(error, RateLimitedError) and error.retry_after:
                self._family_paused_until[family] = now + error.retry_after
            log.info("polling %d %s task(s) failed: %s", len(watches), family, error.message)
            for watch in watches:
                watch.error = error
                watch.fetched_at = now
                watch.polls_in_phase += 1
                self._schedule(watch, now)
                watch.notify()
            return
        now = self._clock()
        for watch in watches:
            watch.fetched_at = now
            watch.polls_in_phase += 1
            task = tasks.get(watch.ref.task_id)
            if task is None:
                watch.misses += 1
                if now - watch.started > NOT_FOUND_GRACE_S and watch.misses >= 3:
                    watch.error = NotFoundError(
                        f"the upstream does not know task {watch.ref.task_id}", status_code=404
                    )
            else:
                watch.task, watch.error, watch.misses = task, None, 0
                if self._on_update is not None:
                    await self._on_update(task)
            self._schedule(watch, now)
            finished = task is not None and task.status.finished
            stale = now - watch.started > self.timing.horizon_s and watch.waiters == 0
            if finished or stale:
                self._watches.pop(watch.ref.task_id, None)
            watch.notify()
