"""Pacing upstream requests: an adaptive rate per key, and a queue that wakes only its head.

Every upstream request (a poll, a status read, a submit) first takes a turn from an
:class:`AdaptiveLimiter`: turns are spaced 1/rate apart and handed out in priority order
(:data:`READ` before :data:`WAITED` before :data:`IDLE`; within one priority the earliest ``due``,
then the earliest arrival). The rate starts at its ceiling, halves on a 429 (once for a burst of
them, :data:`CUT_EVERY_S`) and creeps back up on clean answers; a 429's Retry-After holds every turn
back until it has passed.

The queue is a sorted list (bisect finds a place; the list's inserts and pops only move pointers,
which costs far less than a task's wake-up). Each waiter sleeps on an event of its own: a grant wakes
the one new head, which sleeps until its turn; nobody else is woken. A waiter with a deadline gives up
at once when the requests ahead of it cannot be through in time (its index in the list says how many
are ahead), and is asked again only when something can have pushed its turn back: a request queued
ahead of it, or a 429. So a queue of n requests costs about n wake-ups, not one of every waiter per grant.

:class:`TenantLimiters` holds the shared limiter and, in team mode, one per tenant in front of it, and
when each tenant's scheduled polls of an API family may go again after a 429's Retry-After.
"""

from __future__ import annotations

import bisect
import itertools
import math
import time
from collections.abc import Callable

import anyio

from suno_mcp.domain.expiry import IdleMap
from suno_mcp.domain.models import ApiFamily
from suno_mcp.domain.tenancy import SERVER_TENANT

# Request priorities (lower goes first): a read someone is waiting on, a poll of a task with waiters,
# a poll of a task nobody waits for.
READ, WAITED, IDLE = 0, 1, 2

# A burst of requests sent at one rate meets the upstream's limit together: their 429s halve the rate
# once. Another 429 halves it again only this long (seconds) after the last cut.
CUT_EVERY_S = 1.0
# A queued request whose wake-up came this late (seconds; the event loop's timers are coarse, about a
# millisecond) still takes the turn it waited for, so the next turn counts from that turn and a long
# queue passes at the rate. Any later (the process was busy) and the next turn counts from now.
SLACK_S = 0.005
# The longest a waiter sleeps before it looks again, whatever it waits for.
MAX_NAP_S = 3600.0
# A tenant's limiter (and its Retry-After pauses) is dropped this long (seconds) after its last use,
# once nothing waits on it and no Retry-After holds it: the next request starts a fresh one at the
# ceiling. At most MAX_TENANTS are kept; past that the least recently used idle one goes.
TENANT_IDLE_S = 3600.0
MAX_TENANTS = 10_000


class _Waiter:
    """One queued request: its place in the queue and the event its turn (or a re-check) sets."""

    __slots__ = ("deadline", "place", "woken")

    def __init__(self, place: tuple[int, float, int], deadline: float | None) -> None:
        self.place = place
        self.deadline = deadline
        self.woken = anyio.Event()

    def wake(self) -> None:
        self.woken.set()


_Entry = tuple[int, float, int, _Waiter]  # (priority, due, arrival, waiter): the smallest goes next


