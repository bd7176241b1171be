"""Paid tasks the ledger has not recorded yet: keeping them, following them, and writing them in.

A mixin of :class:`suno_mcp.service.core.SunoService`. When the upstream has accepted a submit and
the ledger cannot record its task id, the accepted answer goes to the journal
(:mod:`suno_mcp.service.journal`) and the caller gets the id marked not yet recorded; status reads,
the duplicate guard and the task list answer from the journal meanwhile; :meth:`Unrecorded.keep_journal`
writes it to the ledger, with backoff, as soon as the ledger answers again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import anyio

from suno_mcp.domain.errors import LedgerUnavailableError
from suno_mcp.domain.models import AcceptedSubmit, ApiFamily, Task, TaskRecord, TaskRef
from suno_mcp.engine.poller import Goal, Poller, ProgressFn
from suno_mcp.service.journal import Journal
from suno_mcp.service.outcome import Outcome
from suno_mcp.settings import Settings
from suno_mcp.store.base import LedgerStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """How often the journal's entries are offered to a ledger that does not answer: ``first_s``,
    doubling up to ``cap_s`` (the cap bounds how long after the ledger's return they wait)."""

    first_s: float = 0.5
    cap_s: float = 5.0

    def delays(self) -> Iterator[float]:
        delay = self.first_s
        while True:
            yield delay
            delay = min(delay * 2, self.cap_s)


class Unrecorded:
    """Accepted tasks on their way to the ledger."""

    settings: Settings
    ledger: LedgerStore
    poller: Poller
    journal: Journal | None
    journal_retry: Backoff
    sandbox: bool
    tenant: str
    clock: Callable[[], float]
    wall: Callable[[], float]
    # Defined by SunoService: the poller's ref of a record of this tenant's.
    _ref: Callable[[TaskRecord], TaskRef]

    async def _record_accepted(self, local_id: str, task: Task) -> None:
        """Store the id of a task the upstream accepted (and charged); it must not be lost.

        A ledger that cannot answer (its store already waited out its own timeout) gets the task
        later: the journal keeps it on disk now and the replay loop writes it once the ledger is back.
        """
        try:
            await self.ledger.record_submitted(local_id, task)
            return
        except LedgerUnavailableError as err:
            if self.journal is None:
                raise
            log.warning(
                "the ledger could not record accepted task %s (row %s): %s; keeping it in the journal",
                task.task_id,
                local_id,
                err,
            )
        with anyio.CancelScope(shield=True):  # the answer is paid for: keep it even if the caller left
            try:
                await self.journal.append(self._accepted(local_id, task.api, task))
            except OSError as err:
                # Still held in memory (replayed by this process); the log has the id in any case.
                log.error(
                    "the journal could not keep accepted task %s (ledger row %s) on disk: %s",
                    task.task_id,
                    local_id,
                    err,
                )

    def _accepted(self, local_id: str, family: ApiFamily, task: Task) -> AcceptedSubmit:
        return AcceptedSubmit(
            local_id=local_id,
            tenant=self.tenant,
            api=family,
            sandbox=self.sandbox,
            accepted_at=self.wall(),
            task=task,
            raw_answer=task.raw_answer,
        )

    def _journaled(self, task_or_local_id: str) -> AcceptedSubmit | None:
        """This tenant's accepted task still waiting in the journal for the ledger, if it is one."""
        return None if self.journal is None else self.journal.find(task_or_local_id, tenant=self.tenant)

    async def _follow_journaled(
        self, accepted: AcceptedSubmit, *, wait_s: float, progress: ProgressFn | None = None
    ) -> Outcome:
        """Follow a task the ledger has not got yet upstream (the poller), never asking the ledger."""
        record = accepted.as_record()
        ref = self._ref(record)
        started = self.clock() - max(0.0, self.wall() - accepted.accepted_at)
        begun = self.clock()
        goal: Goal = "complete" if record.status.playable else "playable"
        if wait_s > 0:
            newest = await self.poller.wait(
                ref,
                goal=goal,
                wait_s=min(wait_s, self.settings.max_wait),
                started=started,
                current=accepted.task,
                progress=progress,
            )
        else:
            self.poller.watch(ref, started=started, current=accepted.task)
            followed = self.poller.followed(ref.task_id, tenant=ref.tenant)
            newest = None if followed is None else followed.task
        if newest is not None:
            record = record.model_copy(
                update={
                    "status": newest.status,
                    "raw_status": newest.raw_status,
                    "error": newest.error,
                    "clips": newest.clips or record.clips,
                    "lyrics_title": newest.lyrics_title or record.lyrics_title,
                    "lyrics_text": newest.lyrics_text or record.lyrics_text,
                }
            )
        error = self.poller.last_error(ref.task_id, tenant=ref.tenant)
        return Outcome(
            record=record,
            recorded=False,
            waited_s=round(self.clock() - begun, 2),
            poll_error=None if error is None else error.message,
        )

    def _with_journal(self, record: TaskRecord) -> TaskRecord:
        waiting = self._journaled(record.local_id) if record.task_id is None else None
        if waiting is None:
            return record
        return waiting.as_record().model_copy(
            update={"request": record.request, "created_at": record.created_at}
        )

    def _waiting_for_ledger(self, ref: TaskRef) -> bool:
        return self.journal is not None and self.journal.find(ref.task_id, tenant=ref.tenant) is not None

    # ------------------------------------------------------------ the journal

    async def replay_journal(self) -> int:
        """Write the journal's accepted tasks to the ledger now; how many this call recorded.

        Raises ``LedgerUnavailableError`` when the ledger still cannot answer (what is left waits).
        Each task recorded is followed again, so its newest state reaches its row.
        """
        if self.journal is None:
            return 0
        recorded = await self.journal.replay(self.ledger)
        for accepted in recorded:
            ref = TaskRef(
                task_id=accepted.task.task_id,
                api=accepted.api,
                kind=accepted.task.kind,
                clip_ids=tuple(c.id for c in accepted.task.clips),
                tenant=accepted.tenant,
            )
            started = self.clock() - max(0.0, self.wall() - accepted.accepted_at)
            self.poller.watch(ref, started=started, current=accepted.task)
        return len(recorded)

    async def keep_journal(self) -> None:
        """Run in the service's task group until cancelled: whenever the journal holds accepted tasks,
        offer them to the ledger, again and again with backoff (:attr:`journal_retry`) while it
        cannot answer."""
        if self.journal is None:
            return
        delays: Iterator[float] | None = None
        while True:
            await self.journal.wait_pending()
            try:
                recorded = await self.replay_journal()
            except LedgerUnavailableError as err:
                delays = delays or self.journal_retry.delays()
                delay = next(delays)
                log.info(
                    "the ledger still cannot take %d journaled task(s) (%s); next try in %.1f s",
                    self.journal.pending,
                    err,
                    delay,
                )
                await anyio.sleep(delay)
                continue
            except Exception:
                # A bug must not end the only loop that brings paid tasks to the ledger.
                log.exception("writing the journal to the ledger failed unexpectedly")
                delays = delays or self.journal_retry.delays()
                await anyio.sleep(next(delays))
                continue
            delays = None
            if recorded:
                log.info("the journal's %d accepted task(s) are in the ledger", recorded)
