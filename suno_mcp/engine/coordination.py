"""Which replica polls a task, and how the others hear what it found.

Every replica runs its own :class:`~suno_mcp.engine.poller.Poller`. Left alone, N replicas with waiters on
one task would each fetch it on every tick. A :class:`PollCoordinator` stands between a poller's
schedule and the upstream: before each fetch the poller asks :meth:`PollCoordinator.take_lease`, and
only a fetch whose lease was granted goes out. After a fetch stored a new state in the shared ledger,
:meth:`PollCoordinator.changed` tells the other replicas, whose pollers read that state from the
ledger instead of fetching it again.

A task's lease has two parts: the *polling lease* (who polls it on schedule, until when) and the last
fetch (who fetched it, when), which keeps everyone else off for ``fresh_s``. Two kinds of request
take them:

- a *scheduled* poll (the poller's own schedule) is granted to the replica holding the polling lease,
  or to anyone once it has expired (its holder died or stopped following the task), and only
  when no other replica fetched the task within ``fresh_s``; the grant renews the lease. A replica
  whose waiters need more than the holder gives them (nobody fetched within ``stale_s``) takes the
  lease over, so the most demanding schedule sets the pace, once;
- a *read* (a status read or a waited call someone is asking for right now) is granted to anyone when
  nobody fetched within ``fresh_s`` (it takes the polling lease only if that had expired); a refused
  read is answered from the ledger.

The vendor limits a key, not a replica: when the upstream answers one replica's request with 429,
:meth:`PollCoordinator.paused` passes the Retry-After on, and every replica slows that tenant down as
if the 429 had been its own. Without it, each replica would go on sending at its full rate with a key
the vendor has just told to wait.

:class:`LocalCoordinator` is the single-process case (always grants: there is nobody to share with);
:mod:`suno_mcp.engine.coordination_pg` keeps the leases in PostgreSQL and sends notices with LISTEN/NOTIFY.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio

from suno_mcp.domain.models import ApiFamily, TaskRef

# Called with (tenant, task id) when another replica stored a new state of that task.
OnChange = Callable[[str, str], Awaitable[None]]
# Called with (tenant, API family or None for a submit, Retry-After seconds or None) when the
# upstream answered another replica's request for that tenant with 429.
OnPause = Callable[[str, ApiFamily | None, float | None], Awaitable[None]]


class PollCoordinator(Protocol):
    """Shares the polling of tasks between the replicas of one deployment."""

    async def take_lease(
        self,
        ref: TaskRef,
        *,
        read: bool,
        fresh_s: float,
        lease_s: float,
        stale_s: float | None = None,
    ) -> bool:
        """May this replica fetch this task now? A granted lease counts as a fetch for the others."""
        ...

    async def changed(self, ref: TaskRef) -> None:
        """This replica stored a new state of the task: tell the others."""
        ...

    async def release(self, ref: TaskRef) -> None:
        """This replica no longer follows the task (finished, stalled or forgotten)."""
        ...

    async def paused(self, tenant: str, family: ApiFamily | None, retry_after: float | None) -> None:
        """The upstream answered 429 to one of this tenant's requests here: tell the others."""
        ...

    async def run(self, on_change: OnChange, on_pause: OnPause | None = None) -> None:
        """Deliver the other replicas' notices (changes to ``on_change``, 429s to ``on_pause``)
        until cancelled."""
        ...

    async def close(self) -> None:
        """Let go of whatever :meth:`run` and :meth:`take_lease` hold (connections)."""
        ...


class LocalCoordinator:
    """One process alone: every lease is granted and nobody else needs telling."""

    async def take_lease(
        self,
        ref: TaskRef,
        *,
        read: bool,
        fresh_s: float,
        lease_s: float,
        stale_s: float | None = None,
    ) -> bool:
        return True

    async def changed(self, ref: TaskRef) -> None:
        return None

    async def release(self, ref: TaskRef) -> None:
        return None

    async def paused(self, tenant: str, family: ApiFamily | None, retry_after: float | None) -> None:
        return None

    async def run(self, on_change: OnChange, on_pause: OnPause | None = None) -> None:
        await anyio.sleep_forever()  # no other replica will ever send a notice

    async def close(self) -> None:
        return None
