"""A ledger that counts: every call's latency, and the calls the ledger did not answer.

:class:`MeteredLedger` wraps either backend (SQLite or PostgreSQL) and records each call in
:data:`suno_mcp.metrics.LEDGER_CALL_SECONDS` by method name, and each
:class:`~suno_mcp.domain.errors.LedgerUnavailableError` in :data:`suno_mcp.metrics.LEDGER_UNAVAILABLE`.
The backends stay free of metrics; the wiring wraps whichever it opened.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from suno_mcp import metrics
from suno_mcp.domain.errors import LedgerUnavailableError
from suno_mcp.domain.models import ApiFamily, SavedFile, Status, Task, TaskKind, TaskRecord, UsageLine
from suno_mcp.domain.spending import Budget
from suno_mcp.store.base import LatencySample, LedgerStore
from suno_mcp.store.signin import SignInStore

T = TypeVar("T")


async def _timed(operation: str, call: Awaitable[T]) -> T:
    started = time.perf_counter()
    try:
        return await call
    except LedgerUnavailableError:
        metrics.LEDGER_UNAVAILABLE.labels(operation).inc()
        raise
    finally:
        metrics.LEDGER_CALL_SECONDS.labels(operation).observe(time.perf_counter() - started)


class MeteredLedger:
    """A :class:`~suno_mcp.store.base.LedgerStore` that records each call of the one it wraps."""

    def __init__(self, inner: LedgerStore) -> None:
        self.inner = inner

    def __repr__(self) -> str:
        return f"MeteredLedger({self.inner!r})"

    @property
    def path(self) -> Path | None:
        return self.inner.path

    async def close(self) -> None:
        await self.inner.close()

    def signin_store(self) -> SignInStore:
        # Not metered: the sign-in calls are few, and their latency is the HTTP layer's to measure.
        return self.inner.signin_store()

    async def ping(self) -> None:
        await _timed("ping", self.inner.ping())

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
        return await _timed(
            "record_intent",
            self.inner.record_intent(
                api=api, kind=kind, request=request, fingerprint=fingerprint, sandbox=sandbox, tenant=tenant
            ),
        )

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
        return await _timed(
            "reserve",
            self.inner.reserve(
                api=api,
                kind=kind,
                request=request,
                fingerprint=fingerprint,
                window_s=window_s,
                sandbox=sandbox,
                budget=budget,
                prices=prices,
                allow_over=allow_over,
                tenant=tenant,
            ),
        )

    async def used(
        self,
        budget: Budget,
        prices: Mapping[str, float] | None = None,
        *,
        sandbox: bool = False,
        tenant: str = "",
    ) -> float:
        return await _timed("used", self.inner.used(budget, prices, sandbox=sandbox, tenant=tenant))

    async def usage(self, since: float, *, sandbox: bool = False, tenant: str = "") -> list[UsageLine]:
        return await _timed("usage", self.inner.usage(since, sandbox=sandbox, tenant=tenant))

    async def find_duplicate(
        self, fingerprint: str, window_s: float, *, sandbox: bool = False, tenant: str = ""
    ) -> TaskRecord | None:
        return await _timed(
            "find_duplicate",
            self.inner.find_duplicate(fingerprint, window_s, sandbox=sandbox, tenant=tenant),
        )

    async def record_submitted(self, local_id: str, task: Task) -> None:
        await _timed("record_submitted", self.inner.record_submitted(local_id, task))

    async def record_rejected(self, local_id: str, error: str) -> None:
        await _timed("record_rejected", self.inner.record_rejected(local_id, error))

    async def record_unknown(self, local_id: str, error: str, raw_answer: str | None = None) -> None:
        await _timed("record_unknown", self.inner.record_unknown(local_id, error, raw_answer))

    async def update(self, task: Task, *, tenant: str = "") -> None:
        await _timed("update", self.inner.update(task, tenant=tenant))

    async def record_milestone(
        self, task_id: str, milestone: str, seconds: float, *, tenant: str = ""
    ) -> None:
        await _timed(
            "record_milestone", self.inner.record_milestone(task_id, milestone, seconds, tenant=tenant)
        )

    async def milestones(self) -> list[LatencySample]:
        return await _timed("milestones", self.inner.milestones())

    async def record_file(self, saved: SavedFile, *, tenant: str = "") -> None:
        await _timed("record_file", self.inner.record_file(saved, tenant=tenant))

    async def get(self, task_id: str, *, tenant: str = "") -> TaskRecord | None:
        return await _timed("get", self.inner.get(task_id, tenant=tenant))

    async def find(self, task_or_clip_id: str, *, tenant: str = "") -> TaskRecord | None:
        return await _timed("find", self.inner.find(task_or_clip_id, tenant=tenant))

    async def find_by_clip(self, clip_id: str, *, tenant: str = "") -> TaskRecord | None:
        return await _timed("find_by_clip", self.inner.find_by_clip(clip_id, tenant=tenant))

    async def adopt(
        self, api: ApiFamily, task: Task, *, sandbox: bool = False, tenant: str = ""
    ) -> TaskRecord:
        return await _timed("adopt", self.inner.adopt(api, task, sandbox=sandbox, tenant=tenant))

    async def recent(
        self, *, statuses: Sequence[Status] | None = None, limit: int = 20, tenant: str = ""
    ) -> list[TaskRecord]:
        return await _timed("recent", self.inner.recent(statuses=statuses, limit=limit, tenant=tenant))

    async def task_ids(self, prefix: str, *, limit: int = 20, tenant: str = "") -> tuple[list[str], int]:
        return await _timed("task_ids", self.inner.task_ids(prefix, limit=limit, tenant=tenant))
