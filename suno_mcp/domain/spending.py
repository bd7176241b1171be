"""Spending rules: prices per request kind, a budget over a time window, and when to ask.

``SUNO_MCP_PRICES`` (``music=0.10,lyrics=0.01,concat=0.10``) gives what one request of each
kind costs, in the user's own currency; without it usage is shown as counts only.
``SUNO_MCP_BUDGET`` limits paid requests in a sliding window: ``20/day`` counts requests,
``cost:5.00/day`` limits the estimated cost (and needs prices). ``SUNO_MCP_CONFIRM`` says
when the person is asked before a paid request is sent.

No MCP here: the service calls a :data:`Confirm` callback with a :class:`Question`, and the
server turns that into an elicitation.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict

from suno_mcp.domain.status import ApiFamily, TaskKind

ConfirmMode = Literal["over-budget", "always", "never"]
# What the person answered; "unsupported" when the client cannot ask them at all.
Decision = Literal["accept", "decline", "cancel", "unsupported"]

KINDS: tuple[str, ...] = get_args(TaskKind)
HOUR_S = 3600.0
DAY_S = 24 * HOUR_S
# The windows get_usage reports, and what each is called.
USAGE_WINDOWS: tuple[tuple[str, float], ...] = (("hour", HOUR_S), ("day", DAY_S), ("30d", 30 * DAY_S))

_UNITS = {"h": HOUR_S, "hour": HOUR_S, "d": DAY_S, "day": DAY_S, "week": 7 * DAY_S, "month": 30 * DAY_S}
_BUDGET_RE = re.compile(r"^(?P<cost>cost:)?\s*(?P<limit>\d+(?:\.\d+)?)\s*/\s*(?P<n>\d+)?\s*(?P<unit>[a-z]+)$")
_BUDGET_HELP = (
    "write <number>/<window>, e.g. 20/day (requests), 5/hour, 100/30d, "
    "or cost:5.00/day (estimated cost, needs SUNO_MCP_PRICES); windows: hour, day, week, month, <n>h, <n>d"
)


class Budget(BaseModel):
    """At most ``limit`` paid requests (or, with ``cost``, that much estimated cost) per window."""

    model_config = ConfigDict(frozen=True)

    limit: float
    window_s: float
    cost: bool = False
    text: str  # as the user wrote it

    def describe(self) -> str:
        """The budget in words, e.g. '20 requests per day'."""
        unit = self.text.split("/", 1)[1].strip()
        amount = f"{self.limit:.2f} (estimated cost)" if self.cost else f"{self.limit:g} requests"
        return f"{amount} per {unit}"

    def weight(self, kind: str, prices: Mapping[str, float]) -> float:
        """What one request of this kind uses of the budget."""
        return prices.get(kind, 0.0) if self.cost else 1.0


# Counts the paid requests of the last day (no limit is enforced with it).
DAY_COUNT = Budget(limit=float("inf"), window_s=DAY_S, text="requests/day")


def parse_budget(raw: str) -> Budget:
    """``20/day``, ``5/hour``, ``100/30d``, ``cost:5.00/day``; ValueError says the fix."""
    text = raw.strip().lower()
    match = _BUDGET_RE.match(text)
    if match is None or match["unit"].rstrip("s") not in _UNITS:
        raise ValueError(f"{raw!r} is not a budget. {_BUDGET_HELP}")
    limit = float(match["limit"])
    if not match["cost"] and not limit.is_integer():
        raise ValueError(
            f"{raw!r}: a request count must be a whole number; for money write cost:{match['limit']}/... "
            f"({_BUDGET_HELP})"
        )
    window = _UNITS[match["unit"].rstrip("s")] * int(match["n"] or 1)
    if window <= 0:
        raise ValueError(f"{raw!r}: the window must be longer than zero. {_BUDGET_HELP}")
    return Budget(limit=limit, window_s=window, cost=bool(match["cost"]), text=text)


def parse_prices(raw: str) -> dict[str, float]:
    """``music=0.10,lyrics=0.01,concat=0.10``; ValueError names the part and the fix."""
    prices: dict[str, float] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        kind, sep, value = part.partition("=")
        kind = kind.strip().lower()
        help_ = f"write kind=price pairs, e.g. music=0.10,lyrics=0.01,concat=0.10 (kinds: {', '.join(KINDS)})"
        if not sep or kind not in KINDS:
            raise ValueError(f"{part.strip()!r} is not a price: {help_}")
        try:
            price = float(value)
        except ValueError:
            raise ValueError(f"{value.strip()!r} is not a number: {help_}") from None
        if price < 0 or price != price:
            raise ValueError(f"the price of {kind} must be zero or more: {help_}")
        prices[kind] = price
    return prices


_KIND_WORDS = {"music": "new music (two clips)", "lyrics": "lyrics", "concat": "joining a song into one clip"}


@dataclass(frozen=True)
class Question:
    """What the person is asked before a paid request is sent."""

    kind: TaskKind
    api: ApiFamily
    model: str | None
    what: str | None  # the request, shortened
    fingerprint: str
    over_budget: bool
    budget: Budget | None
    used: float | None  # of the budget's window, before this request
    price: float | None

    @property
    def key(self) -> str:
        """Names this question across the rounds of one tool call (the same request, the same ask)."""
        return hashlib.sha256(f"{self.fingerprint}:{self.over_budget}".encode()).hexdigest()[:16]

    def message(self) -> str:
        """The text the person reads."""
        model = f", model {self.model}" if self.model else ""
        lines = [
            f"Send a paid Suno request: {_KIND_WORDS.get(self.kind, self.kind)}{model} ({self.api} API)."
        ]
        if self.what:
            lines.append(f"Request: {self.what}")
        lines.append(
            f"Cost: about {self.price:.2f}." if self.price is not None else "Cost: one paid request."
        )
        if self.budget is not None and self.used is not None:
            used = f"{self.used:.2f}" if self.budget.cost else f"{self.used:g}"
            lines.append(f"Used so far: {used} of the budget of {self.budget.describe()} (SUNO_MCP_BUDGET).")
        elif self.used is not None:
            lines.append(f"Paid requests in the last day: {self.used:g} (no budget set).")
        if self.over_budget:
            lines.append("This request goes past the budget.")
        lines.append("Accept to send it; decline to send nothing.")
        return "\n".join(lines)


Confirm = Callable[[Question], Awaitable[Decision]]

# The confirm callback of the tool call being run. The server sets it around every tool call,
# so every paid tool, however it reaches the service's submit, asks through the same path;
# direct callers of the service pass ``confirm=`` instead.
CURRENT_CONFIRM: ContextVar[Confirm | None] = ContextVar("suno_mcp_confirm", default=None)


def fingerprint(api: ApiFamily, kind: TaskKind, fields: dict[str, Any]) -> str:
    """A stable hash of a request, blind to case and spacing, for the duplicate guard."""

    def norm(key: str, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if key == "url":
            return value.strip()  # a URL's path is case-sensitive: two spellings, two files
        if key == "prompt" and kind == "music":
            # Lyrics: line breaks and capitals are phrasing, so only the ends are trimmed.
            return value.strip()
        return " ".join(value.lower().split())

    canonical = {k: norm(k, v) for k, v in sorted(fields.items()) if v not in (None, "", False)}
    blob = json.dumps({"api": api, "kind": kind, "fields": canonical}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def request_line(body: dict[str, Any], limit: int = 120) -> str | None:
    """What a request asks for, in one short line, for the person asked to pay for it."""
    parts = []
    for key in ("gpt_description_prompt", "title", "tags", "prompt", "continue_clip_id", "clip_id"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            parts.append(f"{key}={' '.join(value.split())}")
    text = "; ".join(parts)
    return None if not text else text if len(text) <= limit else text[: limit - 1] + "…"
