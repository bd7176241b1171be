"""Faults on demand: which misbehaviour the sandbox shows on which request.

A spec string such as ``"429:0.1,500:0.05@fetch,clip_fail:0.02"`` turns into rules; every
request to an endpoint draws one number from a seeded ``random.Random`` and walks the rules that
apply to it, so the same seed and the same request order give the same faults. Queued
injections (``inject``) fire before any draw, for tests that need one exact fault.

Kinds come in three families, each drawn from its own seeded stream so that adding one kind of
rule never shifts which requests get another:

- HTTP faults (``429``, ``policy_503``, ``wrapped_id``...) change how one request is answered;
- render faults (``clip_fail``) are drawn per clip when work is created;
- task faults (``status:cancelled``, ``stuck``, ``task_failure``...) are drawn once per
  accepted submit and stay with the task it created for its whole life.

Kind names may contain a colon (``status:cancelled``): in a spec the probability is what
follows the *last* colon, so ``status:cancelled:0.1@submit_music`` reads as expected.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: Endpoint names, as used in ``kind:probability@endpoint`` and in the request counters.
ENDPOINTS: tuple[str, ...] = (
    "submit_music",
    "submit_lyrics",
    "fetch",
    "generate",
    "feed",
    "concat",
    "media",
    "upload",
)

API_ENDPOINTS = frozenset(ENDPOINTS) - {"media"}
# Endpoints that start paid work: a low balance or a failed render only makes sense there.
SUBMIT_ENDPOINTS = frozenset({"submit_music", "submit_lyrics", "generate", "concat"})

# Submits that carry a prompt and make a task whose status is read later.
PROMPT_ENDPOINTS = frozenset({"submit_music", "submit_lyrics", "generate"})
TASK_SUBMIT_ENDPOINTS = frozenset({"submit_music", "submit_lyrics"})

#: Fault kinds and the endpoints each one can hit.
FAULT_KINDS: dict[str, frozenset[str]] = {
    "429": frozenset(ENDPOINTS),
    "500": frozenset(ENDPOINTS),
    "502": frozenset(ENDPOINTS),
    "503": frozenset(ENDPOINTS),
    "slow": frozenset(ENDPOINTS),
    "drop": frozenset(ENDPOINTS),
    "malformed": frozenset(ENDPOINTS),
    "code_error": API_ENDPOINTS,
    "balance": SUBMIT_ENDPOINTS,
    "expired": frozenset({"media"}),
    "clip_fail": SUBMIT_ENDPOINTS,
    # The upload still happens; only where its answer carries the new clip's id changes.
    "upload_clip_id": frozenset({"upload"}),
    "upload_data_id": frozenset({"upload"}),
    "upload_no_id": frozenset({"upload"}),
}

#: The vendor's documented refusals, answered with its literal words (see ``answers.py``).
#: ``balance`` above is one of them too.
FAULT_KINDS.update(
    {
        "policy_503": PROMPT_ENDPOINTS,
        "invalid_token": API_ENDPOINTS,
        "invalid_signature": API_ENDPOINTS,
        "invalid_prompt": PROMPT_ENDPOINTS,
        "invalid_prompt_200": TASK_SUBMIT_ENDPOINTS,
    }
)

#: Submit answers in another shape than the documented one; the work is created as usual.
RESHAPE_FAULTS = frozenset({"wrapped_id", "wrapped_id_plain", "odd_id", "wrapped_clip"})
FAULT_KINDS.update(
    {
        "wrapped_id": TASK_SUBMIT_ENDPOINTS,
        "wrapped_id_plain": TASK_SUBMIT_ENDPOINTS,
        "odd_id": TASK_SUBMIT_ENDPOINTS,
        "wrapped_clip": frozenset({"generate", "concat"}),
    }
)

#: Task faults and the status word each one makes the task's items report for good.
#: ``task_failure`` has none: its items stay ``queued`` while the task itself fails.
STATUS_WORDS: dict[str, str | None] = {
    "status:cancelled": "cancelled",
    "status:timeout": "timeout",
    "status:expired": "expired",
    "status:rejected": "rejected",
    "stuck": "in_review",
    "task_failure": None,
}
TASK_FAULTS = frozenset(STATUS_WORDS)
FAULT_KINDS.update(dict.fromkeys(STATUS_WORDS, PROMPT_ENDPOINTS))
FAULT_KINDS["task_failure"] = TASK_SUBMIT_ENDPOINTS

#: ``clip_fail`` is decided when work is created, not by answering the request differently.
RENDER_FAULTS = frozenset({"clip_fail"})


def fault_category(kind: str) -> str:
    """``"render"``, ``"task"`` or ``"http"``: when a fault of ``kind`` is decided."""
    if kind in RENDER_FAULTS:
        return "render"
    if kind in TASK_FAULTS:
        return "task"
    return "http"


@dataclass(frozen=True)
class FaultRule:
    """One ``kind:probability[@endpoint]`` entry of a fault spec."""

    kind: str
    probability: float
    endpoint: str | None = None

    def applies_to(self, endpoint: str) -> bool:
        """Whether this rule can fire on a request to ``endpoint``."""
        if self.endpoint is not None and self.endpoint != endpoint:
            return False
        return endpoint in FAULT_KINDS[self.kind]

    @property
    def category(self) -> str:
        """When this rule's fault is decided (see :func:`fault_category`)."""
        return fault_category(self.kind)


