"""The ledger's rules, once for both backends: what counts as paid, the budget arithmetic, the
live-duplicate check, the clip merge, what a new or updated row holds, and how a row becomes a record.

:mod:`suno_mcp.store.sqlite` and :mod:`suno_mcp.store.postgres` call these and keep only their SQL,
connections and locking. Where a rule is itself SQL (which rows are paid, which row is a live
duplicate, which milestone is the first) it is written here once and rendered for each database's
:class:`Dialect`. The paid rule also has a Python form, :meth:`PaidWindow.covers`, which the tests
hold to the SQL on both databases.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from suno_mcp.domain.expiry import IdleMap
from suno_mcp.domain.models import ApiFamily, Clip, SavedFile, Status, Task, TaskKind, TaskRecord, UsageLine
from suno_mcp.domain.spending import Budget
from suno_mcp.store.base import LatencySample, OverBudget

# How far past the budget a request may seem to go and still fit: a cost budget adds float prices,
# and three requests at 0.10 must fit a limit of 0.30.
BUDGET_TOLERANCE = 1e-9

# The request kept with a task adopted from elsewhere: whoever made it paid for it, not this tenant.
ADOPTED_REQUEST: dict[str, Any] = {"adopted": True}
_ADOPTED_JSON = json.dumps(ADOPTED_REQUEST, sort_keys=True)

# Each latency milestone and its column.
MILESTONE_COLUMNS = {"playable": "playable_s", "complete": "complete_s"}
# Rows read for each sample wanted per (api, kind, model): the newest rows mix every key.
_MILESTONE_ROWS_PER_SAMPLE = 50


class Row(Protocol):
    """A database row read by column name (``sqlite3.Row``, psycopg's dict rows)."""

    def __getitem__(self, key: str, /) -> Any: ...


@dataclass(frozen=True)
class Dialect:
    """How one database spells what the shared SQL needs; everything else in it is the same."""

    param: str  # a named parameter, {} standing for the name
    adopted: str  # true exactly for a row whose request is ADOPTED_REQUEST
    clip_count: str  # how many clips a row holds
    newest_first: str  # an ORDER BY breaking ties of one instant by the order rows were written

    def p(self, name: str) -> str:
        """The placeholder of the parameter ``name``."""
        return self.param.format(name)


SQLITE = Dialect(
    param=":{}",
    adopted=f"request_json = '{_ADOPTED_JSON}'",  # requests are stored as json.dumps(sort_keys=True)
    clip_count="json_array_length(clips_json)",
    newest_first="created_at DESC, rowid DESC",
)
POSTGRES = Dialect(
    param="%({})s",
    adopted=f"request = '{_ADOPTED_JSON}'::jsonb",
    clip_count="jsonb_array_length(clips)",
    newest_first="created_at DESC, seq DESC",
)


def new_local_id() -> str:
    """The ledger's own id for a new row (the upstream's task id comes later, if ever)."""
    return "local-" + uuid.uuid4().hex


def is_adopted(request: Mapping[str, Any]) -> bool:
    """Whether a row's request is the mark of an adopted task (as :attr:`Dialect.adopted` tests it)."""
    return json.dumps(request, sort_keys=True) == _ADOPTED_JSON


# ---------------------------------------------------------------- what is paid, and the budget


@dataclass(frozen=True)
class PaidWindow:
    """The rows that cost, or may have cost, money: one tenant's, in one mode (sandbox or real),
    made at or after ``since``. Not paid: a request refused before anything was made (failed
    without a task id), and a task adopted from elsewhere (whoever made it paid)."""

    since: float
    sandbox: bool
    tenant: str

    @staticmethod
    def sql(d: Dialect) -> str:
        """The rule as a condition on ``tasks``; :meth:`params` are its parameters."""
        return (
            f"NOT (status = '{Status.FAILED.value}' AND task_id IS NULL) AND NOT ({d.adopted})"
            f" AND created_at >= {d.p('since')} AND sandbox = {d.p('sandbox')} AND tenant = {d.p('tenant')}"
        )

    def params(self) -> dict[str, Any]:
        """The parameters of :meth:`sql`."""
        return {"since": self.since, "sandbox": self.sandbox, "tenant": self.tenant}

    def covers(self, record: TaskRecord, *, tenant: str) -> bool:
        """The same rule in Python, term by term, for a record of ``tenant``'s (records do not carry it)."""
        return (
            not (record.status is Status.FAILED and record.task_id is None)
            and not is_adopted(record.request)
            and record.created_at >= self.since
            and record.sandbox == self.sandbox
            and tenant == self.tenant
        )


def used_sql(d: Dialect) -> str:
    """The paid rows of a :class:`PaidWindow`, counted by kind (columns ``kind``, ``n``)."""
    return f"SELECT kind, COUNT(*) AS n FROM tasks WHERE {PaidWindow.sql(d)} GROUP BY kind"  # noqa: S608 (fixed fragments)


def usage_sql(d: Dialect) -> str:
    """The paid rows of a :class:`PaidWindow` by kind, family and model; ``maybe`` counts those
    without a task id (the submit's outcome is unknown: it may have been charged)."""
    return (
        "SELECT kind, api, model, COUNT(*) AS requests,"  # noqa: S608 (fixed fragments)
        f" SUM(CASE WHEN task_id IS NULL THEN 1 ELSE 0 END) AS maybe, SUM({d.clip_count}) AS clips"
        f" FROM tasks WHERE {PaidWindow.sql(d)} GROUP BY kind, api, model ORDER BY kind, api, model"
    )


def budget_used(budget: Budget, prices: Mapping[str, float], counts: Iterable[Row]) -> float:
    """What the rows of :func:`used_sql` use of the budget: each kind's weight times its count."""
    return float(sum(budget.weight(row["kind"], prices) * row["n"] for row in counts))


def fits_budget(
    budget: Budget, prices: Mapping[str, float], kind: TaskKind, used: float, *, allow_over: int = 0
) -> bool:
    """Whether one more request of ``kind`` fits with ``used`` already spent; ``allow_over`` requests
    past the limit fit too (ones the person accepted going over)."""
    this = budget.weight(kind, prices)
    return used + this <= budget.limit + allow_over * this + BUDGET_TOLERANCE


def check_budget(
    budget: Budget, prices: Mapping[str, float], kind: TaskKind, used: float, *, allow_over: int
) -> None:
    """Raise :class:`OverBudget` unless :func:`fits_budget`."""
    if not fits_budget(budget, prices, kind, used, allow_over=allow_over):
        raise OverBudget(used)


# ---------------------------------------------------------------- duplicates


@dataclass(frozen=True)
class LiveDuplicate:
    """The tenant's newest row of a request fingerprint made at or after ``since``, in one mode,
    that is not failed: a refused request is no duplicate, and sandbox and real tasks never stand
    in for each other."""

    tenant: str
    fingerprint: str
    since: float
    sandbox: bool

    @staticmethod
    def sql(d: Dialect) -> str:
        """The query (one row at most); :meth:`params` are its parameters."""
        return (
            f"SELECT * FROM tasks WHERE tenant = {d.p('tenant')} AND fingerprint = {d.p('fingerprint')}"  # noqa: S608 (fixed fragments)
            f" AND created_at >= {d.p('since')} AND status != '{Status.FAILED.value}'"
            f" AND sandbox = {d.p('sandbox')} ORDER BY {d.newest_first} LIMIT 1"
        )

    def params(self) -> dict[str, Any]:
        """The parameters of :meth:`sql`."""
        return {
            "tenant": self.tenant,
            "fingerprint": self.fingerprint,
            "since": self.since,
            "sandbox": self.sandbox,
        }


# ---------------------------------------------------------------- ids by prefix


@dataclass(frozen=True)
class TaskIdPrefix:
    """The tenant's upstream task ids that begin with ``prefix``, newest first, at most ``limit``
    (a completion's values), and how many there are in all (its ``total``).

    The match is exact, case and all, as the ids are (LIKE would fold case in SQLite and would read
    ``%`` and ``_`` in a prefix as wildcards); an id in two rows (adopted twice) counts once.
    """

    tenant: str
    prefix: str
    limit: int

    @staticmethod
    def _where(d: Dialect) -> str:
        return (
            f"tenant = {d.p('tenant')} AND task_id IS NOT NULL"
            f" AND substr(task_id, 1, {d.p('length')}) = {d.p('prefix')}"
        )

    @classmethod
    def sql(cls, d: Dialect) -> str:
        """The ids (column ``task_id``); :meth:`params` are its parameters."""
        return (
            f"SELECT task_id FROM tasks WHERE {cls._where(d)}"  # noqa: S608 (fixed fragments)
            f" GROUP BY task_id ORDER BY max(created_at) DESC, task_id LIMIT {d.p('limit')}"
        )

    @classmethod
    def count_sql(cls, d: Dialect) -> str:
        """How many ids match (column ``n``); the same parameters."""
        return f"SELECT count(DISTINCT task_id) AS n FROM tasks WHERE {cls._where(d)}"  # noqa: S608 (fixed fragments)

    def params(self) -> dict[str, Any]:
        """The parameters of :meth:`sql` and :meth:`count_sql`."""
        return {"tenant": self.tenant, "prefix": self.prefix, "length": len(self.prefix), "limit": self.limit}


# ---------------------------------------------------------------- what a write holds


@dataclass(frozen=True)
class NewRow:
    """A new ``tasks`` row: its ``columns``, and its ``request``, which each backend stores in its own JSON type."""

    columns: dict[str, Any]
    request: Mapping[str, Any]

    @property
    def local_id(self) -> str:
        return str(self.columns["local_id"])


def intent_row(
    tenant: str,
    api: ApiFamily,
    kind: TaskKind,
    request: Mapping[str, Any],
    fingerprint: str | None,
    sandbox: bool,
    now: float,
    task_id: str | None = None,
) -> NewRow:
    """The row for a submit about to be sent: its status is unknown until the upstream answers,
    and the model it asks for is kept apart, since latency is learned per model."""
    model = request.get("mv")
    columns = {
        "local_id": new_local_id(),
        "tenant": tenant,
        "task_id": task_id,
        "api": api,
        "kind": kind,
        "fingerprint": fingerprint,
        "status": Status.UNKNOWN.value,
        "sandbox": sandbox,
        "created_at": now,
        "updated_at": now,
        "model": model if isinstance(model, str) else None,
    }
    return NewRow(columns, request)


def adopted_row(tenant: str, api: ApiFamily, task: Task, sandbox: bool, now: float) -> NewRow:
    """The row for a task made elsewhere (its state is written next): it was never paid for here,
    and having no fingerprint, it is nobody's duplicate."""
    return intent_row(tenant, api, task.kind, ADOPTED_REQUEST, None, sandbox, now, task.task_id)


def rejected_row(local_id: str, error: str, now: float) -> dict[str, Any]:
    """What a refused submit sets: failed with no task id, which is not paid; without its
    fingerprint, it is no duplicate either."""
    return {
        "local_id": local_id,
        "status": Status.FAILED.value,
        "error": error,
        "fingerprint": None,
        "updated_at": now,
    }


def unknown_row(local_id: str, error: str, raw_answer: str | None, now: float) -> dict[str, Any]:
    """What a submit whose outcome is not known sets: unknown, which counts as (maybe) paid, and
    the answer as received when there is one (the SQL keeps an earlier one otherwise)."""
    return {
        "local_id": local_id,
        "status": Status.UNKNOWN.value,
        "error": error,
        "raw_answer": raw_answer,
        "updated_at": now,
    }


def state_row(local_id: str, task: Task, now: float) -> dict[str, Any]:
    """The columns a newer state of a task sets, but its clips (see :func:`merge_clips`).

    Lyrics the answer leaves out (None) keep the ones known: the backends' SQL coalesces them.
    """
    return {
        "local_id": local_id,
        "status": task.status.value,
        "raw_status": task.raw_status,
        "error": task.error,
        "lyrics_title": task.lyrics_title,
        "lyrics_text": task.lyrics_text,
        "updated_at": now,
    }


def file_row(saved: SavedFile, tenant: str, now: float) -> dict[str, Any]:
    """The ``files`` row of a downloaded file of one of the tenant's clips."""
    return {"tenant": tenant, **saved.model_dump(), "created_at": now}


def merge_clips(known: Iterable[Mapping[str, Any]], answer: Sequence[Clip]) -> list[dict[str, Any]]:
    """The clips to keep after an answer, by clip id: each known clip, replaced by the answer's of
    the same id, then the answer's new ones. An answer that leaves a clip out (or has none yet) must
    not erase what we knew of it, or the clip's id is lost."""
    merged: dict[str, dict[str, Any]] = {clip["id"]: dict(clip) for clip in known}
    merged.update((clip.id, clip.model_dump(mode="json")) for clip in answer)
    return list(merged.values())


# The written-states cache forgets a task this long (seconds) after it was last polled, and keeps at
# most this many: a finished task is polled no more, and a forgotten one costs one write, not a loss.
WRITTEN_IDLE_S = 600.0
WRITTEN_MAX = 4096


class WrittenStates:
    """The last state this ledger wrote for each task, so a poll that brings nothing new (most
    do) writes nothing. Only a saving: a finished task, a task not polled for ``idle_s`` (on
    ``clock``) and the least recently polled past ``max_size`` are forgotten, and a state of
    theirs that comes again is written again."""

    def __init__(
        self,
        *,
        idle_s: float = WRITTEN_IDLE_S,
        max_size: int = WRITTEN_MAX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # (tenant, task id) -> the state as JSON
        self._last: IdleMap[tuple[str, str], str] = IdleMap(idle_s=idle_s, max_size=max_size, clock=clock)

    def __len__(self) -> int:
        return len(self._last)

    def unchanged(self, task: Task, tenant: str) -> bool:
        """Whether this very state of the tenant's task is the last one written here."""
        return self._last.get((tenant, task.task_id)) == task.model_dump_json()

    def remember(self, task: Task, tenant: str) -> None:
        """This state of the tenant's task has just been written. A finished task is polled no
        more, so its state is not kept (should it come again, it is written again)."""
        if task.status.finished:
            self._last.pop((tenant, task.task_id))
        else:
            self._last.put((tenant, task.task_id), task.model_dump_json())


# ---------------------------------------------------------------- milestones


def milestone_sql(d: Dialect, milestone: str) -> str:
    """Store a milestone of the tenant's task (parameters ``seconds``, ``tenant``, ``task_id``):
    only its first sighting counts."""
    column = MILESTONE_COLUMNS[milestone]
    return (
        f"UPDATE tasks SET {column} = {d.p('seconds')}"  # noqa: S608 (a fixed column name)
        f" WHERE tenant = {d.p('tenant')} AND task_id = {d.p('task_id')} AND {column} IS NULL"
    )


def milestones_sql(d: Dialect) -> str:
    """Every tenant's rows with a milestone, newest first; :func:`milestones_params` are the parameters."""
    return (
        "SELECT api, kind, model, playable_s, complete_s FROM tasks"  # noqa: S608 (a fixed fragment)
        " WHERE playable_s IS NOT NULL OR complete_s IS NOT NULL"
        f" ORDER BY created_at DESC LIMIT {d.p('limit')}"
    )


def milestones_params(per_key: int) -> dict[str, Any]:
    """The parameters of :func:`milestones_sql` for about ``per_key`` samples of each (api, kind, model)."""
    return {"limit": per_key * _MILESTONE_ROWS_PER_SAMPLE}


def milestones(rows: Sequence[Row]) -> list[LatencySample]:
    """The rows of :func:`milestones_sql` as samples (api, kind, model, playable_s, complete_s), oldest first."""

    def seconds(value: Any) -> float | None:
        return None if value is None else float(value)

    return [
        (row["api"], row["kind"], row["model"], seconds(row["playable_s"]), seconds(row["complete_s"]))
        for row in reversed(rows)
    ]


# ---------------------------------------------------------------- rows as records


def adopted_twin_sql(d: Dialect) -> str:
    """The adopted row holding the task id a submit's own row (``local_id``) is about to be given.

    It exists when the submit was accepted while the ledger was down (the journal kept it) and,
    once the ledger was back but before the replay, another replica was asked for the id, found it
    in no row and adopted it from the upstream. The submit's row takes the id (it is the one the
    paid count and the duplicate guard know); the twin's newer state moves over and the twin goes.
    """
    return (
        f"SELECT * FROM tasks WHERE task_id = {d.p('task_id')} AND local_id <> {d.p('local_id')}"  # noqa: S608 (fixed fragments)
        f" AND tenant = (SELECT tenant FROM tasks WHERE local_id = {d.p('local_id')}) AND {d.adopted}"
    )


def milestones_carried_sql(d: Dialect) -> str:
    """Keep an adopted twin's milestones on the submit's row (where it has none of its own)."""
    return (
        f"UPDATE tasks SET playable_s = COALESCE(playable_s, {d.p('playable_s')}),"  # noqa: S608 (fixed fragments)
        f" complete_s = COALESCE(complete_s, {d.p('complete_s')}) WHERE local_id = {d.p('local_id')}"
    )


def task_record(row: Row, request: Any, clips: Any) -> TaskRecord:
    """A ``tasks`` row as its record; ``request`` and ``clips`` are its JSON columns decoded, and
    the caller attaches the files."""
    return TaskRecord(
        local_id=row["local_id"],
        task_id=row["task_id"],
        api=row["api"],
        kind=row["kind"],
        request=request or {},
        status=Status(row["status"]),
        raw_status=row["raw_status"],
        error=row["error"],
        clips=[Clip.model_validate(c) for c in clips or []],
        lyrics_title=row["lyrics_title"],
        lyrics_text=row["lyrics_text"],
        sandbox=bool(row["sandbox"]),
        raw_answer=row["raw_answer"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def saved_file(row: Row) -> SavedFile:
    """A ``files`` row as what it describes (a column for each field)."""
    return SavedFile(**{name: row[name] for name in SavedFile.model_fields})


def usage_line(row: Row) -> UsageLine:
    """A row of :func:`usage_sql` as its line."""
    return UsageLine(
        kind=row["kind"],
        api=row["api"],
        model=row["model"],
        requests=row["requests"],
        maybe_charged=row["maybe"] or 0,
        clips=row["clips"] or 0,
    )
