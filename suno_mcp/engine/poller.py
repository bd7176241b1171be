"""One poller per process: every task being followed is fetched by one schedule.

Many waiters on one task share its fetches. Reads are fresh: a status read or a waited
call fetches at once unless a fetch of that task finished within :data:`FRESH_S`.

The schedule (:mod:`suno_mcp.engine.schedule`) assumes nothing about the upstream's latency until it
has learned it, then polls sparsely before the usual window, densely inside it and growing past it.

Requests take turns from the limiters (:mod:`suno_mcp.engine.limiter`), which adapt to 429s; a 429's
Retry-After holds the tenant's requests back on every replica. When requests are scarce, a read someone
is waiting on goes first, then polls of tasks with waiters, and tasks nobody waits for last.

Team mode: every task belongs to a tenant (``TaskRef.tenant``) and is fetched with that tenant's
key (the key ring the service fills from each caller's requests); a tenant whose key this process
does not hold is not polled here. Each tenant's requests first pass a limiter of its own
(``tenant_max_rps``), so one busy tenant queues behind itself, and a 429 slows that tenant alone.

Replicas: before every fetch the poller asks its :class:`~suno_mcp.engine.coordination.PollCoordinator`
for the task's lease. A refused read, a refused scheduled poll and a notice that another replica
stored a new state all read that state from the shared ledger (through the host) instead of
fetching it again.

What the poller needs from the service (keys, the stored state, where answers, milestones and stalls
go) is one :class:`~suno_mcp.engine.host.PollerHost`. :meth:`Poller.run` polls on the clock;
:meth:`Poller.step` polls whatever is due at a given time and returns once the answers are in (tests
drive it with a fake clock, beside :meth:`Poller.listen` for the other replicas' notices).
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import anyio
import anyio.abc

from suno_mcp.domain.errors import LedgerUnavailableError, NotFoundError, RateLimitedError, SunoError
from suno_mcp.domain.latency import LatencyModel, Milestone
from suno_mcp.domain.models import ApiFamily, Status, Task, TaskRef
from suno_mcp.domain.news import moved
from suno_mcp.domain.tenancy import SERVER_TENANT
from suno_mcp.engine.coordination import LocalCoordinator, PollCoordinator
from suno_mcp.engine.host import NO_KEY, NoHost, NoKeyError, PollerHost
from suno_mcp.engine.limiter import IDLE, READ, TENANT_IDLE_S, WAITED, TenantLimiters
from suno_mcp.engine.schedule import FRESH_S, Followed, Goal, Schedule, Timing, Watch, latency_key, reached
from suno_mcp.upstream.families import MusicApi

# READ is re-exported: the service's submits take their turns at the priority of a read.
__all__ = ["FRESH_S", "READ", "Followed", "Goal", "NoKeyError", "Poller", "ProgressFn", "Timing", "reached"]

log = logging.getLogger(__name__)

# (newest state, seconds since the submit, last poll's error, usual seconds to the final audio)
ProgressFn = Callable[[Task | None, float, str | None, float], Awaitable[None]]

# A read that waits for nothing answers within this, from what is known if no fetch fits.
READ_BUDGET_S = 0.7
# A task the upstream has not heard of this long after its submit really is unknown.
NOT_FOUND_GRACE_S = 60.0
# The longest a waited call's first read waits for its fetch.
REFRESH_LIMIT_S = 20.0
# Another replica's waiters take a task's polling over when nobody fetched it for this many of
# their own schedule's gaps (its holder polls it more sparsely than they need, or died).
LAG = 1.5


def _same(before: Task | None, after: Task) -> bool:
    return before is not None and before.model_dump() == after.model_dump()


_Key = tuple[str, str]  # (tenant, task id)


def _key(ref: TaskRef) -> _Key:
    return (ref.tenant, ref.task_id)


class Poller:
    """Watches tasks and wakes their waiters; run :meth:`run` in a task group."""

    def __init__(
        self,
        apis: Mapping[ApiFamily, MusicApi],
        *,
        host: PollerHost | None = None,
        timing: Timing | None = None,
        max_requests_per_second: float = 10.0,
        tenant_max_rps: float | None = None,
        coordinator: PollCoordinator | None = None,
        latency: LatencyModel | None = None,
        clock: Callable[[], float] = time.monotonic,
        tenant_idle_s: float = TENANT_IDLE_S,
    ) -> None:
        """``max_requests_per_second`` is the shared ceiling (``math.inf``: no pacing);
        ``tenant_max_rps`` each team-mode tenant's (by default as high; dropped ``tenant_idle_s``
        after its last use). ``host`` may also be set afterwards (the service built around it)."""
        self._apis = apis
        self.host: PollerHost = host or NoHost()
        self.timing = timing or Timing()
        self._clock = clock
        rps, idle_s = max_requests_per_second, tenant_idle_s
        self._limiters = TenantLimiters(rps, tenant_max_rps, clock=clock, idle_s=idle_s)
        self.limiter = self._limiters.shared
        self.latency = latency or LatencyModel(
            prior_playable_s=self.timing.preview_s,
            prior_complete_s=self.timing.complete_s,
            prior_lyrics_s=self.timing.lyrics_s,
        )
        self._schedule = Schedule(self.timing, self.latency)
        self.coordinator: PollCoordinator = coordinator or LocalCoordinator()
        self._watches: dict[_Key, Watch] = {}
        self._wake = anyio.Event()
        self.fetches = 0  # upstream fetch requests made, for tests and benchmarks
        self._clip_feed_out: set[str] = set()  # tenants with a batched feed request in flight
        self._group: anyio.abc.TaskGroup | None = None  # the running loop's, for releases

    # ------------------------------------------------------------ schedule

    def _plan(self, watch: Watch, now: float) -> None:
        paused_until = self._limiters.paused_until(watch.ref.tenant, watch.ref.api)
        self._schedule.plan(watch, now, paused_until=paused_until)

    # ------------------------------------------------------------ requests

    async def acquire(
        self, tenant: str, priority: int = WAITED, *, due: float = 0.0, deadline: float | None = None
    ) -> bool:
        """Wait for a turn to send one upstream request for ``tenant``; False if ``deadline`` passes.

        A team-mode tenant's request waits for its own limiter first, then the shared one: a busy
        tenant's queue holds only its own requests, never another tenant's.
        """
        return await self._limiters.acquire(tenant, priority, due=due, deadline=deadline)

    async def rate_limited(
        self, tenant: str, retry_after: float | None, family: ApiFamily | None = None
    ) -> None:
        """A 429 on one of ``tenant``'s requests: its key's limit, so that tenant alone slows down,
        here and (through the coordinator) on every other replica using the key.

        ``family``: the API a poll was refused on; its scheduled polls also wait out Retry-After.
        """
        self._limiters.rate_limited(tenant, retry_after, family)
        self.host.paused(tenant, retry_after)
        if self._group is not None:
            # Sent beside, not in the way: the answer this 429 came with is due to its waiters now,
            # and the notice may queue behind this replica's lease requests.
            self._group.start_soon(self._tell_paused, tenant, family, retry_after)
        else:
            await self._tell_paused(tenant, family, retry_after)

    async def _tell_paused(self, tenant: str, family: ApiFamily | None, retry_after: float | None) -> None:
        try:
            await self.coordinator.paused(tenant, family, retry_after)
        except Exception:
            # The other replicas then meet the limit themselves: one more 429 each, nothing lost.
            log.exception("telling the other replicas about a 429 failed")

    async def _peer_paused(self, tenant: str, family: ApiFamily | None, retry_after: float | None) -> None:
        """Another replica's request with this tenant's key got a 429: the key is limited here too."""
        self._limiters.rate_limited(tenant, retry_after, family)

    def succeeded(self, tenant: str) -> None:
        """A clean answer to one of ``tenant``'s requests (a poll or a submit): creep back up."""
        self._limiters.succeeded(tenant)

    def _api_for(self, family: ApiFamily, tenant: str) -> MusicApi | None:
        """The client to fetch ``tenant``'s tasks with, or None when this process holds no key for it."""
        api = self._apis[family]
        if tenant == SERVER_TENANT:
            return api
        key = self.host.tenant_key(tenant)
        if key is None:
            return None
        return api.with_key(key)  # a light view of the one HTTP client: cheaper than remembering it

    # ------------------------------------------------------------ public

    def watch(self, ref: TaskRef, *, started: float | None = None, current: Task | None = None) -> None:
        """Start (or keep) following a task; ``started`` is its submit time on this clock."""
        self._watch(ref, started=started, current=current)

    def _watch(self, ref: TaskRef, *, started: float | None, current: Task | None) -> Watch:
        existing = self._watches.get(_key(ref))
        if existing is not None:
            if ref.clip_ids and not existing.ref.clip_ids:
                existing.ref = ref
            if isinstance(existing.error, NoKeyError) and self._api_for(ref.api, ref.tenant) is not None:
                # The tenant called again and brought its key: follow the task from now on.
                existing.error = None
                self._reschedule_now_if_idle(existing)
            return existing
        now = self._clock()
        watch = Watch.new(ref, started=now if started is None else started, current=current, now=now)
        self._plan(watch, now)
        self._watches[_key(ref)] = watch
        self._wake.set()
        return watch

    @contextmanager
    def waiting(
        self, ref: TaskRef, *, started: float | None = None, current: Task | None = None
    ) -> Iterator[None]:
        """Follow a task with someone waiting on it for the ``with`` block: its polls come as often
        as a waited call's (:meth:`wait` counts its callers this way)."""
        with self._waiting(self._watch(ref, started=started, current=current)):
            yield

    @contextmanager
    def _waiting(self, watch: Watch) -> Iterator[None]:
        watch.waiters += 1
        self._reschedule_now_if_idle(watch)
        try:
            yield
        finally:
            watch.waiters -= 1

    def followed(self, task_id: str, *, tenant: str = SERVER_TENANT) -> Followed | None:
        """What this poller knows of a task it follows now; None when it does not follow it."""
        watch = self._watches.get((tenant, task_id))
        return None if watch is None else watch.followed()

    @property
    def watching(self) -> int:
        return len(self._watches)

    @property
    def queued(self) -> int:  # upstream requests (polls, reads, submits) waiting for a turn now
        return self._limiters.queued

    def typical_s(self, ref: TaskRef, milestone: Milestone) -> float:
        """How long ``milestone`` usually takes after a submit for tasks like this one."""
        return self.latency.typical(latency_key(ref), milestone)

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
        """A fresh state of the task, then up to ``wait_s`` more seconds for ``goal``.

        The first read fetches at once unless a fetch of this task finished within
        FRESH_S (here, or on another replica: then the ledger answers). With ``wait_s`` 0 it
        answers within READ_BUDGET_S: from the newest known state when no request can go out in time.
        """
        watch = self._watch(ref, started=started, current=current)
        if watch.task is None:
            watch.task = current
        if not self._fresh(watch):
            await self._refresh(watch, READ_BUDGET_S if wait_s <= 0 else min(wait_s, REFRESH_LIMIT_S))
        if wait_s > 0 and progress is not None:
            await self._report(watch, progress)  # what the first read found, at once
        if wait_s <= 0 or reached(watch.task, goal):
            return watch.task
        with self._waiting(watch), anyio.move_on_after(wait_s):
            while not reached(watch.task, goal):
                event = watch.changed
                with anyio.move_on_after(self.timing.progress_every_s):
                    await event.wait()
                if progress is not None:
                    await self._report(watch, progress)
        return watch.task

    async def _report(self, watch: Watch, progress: ProgressFn) -> None:
        elapsed, usual_s = self._clock() - watch.started, self.typical_s(watch.ref, "complete")
        await progress(watch.task, elapsed, self._describe_error(watch), usual_s)

    def forget(self, task_id: str, *, tenant: str = SERVER_TENANT) -> None:
        """Stop watching a task (one reported stalled is looked at only when asked)."""
        watch = self._watches.pop((tenant, task_id), None)
        if watch is not None and self._group is not None:
            self._group.start_soon(self.coordinator.release, watch.ref)

    def checked_at(self, task_id: str, *, tenant: str = SERVER_TENANT) -> float | None:
        """When (on this clock) the upstream last answered with this task's state."""
        watch = self._watches.get((tenant, task_id))
        return None if watch is None else watch.seen_at

    def _fresh(self, watch: Watch) -> bool:
        return watch.fetched_at is not None and self._clock() - watch.fetched_at < self.timing.fresh_s

    def _reschedule_now_if_idle(self, watch: Watch) -> None:
        # A task nobody waited for was scheduled sparsely; a new waiter brings it back in (no later).
        if not watch.in_flight:
            due = watch.next_at
            self._plan(watch, self._clock())
            watch.next_at = min(due, watch.next_at)
            self._wake.set()

    async def _refresh(self, watch: Watch, limit_s: float) -> None:
        """Fetch now, or join the fetch already in flight, and wait for its answer, bounded.

        The fetch runs in the caller's task rather than through the polling loop: one hop
        less for every status read, and callers arriving meanwhile still share it.
        """
        deadline = self._clock() + limit_s
        with anyio.move_on_after(limit_s):
            before = watch.fetched_at
            while watch.fetched_at == before:
                if not watch.in_flight:
                    # Among reads, the task whose news is oldest goes first.
                    stalest = watch.fetched_at if watch.fetched_at is not None else watch.started
                    await self._poll_batch(
                        watch.ref.api, [watch], priority=READ, due=stalest, deadline=deadline, read=True
                    )
                    return
                watch.waiters += 1
                try:
                    await watch.changed.wait()
                finally:
                    watch.waiters -= 1

    @staticmethod
    def _describe_error(watch: Watch) -> str | None:
        if watch.error is None or isinstance(watch.error, RateLimitedError):
            return None  # our own pacing, not something the person needs to act on
        return watch.error.message

    def last_error(self, task_id: str, *, tenant: str = SERVER_TENANT) -> SunoError | None:
        """The error of the last poll of this task, if it failed (rate limiting aside)."""
        watch = self._watches.get((tenant, task_id))
        if watch is None or isinstance(watch.error, RateLimitedError):
            return None
        return watch.error

    # ------------------------------------------------------------ loop

    async def run(self) -> None:
        """Poll forever, and take in the other replicas' news; cancel the surrounding task group to stop.

        Fetches run in their own tasks, so one slow upstream answer never holds up the
        polls of other tasks.
        """
        async with anyio.create_task_group() as tasks:
            self._group = tasks
            try:
                tasks.start_soon(self.listen)
                await self._loop(tasks)
            finally:
                self._group = None

    async def step(self, now: float) -> list[TaskRef]:
        """Poll every task due at ``now`` (a clock value) as :meth:`run` would, and return once all
        their answers are in (stored, learnt from, waiters woken): the tasks it polled."""
        due = self._take_due(now)
        async with anyio.create_task_group() as polls:
            for family, watches in due:
                polls.start_soon(self._poll_due, family, watches)
        return [watch.ref for _, watches in due for watch in watches]

    def next_due(self) -> float:
        """When the next scheduled poll falls due (a clock value; ``math.inf`` when none is)."""
        return min((w.next_at for w in self._watches.values() if self._idle(w)), default=math.inf)

    def _idle(self, watch: Watch) -> bool:
        # While a tenant's feed request is out, its clip-API tasks falling due wait for the next
        # one, so they share it: that is what keeps the feed batched (one key per request).
        clip_feed_out = watch.ref.api == "clip" and watch.ref.tenant in self._clip_feed_out
        return not watch.in_flight and not clip_feed_out

    async def _loop(self, fetches: anyio.abc.TaskGroup) -> None:
        while True:
            now = self._clock()
            due = self._take_due(now)
            if not due:
                wake = self._wake
                with anyio.move_on_after(min(self.next_due() - now, 3600.0)):
                    await wake.wait()
                if wake is self._wake:
                    self._wake = anyio.Event()
                continue
            for family, watches in due:
                fetches.start_soon(self._poll_due, family, watches)

    def _take_due(self, now: float) -> list[tuple[ApiFamily, list[Watch]]]:
        """The polls due at ``now``, in the order they should go: task-API tasks one by one, each
        tenant's clip-API tasks in one feed request. Marked in flight, so the next turn skips them."""
        ready = [w for w in self._watches.values() if self._idle(w) and w.next_at <= now]
        due: list[tuple[ApiFamily, list[Watch]]] = []
        clip_batches: dict[str, list[Watch]] = defaultdict(list)
        for watch in sorted(ready, key=lambda w: (w.waiters == 0, w.next_at)):
            watch.in_flight = True
            if watch.ref.api == "clip":
                clip_batches[watch.ref.tenant].append(watch)
            else:
                due.append(("task", [watch]))
        for tenant, batch in clip_batches.items():
            self._clip_feed_out.add(tenant)
            due.append(("clip", batch))
        return due

    async def _poll_due(self, family: ApiFamily, watches: Sequence[Watch]) -> None:
        waited = any(w.waiters for w in watches)
        due = min(w.next_at for w in watches)
        try:
            await self._poll_batch(family, watches, priority=WAITED if waited else IDLE, due=due)
        finally:
            if family == "clip":
                self._clip_feed_out.discard(watches[0].ref.tenant)
                self._wake.set()

    async def _poll_batch(
        self,
        family: ApiFamily,
        watches: Sequence[Watch],
        *,
        priority: int = WAITED,
        due: float = 0.0,
        deadline: float | None = None,
        read: bool = False,
    ) -> None:
        """Poll watches of one tenant: take each one's lease, fetch the leased ones, read the rest from the ledger."""
        tenant = watches[0].ref.tenant
        assert all(w.ref.tenant == tenant for w in watches)  # one key per request
        for watch in watches:
            watch.in_flight = True
            watch.next_at = math.inf  # rescheduled when the answer is in
        try:
            api = self._api_for(family, tenant)
            if api is None:
                for watch in watches:
                    watch.error = NO_KEY  # and no lease taken: a replica holding the key polls it
            else:
                granted = await self._leased(watches, read=read)
                if granted and await self.acquire(tenant, priority, due=due, deadline=deadline):
                    await self._fetch_batch(family, api, granted, deadline)
        except Exception as err:
            # One bad answer (or a bug) must not end the process's only poller: log it, keep it as
            # the tasks' last error, try again next tick. A ledger outage is no bug: one line.
            outage = isinstance(err, LedgerUnavailableError)
            level = logging.WARNING if outage else logging.ERROR
            log.log(level, "polling %d %s task(s) failed: %s", len(watches), family, err, exc_info=not outage)
            unexpected = SunoError(f"the status check failed unexpectedly ({type(err).__name__})")
            error = err if isinstance(err, LedgerUnavailableError) else unexpected
            for watch in watches:
                watch.error, watch.fetched_at = error, self._clock()
        finally:
            now = self._clock()
            for watch in watches:
                watch.in_flight = False
                if watch.next_at == math.inf:  # not rescheduled: cancelled, refused a turn, or failed
                    self._plan(watch, now)
                watch.notify()  # a waiter sharing a cancelled fetch must not wait for nothing
            self._wake.set()

    async def _leased(self, watches: Sequence[Watch], *, read: bool) -> list[Watch]:
        """The watches whose lease this replica took: it may fetch them now; the others get the
        ledger's state instead."""
        t = self.timing
        granted: list[Watch] = []
        for watch in watches:
            # Waiters here need news about once a gap; an idle watch leaves the pace to the holder.
            stale_s = max(t.fresh_s, LAG * watch.gap) if watch.waiters and not read else None
            if await self.coordinator.take_lease(
                watch.ref, read=read, fresh_s=t.fresh_s, lease_s=t.lease_s, stale_s=stale_s
            ):
                granted.append(watch)
                continue
            # Refused: another replica fetched it just now (a read), or holds it (a scheduled poll).
            await self._load_state(watch, seen=read)
            if not read and watch.waiters == 0 and self._clock() - watch.started > t.horizon_s:
                await self._drop(watch)
        return granted

    async def _fetch_batch(
        self, family: ApiFamily, api: MusicApi, watches: Sequence[Watch], deadline: float | None
    ) -> None:
        self.fetches += 1
        tenant, asked = watches[0].ref.tenant, self._clock()
        # A poll is never retried past a short deadline: the schedule tries again anyway.
        limit = deadline if deadline is not None else asked + max(1.0, self.timing.min_gap_s)
        try:
            tasks = await api.fetch([w.ref for w in watches], deadline=limit)
        except SunoError as error:
            now = self._clock()
            if isinstance(error, RateLimitedError):
                await self.rate_limited(tenant, error.retry_after, family)
            log.info("polling %d %s task(s) failed: %s", len(watches), family, error.message)
            for watch in watches:  # a failed request still cost the upstream one: it counts
                watch.error, watch.fetched_at, watch.fetches = error, now, watch.fetches + 1
                self._plan(watch, now)
            return
        self.succeeded(tenant)
        now = self._clock()
        self._schedule.took(now - asked)
        for watch in watches:
            await self._take(watch, tasks.get(watch.ref.task_id), now)

    async def _take(self, watch: Watch, task: Task | None, now: float) -> None:
        """Fold one answer into its watch: state, milestones, stall, reschedule."""
        watch.fetched_at, watch.version, watch.fetches = now, watch.version + 1, watch.fetches + 1
        if task is None:
            watch.misses += 1
            if now - watch.started > NOT_FOUND_GRACE_S and watch.misses >= 3:
                watch.error = NotFoundError(
                    f"the upstream does not know task {watch.ref.task_id}", status_code=404
                )
        else:
            for milestone, seconds in self._schedule.learn(watch, task, now):
                await self.host.milestone_reached(watch.ref, milestone, seconds)
            if watch.moves_on(task):
                watch.moved_at = now
            news, visible = not _same(watch.task, task), moved(watch.task, task)
            watch.task, watch.error, watch.misses, watch.seen_at = task, None, 0, now
            await self.host.task_fetched(watch.ref, task)
            if visible:
                self.host.task_moved(watch.ref, task)  # stored first: a follower reads it next
            if news:
                await self.coordinator.changed(watch.ref)  # stored: the other replicas read it
        self._plan(watch, now)
        finished = task is not None and task.status.finished
        stale = now - watch.started > self.timing.horizon_s and watch.waiters == 0
        stalled = task is not None and not finished and now - watch.moved_at > self.timing.stall_s
        if stalled and task is not None:
            # Its waiters stop waiting (nothing more will come), and the ledger says so.
            watch.task = task.model_copy(update={"status": Status.STALLED})
            await self.host.task_stalled(watch.ref, task)
            await self.coordinator.changed(watch.ref)
        if finished or stale or stalled:
            await self._drop(watch)

    async def _drop(self, watch: Watch) -> None:
        """Stop following a task here, and let go of its lease."""
        if self._watches.get(_key(watch.ref)) is watch:
            del self._watches[_key(watch.ref)]
            await self.coordinator.release(watch.ref)

    # ------------------------------------------------------------ other replicas' news

    async def listen(self) -> None:
        """Take in the other replicas' notices until cancelled: read the state of every task another
        replica reports changed, and slow a tenant down on another replica's 429 (:meth:`run` does
        this beside its polling)."""
        async with anyio.create_task_group() as reads:

            async def on_change(tenant: str, task_id: str) -> None:
                watch = self._watches.get((tenant, task_id))
                if watch is None:
                    return  # not followed here
                if watch.loading:
                    watch.reload = True  # read again once the read under way is done
                    return
                watch.loading = True
                reads.start_soon(self._read_changes, watch)

            await self.coordinator.run(on_change, self._peer_paused)

    async def _read_changes(self, watch: Watch) -> None:
        try:
            while True:
                watch.reload = False
                await self._load_state(watch, seen=True)
                if not watch.reload:
                    return
        except Exception:
            # A ledger that cannot be read now costs only this notice: the schedule reads it again.
            log.exception("reading another replica's news of task %s failed", watch.ref.task_id)
        finally:
            watch.loading = False

    async def _load_state(self, watch: Watch, *, seen: bool) -> None:
        """Fold the ledger's state of the task into its watch, without writing it back.

        ``seen``: the upstream answered with it just now (another replica's fetch), so it counts
        as fresh here too. A read that an answer of this process overtook is dropped.
        """
        version = watch.version
        # Shielded: a database statement cancelled half-way can cost its connection (psycopg under
        # anyio closes it), and this read may run inside a waiter's bounded wait.
        with anyio.CancelScope(shield=True):
            task = await self.host.stored_state(watch.ref)
        if task is None or watch.version != version:
            return
        now = self._clock()
        if seen:
            watch.fetched_at = watch.seen_at = now
            if not isinstance(watch.error, NoKeyError):
                watch.error = None  # someone's fetch just worked: an earlier failure here is old news
        if not _same(watch.task, task):
            # Learnt here too (this replica may poll it next), but recorded by the replica that fetched.
            self._schedule.learn(watch, task, now)
            if watch.moves_on(task):
                watch.moved_at = now
            if moved(watch.task, task):
                self.host.task_moved(watch.ref, task)  # this replica's followers hear of it too
            watch.task, watch.misses = task, 0
        if not task.status.followed:  # finished, or stalled by the replica that polled it
            await self._drop(watch)
        watch.notify()
