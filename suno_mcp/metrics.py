"""What an operator counts: the Prometheus metrics every layer records, in one registry.

The metric objects live here, below every layer that records them (the server counts tool calls, the
service paid submits, the engine the tasks it follows and the requests queued for a turn, the store
ledger calls, the upstream its requests); :mod:`suno_mcp.server.metrics` serves :data:`REGISTRY` on
its own listener when ``SUNO_MCP_METRICS_PORT`` is set. Recording costs a lock and an add whether
anyone scrapes or not.

No label may hold a key, a tenant id, a task or clip id or any prompt text: label values come only
from the fixed sets named here (tool names, endpoint path templates such as ``/v1/suno/fetch/{id}``,
HTTP statuses, outcome words, ledger method names). An unbounded label would also be a memory leak.
"""

from __future__ import annotations

from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

# Our own registry rather than the library's global one: what is served is exactly what is here
# (plus the process's memory, CPU and open files, which an operator of a long-running server wants).
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

TOOL_CALLS = Counter(
    "suno_mcp_tool_calls",
    "MCP tool calls by tool and outcome (ok, error, invalid_arguments, ask_first, cancelled, crashed).",
    ["tool", "outcome"],
    registry=REGISTRY,
)
UPSTREAM_REQUESTS = Counter(
    "suno_mcp_upstream_requests",
    "Requests to the vendor's API by endpoint path template, method and HTTP status "
    "(or timeout / connect_error / transport_error when no answer came).",
    ["endpoint", "method", "status"],
    registry=REGISTRY,
)
UPSTREAM_RATE_LIMITED = Counter(
    "suno_mcp_upstream_rate_limited",
    "429 answers from the vendor's API, by endpoint path template.",
    ["endpoint"],
    registry=REGISTRY,
)
PAID_SUBMITS = Counter(
    "suno_mcp_paid_submits",
    "Submits sent to the vendor by request kind and outcome: accepted (a task id came back), refused "
    "(the vendor said no: nothing charged) or unknown (the answer was lost: maybe charged).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
LEDGER_CALL_SECONDS = Histogram(
    "suno_mcp_ledger_call_seconds",
    "How long task-ledger calls take, by ledger method.",
    ["operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
LEDGER_UNAVAILABLE = Counter(
    "suno_mcp_ledger_unavailable",
    "Ledger calls that failed because the ledger did not answer (LedgerUnavailableError), by method.",
    ["operation"],
    registry=REGISTRY,
)
AUTO_DOWNLOADS = Gauge(
    "suno_mcp_auto_downloads",
    "Automatic downloads of finished audio now running or queued (SUNO_MCP_AUTO_DOWNLOAD).",
    ["state"],
    registry=REGISTRY,
)


class PollerSizes(Protocol):
    """What the gauges read of a running poller."""

    @property
    def watching(self) -> int:
        """Tasks it follows now."""
        ...

    @property
    def queued(self) -> int:
        """Upstream requests waiting for a turn."""
        ...


# The pollers running in this process (usually one). A plain set: the listener's thread copies it
# with tuple(), which the interpreter does in one step, while the event loop adds and removes.
_POLLERS: set[PollerSizes] = set()


def poller_started(poller: PollerSizes) -> None:
    """Count this poller's tasks and queue in the gauges while it runs."""
    _POLLERS.add(poller)


def poller_stopped(poller: PollerSizes) -> None:
    """Stop counting a poller that no longer runs."""
    _POLLERS.discard(poller)


TASKS_IN_FLIGHT = Gauge(
    "suno_mcp_tasks_in_flight",
    "Tasks submitted and not finished that this process follows now.",
    registry=REGISTRY,
)
TASKS_IN_FLIGHT.set_function(lambda: float(sum(p.watching for p in tuple(_POLLERS))))
POLL_QUEUE_DEPTH = Gauge(
    "suno_mcp_poll_queue_depth",
    "Upstream requests (polls, status reads, submits) waiting for a turn from the rate limiters.",
    registry=REGISTRY,
)
POLL_QUEUE_DEPTH.set_function(lambda: float(sum(p.queued for p in tuple(_POLLERS))))
