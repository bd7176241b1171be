"""What the service tells whoever listens while it runs: a task moved, a paid request was recorded,
the upstream asked us to slow down, a person was asked about spending.

The service keeps one :class:`NewsFeed` (shared by every caller's view of it); the MCP layer
listens to it to send resource-updated and log notifications. Every item names its tenant, so a
listener tells each caller only their own news, and carries nothing secret: no key, no request
body, no URL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from suno_mcp.domain.status import Status

if TYPE_CHECKING:
    from suno_mcp.domain.models import Task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskMoved:
    """A task's status changed, or one of its clips gained audio (a preview or the final file)."""

    tenant: str
    task_id: str
    status: Status
    error: str | None = None


@dataclass(frozen=True)
class UsageRecorded:
    """A paid request was written to the ledger (or one written stopped counting): usage changed."""

    tenant: str


@dataclass(frozen=True)
class Paused:
    """The upstream answered 429: this tenant's requests wait ``retry_after`` seconds (None: unsaid)."""

    tenant: str
    retry_after: float | None


@dataclass(frozen=True)
class SpendAsked:
    """The person was asked before a paid request (the budget was reached, or every request asks)
    and answered ``answer`` ("accept", "decline" or "cancel")."""

    tenant: str
    over_budget: bool
    answer: str


News = TaskMoved | UsageRecorded | Paused | SpendAsked
Listener = Callable[[News], None]


def _audio(task: Task) -> set[tuple[str, str | None, str | None]]:
    return {(clip.id, clip.preview_url, clip.audio_url) for clip in task.clips}


def moved(before: Task | None, after: Task) -> bool:
    """Whether ``after`` is news to someone following the task: its status changed, or a clip's
    preview or audio URL appeared or changed. A poll that brought the same again is no news."""
    if before is None:
        return True
    return before.status is not after.status or _audio(before) != _audio(after)


class NewsFeed:
    """Listeners of the service's news. A listener is called on the event loop, at once, and must
    neither block nor raise (it hands the item on, e.g. into a bounded queue)."""

    def __init__(self) -> None:
        self._listeners: dict[object, Listener] = {}

    def follow(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every item from now on; returns the function that stops it."""
        token = object()
        self._listeners[token] = listener

        def stop() -> None:
            self._listeners.pop(token, None)

        return stop

    def tell(self, news: News) -> None:
        """Hand ``news`` to every listener; one that raises is logged and the others still hear it."""
        for listener in list(self._listeners.values()):
            try:
                listener(news)
            except Exception:
                log.exception("a news listener failed on %s", type(news).__name__)
