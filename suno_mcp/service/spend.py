"""Spending: the duplicate guard, the budget and the person's answer before a paid request, and usage.

A mixin of :class:`suno_mcp.service.core.SunoService`: the rules themselves (weights, windows,
the request's fingerprint) are the domain's (:mod:`suno_mcp.domain.spending`) and the ledger's
(:mod:`suno_mcp.store`); this is the order they are applied in before anything is sent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from suno_mcp.domain.errors import BudgetReachedError, DeclinedError
from suno_mcp.domain.models import ApiFamily, TaskKind, TaskRecord, UsageLine
from suno_mcp.domain.news import NewsFeed, SpendAsked
from suno_mcp.domain.spending import DAY_COUNT, USAGE_WINDOWS, Confirm, Decision, Question, request_line
from suno_mcp.settings import Settings
from suno_mcp.store.base import LedgerStore, OverBudget
from suno_mcp.store.rules import fits_budget


class UsageWindow(BaseModel):
    """Paid requests in one window (the last hour, day or 30 days)."""

    window: str
    lines: list[UsageLine]


class Spending:
    """What the service checks and asks before it pays, and what it reports as spent."""

    settings: Settings
    ledger: LedgerStore
    sandbox: bool
    tenant: str
    wall: Callable[[], float]
    news: NewsFeed

    async def _admit(
        self,
        family: ApiFamily,
        kind: TaskKind,
        body: dict[str, Any],
        fp: str,
        window: float,
        confirm: Confirm | None,
    ) -> tuple[str, TaskRecord | None]:
        """The duplicate guard, then the budget and the person's answer, then the intent row.

        A reused task costs nothing, so a duplicate is found before anything is counted or
        asked. The budget check and the intent row are one ledger transaction; when the
        person is asked, the reservation runs again after the answer, since others may have spent
        meanwhile.
        """
        budget, prices, mode = self.settings.budget, self.settings.prices, self.settings.confirm
        reserve = functools.partial(
            self.ledger.reserve,
            api=family,
            kind=kind,
            request=body,
            fingerprint=fp,
            window_s=window,
            sandbox=self.sandbox,
            budget=budget,
            prices=prices,
            tenant=self.tenant,
        )
        used: float | None = None
        if mode == "always":
            existing = (
                await self.ledger.find_duplicate(fp, window, sandbox=self.sandbox, tenant=self.tenant)
                if window > 0
                else None
            )
            if existing is not None:
                return "", existing
            if budget is not None:
                used = await self.ledger.used(budget, prices, sandbox=self.sandbox, tenant=self.tenant)
        else:
            try:
                return await reserve()
            except OverBudget as over:
                used = over.used
                if mode == "never":
                    raise BudgetReachedError(self._budget_text(used)) from None
        over_budget = budget is not None and used is not None and not fits_budget(budget, prices, kind, used)
        if budget is None:
            # No budget to measure against: the person still sees what was spent today.
            used = await self.ledger.used(DAY_COUNT, sandbox=self.sandbox, tenant=self.tenant)
        await self._ask(
            confirm,
            Question(
                kind=kind,
                api=family,
                model=body.get("mv") if isinstance(body.get("mv"), str) else None,
                what=request_line(body),
                fingerprint=fp,
                over_budget=over_budget,
                budget=budget,
                used=used,
                price=prices.get(kind),
            ),
        )
        try:
            return await reserve(allow_over=1 if over_budget else 0)
        except OverBudget as over:
            raise BudgetReachedError(
                self._budget_text(over.used) + " Other requests used the budget while the user was asked."
            ) from None

    async def _ask(self, confirm: Confirm | None, question: Question) -> None:
        """Ask the person; return only on an explicit accept (anything else raises, nothing is sent)."""
        decision: Decision = "unsupported" if confirm is None else await confirm(question)
        if decision != "unsupported":
            self.news.tell(SpendAsked(self.tenant, question.over_budget, decision))
        if decision == "unsupported":
            if question.over_budget:
                raise BudgetReachedError(self._budget_text(question.used or 0.0, asked=False))
            raise BudgetReachedError(
                "SUNO_MCP_CONFIRM=always asks the user before every paid request, but this MCP client cannot "
                "ask (it does not support elicitation). Nothing was sent. The user can use a client with "
                "elicitation, or set SUNO_MCP_CONFIRM=over-budget in the server's environment."
            )
        if decision != "accept":
            raise DeclinedError(
                f"The user {'declined' if decision == 'decline' else 'cancelled'} this paid request when asked; "
                "nothing was sent or charged. Do not retry: ask the user what they want instead."
            )

    def _budget_text(self, used: float, *, asked: bool = True) -> str:
        budget = self.settings.budget
        assert budget is not None
        spent = f"{used:.2f}" if budget.cost else f"{used:g} requests"
        text = (
            f"The spending budget is reached: {spent} used of {budget.describe()} "
            f"(SUNO_MCP_BUDGET={budget.text}). Nothing was sent or charged."
        )
        if not asked:
            text += " This MCP client cannot ask the user to go past it (no elicitation support)."
        return (
            text + " Tell the user; they can raise SUNO_MCP_BUDGET in the server's environment (their MCP "
            "client's config) and restart the server, or wait for the window to move on. get_usage shows usage."
        )

    async def budget_used(self) -> float | None:
        """How much of SUNO_MCP_BUDGET its current window has used (None without a budget)."""
        budget = self.settings.budget
        if budget is None:
            return None
        return await self.ledger.used(budget, self.settings.prices, sandbox=self.sandbox, tenant=self.tenant)

    async def usage(self) -> list[UsageWindow]:
        """Paid requests in the last hour, day and 30 days, from the ledger."""
        now = self.wall()
        return [
            UsageWindow(
                window=name,
                lines=await self.ledger.usage(now - seconds, sandbox=self.sandbox, tenant=self.tenant),
            )
            for name, seconds in USAGE_WINDOWS
        ]
