"""The service: submits through the ledger, waits through the poller, saves audio.

This is where "nothing the user paid for is lost" is kept: every submit is written to
the ledger before it is sent, repeated requests are answered from the ledger instead of
being paid again, and finished audio can be saved to disk before its URL expires.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from pydantic import SecretStr

from suno_mcp import metrics
from suno_mcp.domain.catalog import Catalog
from suno_mcp.domain.errors import (
    ConfigurationError,
    LedgerUnavailableError,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    SubmitOutcomeUnknownError,
    SunoError,
    submit_outcome,
)
from suno_mcp.domain.ids import looks_like_vendor_id
from suno_mcp.domain.inputs import check_unseen_id
from suno_mcp.domain.models import (
    ApiFamily,
    Clip,
    CoverRequest,
    MusicRequest,
    Status,
    Task,
    TaskKind,
    TaskRecord,
    TaskRef,
)
from suno_mcp.domain.news import NewsFeed, Paused, TaskMoved, UsageRecorded
from suno_mcp.domain.spending import CURRENT_CONFIRM, Confirm, fingerprint
from suno_mcp.domain.tenancy import SERVER_TENANT, Caller, KeyRing
from suno_mcp.engine.poller import READ, Goal, Poller, ProgressFn
from suno_mcp.service.downloads import DownloadQueue, Downloads
from suno_mcp.service.journal import Journal
from suno_mcp.service.outcome import Outcome as Outcome
from suno_mcp.service.requests import Requests
from suno_mcp.service.spend import Spending
from suno_mcp.service.unrecorded import Backoff, Unrecorded
from suno_mcp.settings import Settings
from suno_mcp.store.base import LedgerStore
from suno_mcp.upstream.families import ClipApi, MusicApi, TaskApi
from suno_mcp.upstream.transport import NO_KEY_MESSAGE

log = logging.getLogger(__name__)

# How long a submit waits for a request slot (a burst of them, or the upstream asking us to
# slow down); well inside the minute after which clients give up on a tool call.
SUBMIT_QUEUE_S = 25.0
# How long an identical request waits for one already being sent before looking again.
SUBMIT_JOIN_LIMIT_S = 70.0


@dataclass
class _LedgerCheck:
    """One readiness question to the ledger: ``done`` once it answered, ``failure`` the error's kind."""

    done: anyio.Event = field(default_factory=anyio.Event)
    failure: str | None = None


