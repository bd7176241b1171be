"""What the service needs of a ledger, declared once: :class:`LedgerStore` and :class:`OverBudget`.

Two backends provide it: :class:`suno_mcp.store.sqlite.SqliteLedger` (one machine, one file) and
:class:`suno_mcp.store.postgres.PostgresLedger` (replicas sharing a database). Both apply the same
money rules from :mod:`suno_mcp.store.rules`; they differ only in SQL, connections and locking.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from suno_mcp.domain.models import ApiFamily, SavedFile, Status, Task, TaskKind, TaskRecord, UsageLine
from suno_mcp.domain.spending import Budget
from suno_mcp.store.signin import SignInStore

# One task's latency: (api, kind, model, seconds to playable, seconds to complete); either may be None.
LatencySample = tuple[ApiFamily, TaskKind, str | None, float | None, float | None]


class OverBudget(Exception):
    """:meth:`LedgerStore.reserve` wrote nothing: the request would go past the budget."""

    def __init__(self, used: float) -> None:
        super().__init__(f"{used:g} of the budget used")
        self.used = used


class LedgerStore(Protocol):
    """What the service needs of a ledger, whichever database holds it.

    Every implementation keeps three rules: the intent row is durable before ``reserve`` /
    ``record_intent`` return (a submit is only sent after); ``reserve`` is atomic against every
    other writer of the same database, not only against this process; and every method taking
    ``tenant`` sees, counts and writes that tenant's rows only ("" is the server's own key, the
    single-key modes).

    A database that cannot answer in time (down, restarting, locked or busy past its timeout)
    raises :class:`~suno_mcp.domain.errors.LedgerUnavailableError`, never a driver's error. A write
    asked for runs to its end even if the caller is cancelled, within the backend's bound: it
    commits or it leaves nothing behind.
    """

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None when the ledger lives in a database server."""
        ...

    async def close(self) -> None:
        """Finish queued work and close the database."""
        ...

    def signin_store(self) -> SignInStore:
        """The OAuth sign-in records (clients, codes, tokens, sealed keys) in this ledger's database,
        so every replica honours every token and a restart signs nobody out."""
        ...

    async def ping(self) -> None:
        """Ask the database a cheap question that needs what a paid request's intent needs first;
        raise :class:`~suno_mcp.domain.errors.LedgerUnavailableError` when it cannot answer."""
        ...

    async def record_intent(
        self,
        *,
        api: ApiFamily,
        kind: TaskKind,
        request: dict[str, Any],
        fingerprint: str | None,
        sandbox: bool = False,
        tenant: str = "",
    ) -> str:
        """Write the row for a submit about to be sent; returns its local id."""
        ...

    async def reserve(
        self,
        *,
        api: ApiFamily,
        kind: TaskKind,
        request: dict[str, Any],
        fingerprint: str,
        window_s: float,
        sandbox: bool = False,
        budget: Budget | None = None,
        prices: Mapping[str, float] | None = None,
        allow_over: int = 0,
        tenant: str = "",
    ) -> tuple[str, TaskRecord | None]:
        """Find a live duplicate of this request or write the intent for it, in one transaction.

        Returns ``(local_id, None)`` for a new intent, or ``("", record)`` for the tenant's live
        duplicate. With a ``budget``, raises :class:`OverBudget` (writing nothing) when this request
        would go past it; ``allow_over`` requests more than the budget are let through (ones the
        person accepted going over). Only the tenant's own rows are duplicates or count against
        its budget.
        """
        ...

    async def used(
        self,
        budget: Budget,
        prices: Mapping[str, float] | None = None,
        *,
        sandbox: bool = False,
        tenant: str = "",
    ) -> float:
        """How much of the budget's current window the tenant's paid requests have used."""
        ...

    async def usage(self, since: float, *, sandbox: bool = False, tenant: str = "") -> list[UsageLine]:
        """The tenant's paid requests made at or after ``since``, by kind, family and model."""
        ...

    async def find_duplicate(
        self, fingerprint: str, window_s: float, *, sandbox: bool = False, tenant: str = ""
    ) -> TaskRecord | None:
        """The tenant's newest live record with this request fingerprint made within the window."""
        ...

    async def record_submitted(self, local_id: str, task: Task) -> None:
        """The upstream accepted the submit: store its task id and first state."""
        ...

    async def record_rejected(self, local_id: str, error: str) -> None:
        """The upstream refused the submit (nothing was charged)."""
        ...

    async def record_unknown(self, local_id: str, error: str, raw_answer: str | None = None) -> None:
        """The submit may or may not have reached the upstream; ``raw_answer`` is what came back."""
        ...

    async def update(self, task: Task, *, tenant: str = "") -> None:
        """Store a newer state of a known task (by upstream task id, among the tenant's rows)."""
        ...

    async def record_milestone(
        self, task_id: str, milestone: str, seconds: float, *, tenant: str = ""
    ) -> None:
        """The task was first seen playable (or complete) ``seconds`` after its submit."""
        ...

    async def milestones(self) -> list[LatencySample]:
        """The newest tasks' milestone times, every tenant's: one sample per task, oldest first."""
        ...

    async def record_file(self, saved: SavedFile, *, tenant: str = "") -> None:
        """Remember a downloaded file of one of the tenant's clips."""
        ...

    async def get(self, task_id: str, *, tenant: str = "") -> TaskRecord | None:
        """The tenant's record with this upstream task id (or local id), if any."""
        ...

    async def find(self, task_or_clip_id: str, *, tenant: str = "") -> TaskRecord | None:
        """The tenant's record of a task id, else their newest record holding a clip of that id."""
        ...

    async def find_by_clip(self, clip_id: str, *, tenant: str = "") -> TaskRecord | None:
        """The tenant's newest record one of whose clips has this id."""
        ...

    async def adopt(
        self, api: ApiFamily, task: Task, *, sandbox: bool = False, tenant: str = ""
    ) -> TaskRecord:
        """Keep a task made elsewhere (found upstream by its id), once per tenant however many callers ask."""
        ...

    async def recent(
        self, *, statuses: Sequence[Status] | None = None, limit: int = 20, tenant: str = ""
    ) -> list[TaskRecord]:
        """The tenant's newest records first, optionally only those in some statuses."""
        ...

    async def task_ids(self, prefix: str, *, limit: int = 20, tenant: str = "") -> tuple[list[str], int]:
        """The tenant's upstream task ids beginning with ``prefix`` (exactly, case included), newest
        first and at most ``limit`` of them, and how many match in all."""
        ...