def _check(kind: str, endpoint: str | None) -> None:
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
    if endpoint is None:
        return
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; known: {', '.join(ENDPOINTS)}")
    if endpoint not in FAULT_KINDS[kind]:
        raise ValueError(f"fault {kind!r} cannot happen on endpoint {endpoint!r}")


def parse_fault_spec(spec: str) -> tuple[FaultRule, ...]:
    """Parse ``"kind:probability[@endpoint],..."``; raise ValueError on anything unclear."""
    rules: list[FaultRule] = []
    for raw in spec.split(","):
        entry = raw.strip()
        if not entry:
            continue
        head, _, endpoint = entry.partition("@")
        kind, sep, prob_text = head.rpartition(":")
        kind = kind.strip()
        if not sep or not kind:
            raise ValueError(f"fault entry {entry!r} needs the form kind:probability[@endpoint]")
        try:
            probability = float(prob_text)
        except ValueError:
            raise ValueError(f"fault entry {entry!r} has no valid probability") from None
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"fault entry {entry!r}: probability must be within 0..1")
        where = endpoint.strip() or None
        _check(kind, where)
        rules.append(FaultRule(kind, probability, where))
    return tuple(rules)


@dataclass
class _Injection:
    kind: str
    endpoint: str | None
    remaining: int


class FaultPlan:
    """Decides, request by request, which fault (if any) to show."""

    def __init__(self, spec: str = "", *, seed: int = 0) -> None:
        self.rules = parse_fault_spec(spec)
        # Separate streams so that adding a clip_fail rule does not shift which requests get an
        # HTTP fault, and vice versa.
        self._http_rng = random.Random(f"{seed}:http-faults")
        self._render_rng = random.Random(f"{seed}:render-faults")
        self._task_rng = random.Random(f"{seed}:task-faults")
        self._queue: list[_Injection] = []

    def set_spec(self, spec: str) -> None:
        """Replace the probabilistic rules (queued injections stay)."""
        self.rules = parse_fault_spec(spec)

    def inject(self, kind: str, endpoint: str | None = None, count: int = 1) -> None:
        """Queue ``count`` faults of ``kind`` for the next matching requests."""
        _check(kind, endpoint)
        if count < 1:
            raise ValueError("count must be at least 1")
        self._queue.append(_Injection(kind, endpoint, count))

    def clear(self) -> None:
        """Forget queued injections and probabilistic rules: from now on nothing misbehaves."""
        self._queue.clear()
        self.rules = ()

    def pending(self) -> list[dict[str, object]]:
        """The queued injections, for the stats page."""
        return [{"kind": i.kind, "endpoint": i.endpoint, "count": i.remaining} for i in self._queue]

    def _take_injected(self, endpoint: str, *, category: str) -> str | None:
        for injection in self._queue:
            if fault_category(injection.kind) != category:
                continue
            if injection.endpoint not in (None, endpoint) or endpoint not in FAULT_KINDS[injection.kind]:
                continue
            injection.remaining -= 1
            if injection.remaining == 0:
                self._queue.remove(injection)
            return injection.kind
        return None

    def _draw(self, rng: random.Random, endpoint: str, *, category: str) -> str | None:
        # Exactly one number per request keeps the stream aligned whatever the outcome.
        roll = rng.random()
        threshold = 0.0
        for rule in self.rules:
            if rule.category != category or not rule.applies_to(endpoint):
                continue
            threshold += rule.probability
            if roll < threshold:
                return rule.kind
        return None

    def draw_http(self, endpoint: str) -> str | None:
        """The HTTP-level fault for one request to ``endpoint``, or None."""
        injected = self._take_injected(endpoint, category="http")
        if injected is not None:
            return injected
        return self._draw(self._http_rng, endpoint, category="http")

    def draw_render(self, endpoint: str) -> bool:
        """Whether the work created by this submit will fail (``clip_fail``)."""
        if self._take_injected(endpoint, category="render") is not None:
            return True
        return self._draw(self._render_rng, endpoint, category="render") is not None

    def draw_task(self, endpoint: str) -> str | None:
        """The task fault (``status:cancelled``, ``stuck``...) the task made by this submit carries."""
        injected = self._take_injected(endpoint, category="task")
        if injected is not None:
            return injected
        return self._draw(self._task_rng, endpoint, category="task")