@dataclass
class SunoService(Spending, Downloads, Requests, Unrecorded):
    """Everything the tools do, without MCP. Build it with :func:`suno_mcp.service.wiring.open_service`."""

    settings: Settings
    task_api: TaskApi
    clip_api: ClipApi
    ledger: LedgerStore
    poller: Poller
    http: httpx.AsyncClient
    catalog: Catalog
    sandbox: bool = False
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    task_group: anyio.abc.TaskGroup | None = None
    # Team mode: the tenant this view of the service acts for ("" is the server's own key), and the
    # keys callers brought, shared by every view so the poller can follow each tenant's tasks.
    tenant: str = SERVER_TENANT
    keys: KeyRing = field(default_factory=KeyRing)
    # What happens while it runs (tasks moving, paid requests, 429 pauses), for the MCP layer's
    # notifications; shared by every view likewise.
    news: NewsFeed = field(default_factory=NewsFeed)
    # Accepted submits the ledger could not record yet (None: a service built by hand keeps none).
    journal: Journal | None = None
    journal_retry: Backoff = field(default_factory=Backoff)
    # "tenant:fingerprint" -> the submit of that request being sent now
    _in_flight: dict[str, anyio.Event] = field(default_factory=dict)
    # The readiness check of the ledger under way (at most one), shared by every view of the service.
    _ledger_checks: list[_LedgerCheck] = field(default_factory=list)
    # Auto-downloads running and waiting (at most auto_download_concurrency at once), shared likewise.
    _auto_downloads: DownloadQueue | None = None

    def __post_init__(self) -> None:
        if self._auto_downloads is None:  # a view made by for_caller shares its parent's
            self._auto_downloads = DownloadQueue(self.settings.auto_download_concurrency)

    def for_caller(self, caller: Caller) -> SunoService:
        """The service acting for one team-mode caller: their key upstream, their rows in the ledger.

        Everything long-lived (HTTP client, ledger, poller, in-flight submits) is shared; only the
        key and the tenant differ. The key stays in memory (the key ring), never in the ledger.
        """
        self.keys.remember(caller)
        return dataclasses.replace(
            self,
            settings=self.settings.model_copy(update={"api_key": caller.key}),
            task_api=self.task_api.with_key(caller.key),
            clip_api=self.clip_api.with_key(caller.key),
            tenant=caller.tenant,
        )

    @property
    def music_api(self) -> MusicApi:
        return self.task_api if self.settings.api == "task" else self.clip_api

    def api_for(self, family: ApiFamily) -> MusicApi:
        """The client of one endpoint family."""
        return self.task_api if family == "task" else self.clip_api

    async def why_not_ready(self, limit_s: float) -> str | None:
        """None when the ledger answers a cheap question (:meth:`LedgerStore.ping`) within
        ``limit_s`` seconds; otherwise why not, in one line naming no path, address, key or tenant
        (the log has the details).

        The question runs in the service's task group: one that takes longer is left to finish
        rather than cut short (no ledger call is), and the next check waits for it instead of
        queueing another behind it.
        """
        check = self._ledger_checks[0] if self._ledger_checks else self._start_ledger_check()
        with anyio.move_on_after(limit_s):
            await check.done.wait()
            return None if check.failure is None else f"the ledger failed to answer ({check.failure})"
        return "the ledger did not answer in time"

    def _start_ledger_check(self) -> _LedgerCheck:
        if self.task_group is None:  # a service built by hand, without open_service: nowhere to leave it
            raise RuntimeError("why_not_ready needs the service's task group (open it with open_service)")
        check = _LedgerCheck()
        self._ledger_checks.append(check)
        self.task_group.start_soon(self._check_ledger, check)
        return check

    async def _check_ledger(self, check: _LedgerCheck) -> None:
        try:
            await self.ledger.ping()
        except Exception as err:  # whatever it is, the ledger cannot serve a request now
            check.failure = type(err).__name__
            log.warning("the ledger did not answer its readiness check: %s: %s", type(err).__name__, err)
        finally:
            self._ledger_checks.remove(check)
            check.done.set()

    def require_key(self) -> None:
        """Raise before anything is recorded or sent when no API key is configured."""
        if not self.settings.has_key:
            raise ConfigurationError(NO_KEY_MESSAGE)

    # ------------------------------------------------------------ submits

    async def submit_music(
        self,
        request: MusicRequest,
        *,
        force_new: bool = False,
        wait_s: float = 0.0,
        progress: ProgressFn | None = None,
        confirm: Confirm | None = None,
    ) -> Outcome:
        """Generate (or extend) music, unless the same request is already in the ledger."""
        self.require_key()
        api = self.music_api
        body = request.wire_body()
        return await self._submit(
            api.family, "music", body, lambda: api.submit_music(request), force_new, wait_s, progress, confirm
        )

    async def submit_lyrics(
        self,
        description: str,
        *,
        force_new: bool = False,
        wait_s: float = 0.0,
        progress: ProgressFn | None = None,
        confirm: Confirm | None = None,
    ) -> Outcome:
        """Write lyrics from a description (task API in both modes: one key serves both)."""
        self.require_key()
        return await self._submit(
            "task",
            "lyrics",
            {"prompt": description},
            lambda: self.task_api.submit_lyrics(description),
            force_new,
            wait_s,
            progress,
            confirm,
        )

    async def complete_song(
        self,
        clip_id: str,
        *,
        force_new: bool = False,
        wait_s: float = 0.0,
        progress: ProgressFn | None = None,
        confirm: Confirm | None = None,
    ) -> Outcome:
        """The whole song ending with ``clip_id`` as one clip (clip API concat, in both modes)."""
        await self.check_caller_id("clip_id", clip_id)
        self.require_key()
        return await self._submit(
            "clip",
            "concat",
            {"clip_id": clip_id, "is_infill": False},
            lambda: self.clip_api.concat(clip_id),
            force_new,
            wait_s,
            progress,
            confirm,
        )

    async def cover_music(
        self,
        request: CoverRequest,
        *,
        force_new: bool = False,
        wait_s: float = 0.0,
        progress: ProgressFn | None = None,
    ) -> Outcome:
        """A new version of a clip in another style (clip API in both modes: one key serves both)."""
        self.require_key()
        return await self._submit(
            "clip",
            "cover",
            request.wire_body(),
            lambda: self.clip_api.cover(request),
            force_new,
            wait_s,
            progress,
        )

    async def upload_audio(self, url: str, *, force_new: bool = False) -> Outcome:
        """Bring a song at a URL in as a clip (clip API in both modes), recorded as an upload row.

        Not a paid generation, but it goes through the duplicate guard all the same: the same URL
        uploaded again within the window answers with the clip it already made.
        """
        self.require_key()
        return await self._submit(
            "clip",
            "upload",
            {"url": url},
            lambda: self.clip_api.upload_audio(url),
            force_new,
            0.0,
            None,
        )

    async def clip_source(self, clip_id: str) -> tuple[TaskRecord, Clip] | None:
        """The ledger's row holding ``clip_id`` and the clip itself, or None when it is not known here."""
        record = await self.ledger.find_by_clip(clip_id, tenant=self.tenant)
        if record is None:
            return None
        clip = next(c for c in record.clips if c.id == clip_id)
        return record, clip

    async def check_caller_id(self, field: str, value: str) -> None:
        """Refuse, naming ``field``, an id a caller passed that could steer a request.

        An id this tenant's ledger knows (as a task, local or clip id) came from the upstream and
        is followed whatever it holds. One nobody has seen must look like a vendor id, or it is
        refused before anything is recorded or sent (:func:`suno_mcp.domain.inputs.check_unseen_id`).
        """
        if looks_like_vendor_id(value):
            return  # the usual case: no ledger read needed
        if await self.ledger.find(value, tenant=self.tenant) is None:
            check_unseen_id(field, value)

    async def _submit(
        self,
        family: ApiFamily,
        kind: TaskKind,
        body: dict[str, Any],
        send: Callable[[], Any],
        force_new: bool,
        wait_s: float,
        progress: ProgressFn | None,
        confirm: Confirm | None = None,
    ) -> Outcome:
        fp = fingerprint(family, kind, body)
        flight = f"{self.tenant}:{fp}"
        window = 0.0 if force_new else self.settings.duplicate_window
        in_flight = self._in_flight.get(flight)
        if in_flight is not None and window > 0:
            # The same request is being sent right now: wait for its answer instead of
            # reporting its not-yet-known outcome (or paying for it a second time).
            with anyio.move_on_after(SUBMIT_JOIN_LIMIT_S):
                await in_flight.wait()
        local_id, existing = await self._admit(
            family, kind, body, fp, window, confirm or CURRENT_CONFIRM.get()
        )
        if existing is not None:
            waiting = self._journaled(existing.local_id) if existing.task_id is None else None
            if waiting is not None:  # accepted, and still on its way to the ledger
                outcome = await self._follow_journaled(waiting, wait_s=0.0)
            else:
                outcome = await self.follow(existing, wait_s=wait_s, progress=progress)
            return outcome.model_copy(update={"deduplicated": True})
        self.news.tell(UsageRecorded(self.tenant))  # a new row that counts as paid
        done = self._in_flight[flight] = anyio.Event()
        try:
            task = await self._send(local_id, send, kind)
        finally:
            del self._in_flight[flight]
            done.set()
        journaled = self._journaled(task.task_id)
        if journaled is not None:
            return await self._follow_journaled(journaled, wait_s=0.0)
        try:
            record = await self.ledger.get(task.task_id, tenant=self.tenant)
            assert record is not None  # just written
            return await self.follow(record, wait_s=wait_s, progress=progress)
        except LedgerUnavailableError:
            # Recorded, but the ledger stopped answering just after: the caller still gets the id.
            log.warning("the ledger stopped answering after recording task %s", task.task_id)
            accepted = self._accepted(local_id, family, task)
            return Outcome(record=accepted.as_record().model_copy(update={"request": body}))

    async def _send(self, local_id: str, send: Callable[[], Any], kind: TaskKind) -> Task:
        """Send a submit whose intent row exists, and record what became of it.

        Submits share the poller's request pacing (ahead of its polls): a burst of them must
        not run into the upstream's rate limit, nor spend the quota the status reads need.
        """
        try:
            granted = await self.poller.acquire(self.tenant, READ, deadline=self.clock() + SUBMIT_QUEUE_S)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.ledger.record_rejected(local_id, "cancelled before it was sent")
            raise
        if not granted:
            message = (
                "too many requests are waiting for the upstream (or it asked us to slow down); "
                "no slot came free in time, so nothing was sent"
            )
            await self.ledger.record_rejected(local_id, message)
            raise RateLimitedError(message, retry_after=SUBMIT_QUEUE_S)
        try:
            task: Task = await send()
        except SunoError as err:
            if isinstance(err, RateLimitedError):
                await self.poller.rate_limited(self.tenant, err.retry_after)
            # errors.submit_outcome decides: a body we cannot read, a failing gateway or a
            # request lost after it left may have been taken (and charged) upstream.
            outcome = submit_outcome(err)
            metrics.PAID_SUBMITS.labels(kind, "unknown" if outcome == "unknown" else "refused").inc()
            if outcome == "unknown":
                raw = err.raw_answer if isinstance(err, MalformedResponseError) else None
                await self.ledger.record_unknown(local_id, err.message, raw)
                raise SubmitOutcomeUnknownError(err.message, local_id=local_id) from err
            await self.ledger.record_rejected(local_id, err.message)
            self.news.tell(UsageRecorded(self.tenant))  # refused: the row no longer counts
            raise
        except BaseException:
            # Cancelled (or crashed) while the request may have been in flight.
            # The write itself finishes even under cancellation (see the ledgers' cancellation shielding).
            metrics.PAID_SUBMITS.labels(kind, "unknown").inc()
            with anyio.CancelScope(shield=True):
                await self.ledger.record_unknown(local_id, "interrupted while the submit was in flight")
            raise
        self.poller.succeeded(self.tenant)
        metrics.PAID_SUBMITS.labels(kind, "accepted").inc()
        await self._record_accepted(local_id, task)
        return task

    # ------------------------------------------------------------ following

    def _ref(self, record: TaskRecord) -> TaskRef:
        assert record.task_id is not None
        model = record.request.get("mv")
        return TaskRef(
            task_id=record.task_id,
            api=record.api,
            kind=record.kind,
            clip_ids=record.clip_ids,
            model=model if isinstance(model, str) else None,
            tenant=self.tenant,
        )

    async def follow(
        self,
        record: TaskRecord,
        *,
        wait_s: float,
        progress: ProgressFn | None = None,
        refresh: bool = False,
    ) -> Outcome:
        """Bring a record up to date, waiting up to ``wait_s`` for playable or final audio.

        ``refresh`` (a status read) asks the upstream even with no wait, and even for a task
        reported stalled, which is then looked at once but not watched again.
        """
        if record.task_id is None or record.status is Status.UNKNOWN or record.status.finished:
            return Outcome(record=record)
        if record.status is Status.STALLED and not refresh:
            return Outcome(record=record)
        wait_s = min(max(wait_s, 0.0), self.settings.max_wait)
        goal: Goal = "complete" if record.status.playable else "playable"
        started = self.clock() - max(0.0, self.wall() - record.created_at)
        begun = self.clock()
        if wait_s > 0 or refresh:
            await self.poller.wait(
                self._ref(record),
                goal=goal,
                wait_s=wait_s,
                started=started,
                current=record.as_task(),
                progress=progress,
            )
        else:
            self.poller.watch(self._ref(record), started=started, current=record.as_task())
        fresh = await self.ledger.get(record.task_id, tenant=self.tenant) or record
        if record.status is Status.STALLED:
            self.poller.forget(record.task_id, tenant=self.tenant)
            if not fresh.status.finished and fresh.raw_status == record.raw_status:
                # Looked at again and still no progress: it stays stalled.
                await self.task_stalled(self._ref(fresh), fresh.as_task())
                fresh = await self.ledger.get(record.task_id, tenant=self.tenant) or fresh
        error = self.poller.last_error(record.task_id, tenant=self.tenant)
        checked = self.poller.checked_at(record.task_id, tenant=self.tenant)
        return Outcome(
            record=fresh,
            waited_s=round(self.clock() - begun, 2),
            poll_error=None if error is None else error.message,
            checked_s_ago=None if checked is None else round(max(0.0, self.clock() - checked), 1),
        )

    async def status(
        self, task_id: str, *, wait_s: float = 0.0, progress: ProgressFn | None = None
    ) -> Outcome:
        """A task's newest state. Works for tasks of earlier runs (the ledger) and, when
        the id is not in the ledger, asks the upstream directly (if it looks like an id).

        A task the upstream accepted that the ledger has not recorded yet (the journal holds it)
        is followed upstream all the same, whether the ledger answers meanwhile or not."""
        try:
            record = await self.ledger.find(task_id, tenant=self.tenant)
        except LedgerUnavailableError:
            waiting = self._journaled(task_id)
            if waiting is None:
                raise
            record = None
        else:
            waiting = None if record is not None else self._journaled(task_id)
        if waiting is not None:
            self.require_key()
            return await self._follow_journaled(waiting, wait_s=wait_s, progress=progress)
        if record is None:
            check_unseen_id("task_id", task_id)
            record = await self._adopt(task_id)
        elif not record.status.finished and record.status is not Status.UNKNOWN:
            self.require_key()
        outcome = await self.follow(record, wait_s=wait_s, progress=progress, refresh=True)
        if outcome.record.status is Status.PENDING and isinstance(
            self.poller.last_error(task_id, tenant=self.tenant), NotFoundError
        ):
            raise NotFoundError(f"no task {task_id} exists upstream", status_code=404)
        return outcome

    async def _adopt(self, task_id: str) -> TaskRecord:
        """A task id we never saw (made elsewhere): look it up and keep it in the ledger."""
        self.require_key()
        family = self.settings.api
        ref = TaskRef(task_id=task_id, api=family, tenant=self.tenant)
        tasks = await self.api_for(family).fetch([ref])
        task = tasks.get(task_id)
        if task is None:
            raise NotFoundError(
                f"no task or clip {task_id} is known here or upstream ({family} API)", status_code=404
            )
        # Another call may have adopted it while we were fetching: the ledger keeps one row.
        return await self.ledger.adopt(family, task, sandbox=self.sandbox, tenant=self.tenant)

    async def list_tasks(self, *, status: Status | None = None, limit: int = 20) -> list[TaskRecord]:
        """This tenant's ledger records, newest first; a row whose accepted task still waits in the
        journal shows that task (its id and state), not the intent's unknown outcome."""
        records = await self.ledger.recent(
            statuses=[status] if status else None, limit=limit, tenant=self.tenant
        )
        return [self._with_journal(record) for record in records]

    async def task_ids(self, prefix: str, *, limit: int = 20) -> tuple[list[str], int]:
        """This tenant's task ids beginning with ``prefix``, newest first (at most ``limit``), and how many match."""
        return await self.ledger.task_ids(prefix, limit=limit, tenant=self.tenant)

    async def record(self, task_id: str) -> TaskRecord | None:
        """This tenant's record of a task (by task id or local id), without asking the upstream.

        An unknown id that does not look like one is an ArgumentError naming ``task_id``, as in the tools.
        """
        await self.check_caller_id("task_id", task_id)
        return await self.ledger.get(task_id, tenant=self.tenant)

    def typical_final_s(self) -> float:
        """How long final audio usually takes after a music submit here (learned, else the prior)."""
        return self.poller.typical_s(
            TaskRef(task_id="", api=self.settings.api, model=self.settings.default_model), "complete"
        )

    def latency(self) -> list[dict[str, Any]]:
        """What the poller has learned of this upstream's latency, per family, kind and model."""
        return self.poller.latency.snapshot()

    # The poller's hooks (:class:`suno_mcp.engine.host.PollerHost`) act for the tenant on the task's
    # ref, whichever view of the service (usually the server's own) the poller was given.

    def tenant_key(self, tenant: str) -> SecretStr | None:
        """Poller hook: the key a team-mode tenant last called with (in memory only), if any."""
        return self.keys.get(tenant)

    async def stored_state(self, ref: TaskRef) -> Task | None:
        """Poller hook: the ledger's newest state of a task (another replica fetched and stored it)."""
        if self._waiting_for_ledger(ref):
            return None
        record = await self.ledger.get(ref.task_id, tenant=ref.tenant)
        return None if record is None or record.task_id is None else record.as_task()

    async def milestone_reached(self, ref: TaskRef, milestone: str, seconds: float) -> None:
        """Poller hook: keep when a task reached a milestone, so the latency survives restarts."""
        if self._waiting_for_ledger(ref):
            return  # no row holds its id yet: one sample less to learn from
        await self.ledger.record_milestone(ref.task_id, milestone, seconds, tenant=ref.tenant)

    async def task_stalled(self, ref: TaskRef, task: Task) -> None:
        """Poller hook: a task whose status has not moved for far too long stops being followed."""
        stalled = task.model_copy(
            update={
                "status": Status.STALLED,
                "error": f"no progress for a long time; the upstream's last word was {task.raw_status or task.status.value!r}",
            }
        )
        if not self._waiting_for_ledger(ref):
            await self.ledger.update(stalled, tenant=ref.tenant)
            self.task_moved(ref, stalled)

    def task_moved(self, ref: TaskRef, task: Task) -> None:
        """Poller hook: a task's status or audio changed (and is stored): tell whoever follows it."""
        self.news.tell(TaskMoved(ref.tenant, task.task_id, task.status, task.error))

    def paused(self, tenant: str, retry_after: float | None) -> None:
        """Poller hook: the upstream answered 429, so this tenant's requests wait."""
        self.news.tell(Paused(tenant, retry_after))

    async def task_fetched(self, ref: TaskRef, task: Task) -> None:
        """Poller hook: store every state a poll brought; start the opt-in download when final."""
        if self._waiting_for_ledger(ref):
            return  # no row holds its id yet; once the journal's replay writes it, it is polled again
        await self.ledger.update(task, tenant=ref.tenant)
        if (
            self.settings.auto_download
            and task.status is Status.COMPLETE
            and task.kind != "lyrics"
            and self.task_group is not None
            and self._auto_downloads is not None
        ):
            # Queued, not started at once: a burst of finished tasks must not open a download each.
            self._auto_downloads.add(ref.tenant, task.task_id, self.task_group, self.auto_download)
