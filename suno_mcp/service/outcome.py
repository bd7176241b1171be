"""What a service call found: :class:`Outcome`, the record and how the service got there."""

from __future__ import annotations

from pydantic import BaseModel

from suno_mcp.domain.models import TaskRecord


class Outcome(BaseModel):
    """What a service call found: the ledger record and how we got there."""

    record: TaskRecord
    deduplicated: bool = False
    waited_s: float = 0.0
    poll_error: str | None = None
    checked_s_ago: float | None = None  # how old the upstream's newest answer is
    # False: the upstream accepted it, but the ledger could not record it yet; the journal holds it.
    recorded: bool = True
