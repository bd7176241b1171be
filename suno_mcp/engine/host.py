"""What the poller needs from the service that runs it: keys, the stored state, and where news goes.

The service (:class:`suno_mcp.service.core.SunoService`) provides :class:`PollerHost`; a poller
without one (tests, benchmarks) gets :class:`NoHost`, which stores nothing and holds no tenant's key.
Every method takes the task's ref: its tenant says whose row and key it is, whichever view of the
service the poller was given.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import SecretStr

from suno_mcp.domain.errors import ConfigurationError
from suno_mcp.domain.latency import Milestone
from suno_mcp.domain.models import Task, TaskRef


class NoKeyError(ConfigurationError):
    """This process holds no key for the task's tenant, so it cannot poll the task."""


NO_KEY = NoKeyError(
    "this server process has not seen the key of this task's owner (it restarted since their last "
    "call, or their calls went to another replica), so it does not poll the task itself; the owner's "
    "next call here brings the key and polling resumes"
)


class PollerHost(Protocol):
    """The poller's side door into the service."""

    def tenant_key(self, tenant: str) -> SecretStr | None:
        """The key this process holds for a team-mode tenant, or None (it then does not poll their tasks)."""
        ...

    async def stored_state(self, ref: TaskRef) -> Task | None:
        """The newest state the ledger holds (another replica may have fetched and stored it)."""
        ...

    async def task_fetched(self, ref: TaskRef, task: Task) -> None:
        """The upstream answered a poll with this state (new or not): store it."""
        ...

    async def milestone_reached(self, ref: TaskRef, milestone: Milestone, seconds: float) -> None:
        """This task was learnt to reach ``milestone`` ``seconds`` after its submit: keep it."""
        ...

    async def task_stalled(self, ref: TaskRef, task: Task) -> None:
        """This task's status has not moved for the stall limit: the poller stops following it."""
        ...

    def task_moved(self, ref: TaskRef, task: Task) -> None:
        """This task's newest state (fetched here, or stored by another replica) is news to its
        followers: a new status, or audio it did not have (:func:`suno_mcp.domain.news.moved`)."""
        ...

    def paused(self, tenant: str, retry_after: float | None) -> None:
        """The upstream answered one of ``tenant``'s requests with 429: their requests wait."""
        ...


class NoHost:
    """A poller on its own: holds no tenant's key, stores nothing, and has nothing stored."""

    def tenant_key(self, tenant: str) -> SecretStr | None:
        return None

    async def stored_state(self, ref: TaskRef) -> Task | None:
        return None

    async def task_fetched(self, ref: TaskRef, task: Task) -> None:
        return None

    async def milestone_reached(self, ref: TaskRef, milestone: Milestone, seconds: float) -> None:
        return None

    async def task_stalled(self, ref: TaskRef, task: Task) -> None:
        return None

    def task_moved(self, ref: TaskRef, task: Task) -> None:
        return None

    def paused(self, tenant: str, retry_after: float | None) -> None:
        return None