class AdaptiveLimiter:
    """Spaces upstream requests 1/rate apart, in priority order; the rate adapts to 429s.

    ``ceiling`` may be ``math.inf``: no pacing at all (a 429's Retry-After still holds turns back).
    """

    def __init__(
        self,
        ceiling: float,
        *,
        start: float | None = None,
        floor: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ceiling = ceiling
        self.floor = min(floor, ceiling)
        # Start at the ceiling (the user's own number); the first 429 halves it.
        self.rate = min(ceiling, start if start is not None else ceiling)
        self._clock = clock
        self._next = 0.0  # the clock value from which the next turn may go
        self._cut_at: float | None = None  # when a 429 last halved the rate
        self._queue: list[_Entry] = []  # sorted: the head goes next
        self._timed: set[_Waiter] = set()  # queued waiters with a deadline
        self._arrivals = itertools.count()

    @property
    def queued(self) -> int:
        """How many requests wait for a turn."""
        return len(self._queue)

    async def acquire(
        self, priority: int = WAITED, *, due: float = 0.0, deadline: float | None = None
    ) -> bool:
        """Wait for this request's turn; False if ``deadline`` (a clock value) passes first, or
        would pass before the requests ahead of this one are through."""
        place = (priority, due, next(self._arrivals))
        waiter = _Waiter(place, deadline)
        entry: _Entry = (*place, waiter)
        self._enqueue(entry)
        waited = False  # it queued for its turn (rather than finding it free)
        try:
            while True:
                now = self._clock()
                head = self._queue[0] is entry
                if head and now >= self._next:
                    self._grant(now, waited)
                    return True
                if deadline is not None and (now >= deadline or self._turn(entry, now) > deadline):
                    return False
                nap = self._next - now if head else math.inf
                if deadline is not None:
                    nap = min(nap, deadline - now)
                waited = True
                waiter.woken = anyio.Event()
                with anyio.move_on_after(min(nap, MAX_NAP_S)):
                    await waiter.woken.wait()
        finally:
            self._leave(entry)

    def _enqueue(self, entry: _Entry) -> None:
        index = bisect.bisect_left(self._queue, entry)
        self._queue.insert(index, entry)
        waiter = entry[3]
        if waiter.deadline is not None:
            self._timed.add(waiter)
        if index < len(self._queue) - 1:
            # Queued ahead of others: a waiter behind it with a deadline may no longer make it.
            for other in self._timed:
                if other.place > waiter.place:
                    other.wake()

    def _leave(self, entry: _Entry) -> None:
        """Take a refused or cancelled waiter out of the queue (a granted one is out already)."""
        waiter = entry[3]
        self._timed.discard(waiter)
        index = bisect.bisect_left(self._queue, entry)
        if index < len(self._queue) and self._queue[index] is entry:
            del self._queue[index]
            if index == 0 and self._queue:
                self._queue[0][3].wake()  # the turn it was sleeping towards is the next one's now

    def _grant(self, now: float, waited: bool) -> None:
        entry = self._queue.pop(0)
        self._timed.discard(entry[3])
        # A request that queued for this turn takes it, however late its wake-up: otherwise every
        # wake-up's lateness would add up along the queue. One that found the turn free starts from now.
        start = self._next if waited and now - self._next <= SLACK_S else now
        self._next = start + 1.0 / self.rate
        if self._queue:
            self._queue[0][3].wake()

    def _turn(self, entry: _Entry, now: float) -> float:
        """The earliest time this entry could go, if the rate holds."""
        ahead = bisect.bisect_left(self._queue, entry)
        return max(now, self._next) + ahead / self.rate

    def idle(self) -> bool:
        """Nobody waits for a turn and no Retry-After holds turns back: dropping it loses nothing
        but the rate it learned."""
        return not self._queue and self._clock() >= self._next

    def succeeded(self) -> None:
        """A clean answer: creep the rate up towards the ceiling."""
        self.rate = min(self.ceiling, self.rate + 0.02 * self.ceiling)

    def rate_limited(self, retry_after: float | None) -> None:
        """A 429: hold every request back for Retry-After, and halve the rate (once per
        :data:`CUT_EVERY_S`: the other requests in flight met the same limit, not a lower one)."""
        now = self._clock()
        if self._cut_at is None or now - self._cut_at >= CUT_EVERY_S:
            self.rate = max(self.floor, self.rate / 2)
            self._cut_at = now
        if retry_after:
            self._next = max(self._next, now + retry_after)
        # Every turn is later now: the waiters with a deadline look again whether theirs still comes
        # in time. (The head sleeps towards the old turn, wakes and sleeps on: nothing lost.)
        for waiter in self._timed:
            waiter.wake()


class _Tenant:
    """One team-mode tenant's pacing: its limiter, and when its polls of each family may go again."""

    __slots__ = ("limiter", "paused")

    def __init__(self, limiter: AdaptiveLimiter) -> None:
        self.limiter = limiter
        self.paused: dict[ApiFamily, float] = {}  # family -> Retry-After's end (clock value)

    def busy(self, now: float) -> bool:
        return not self.limiter.idle() or any(until > now for until in self.paused.values())


class TenantLimiters:
    """The shared limiter and, in team mode, one per tenant in front of it (as high as
    ``tenant_max_rps``, by default the shared ceiling): a busy tenant queues behind itself.
    A 429 slows the key it came for: the shared limiter for the server's own key, else the tenant's.

    A tenant's limiter is dropped ``idle_s`` after its last use unless requests wait on it or a
    Retry-After holds it (:data:`TENANT_IDLE_S`, :data:`MAX_TENANTS`).
    """

    def __init__(
        self,
        max_rps: float,
        tenant_max_rps: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        idle_s: float = TENANT_IDLE_S,
        max_tenants: int = MAX_TENANTS,
    ) -> None:
        self._clock = clock
        self.shared = AdaptiveLimiter(max_rps, clock=clock)
        self._server = _Tenant(self.shared)
        self._tenant_max_rps = tenant_max_rps if tenant_max_rps is not None else max_rps
        self._own: IdleMap[str, _Tenant] = IdleMap(
            idle_s=idle_s, max_size=max_tenants, clock=clock, busy=lambda t: t.busy(clock())
        )

    @property
    def tenants(self) -> int:
        """Team-mode tenants whose limiter is held now."""
        return len(self._own)

    @property
    def queued(self) -> int:
        """Requests waiting for a turn, each counted once (a tenant's first wait on its own limiter,
        then on the shared one)."""
        return self.shared.queued + sum(t.limiter.queued for t in self._own.values())

    def _tenant(self, tenant: str) -> _Tenant:
        if tenant == SERVER_TENANT:
            return self._server
        state = self._own.get(tenant)
        if state is None:
            state = _Tenant(AdaptiveLimiter(self._tenant_max_rps, clock=self._clock))
            self._own.put(tenant, state)
        return state

    def of(self, tenant: str) -> AdaptiveLimiter:
        """The limiter that a 429 on ``tenant``'s key slows: the shared one for the server's own key."""
        return self._tenant(tenant).limiter

    async def acquire(
        self, tenant: str, priority: int = WAITED, *, due: float = 0.0, deadline: float | None = None
    ) -> bool:
        """A turn for one of ``tenant``'s requests: its own limiter's first, then the shared one's."""
        if tenant != SERVER_TENANT and not await self.of(tenant).acquire(
            priority, due=due, deadline=deadline
        ):
            return False
        return await self.shared.acquire(priority, due=due, deadline=deadline)

    def succeeded(self, tenant: str) -> None:
        """A clean answer to one of ``tenant``'s requests: creep back up."""
        self.shared.succeeded()
        if tenant != SERVER_TENANT:
            self.of(tenant).succeeded()

    def rate_limited(self, tenant: str, retry_after: float | None, family: ApiFamily | None = None) -> None:
        """A 429 on ``tenant``'s key: that key's limiter slows down and holds back. ``family``: the
        API a poll was refused on; its scheduled polls wait out Retry-After (:meth:`paused_until`)."""
        state = self._tenant(tenant)
        state.limiter.rate_limited(retry_after)
        if retry_after and family is not None:
            until = self._clock() + retry_after
            state.paused[family] = max(state.paused.get(family, 0.0), until)

    def paused_until(self, tenant: str, family: ApiFamily) -> float:
        """The clock value before which ``tenant``'s scheduled polls of ``family`` wait (a Retry-After)."""
        state = self._server if tenant == SERVER_TENANT else self._own.get(tenant)
        return 0.0 if state is None else state.paused.get(family, 0.0)
