"""Saving finished audio under the data directory, on request or as soon as a task completes.

A mixin of :class:`suno_mcp.service.core.SunoService`. Hosted audio URLs expire; the file on
disk is what the person keeps. Each team-mode tenant's files go in a directory of its own.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import anyio.abc
import httpx

from suno_mcp import metrics
from suno_mcp.domain.errors import NotFoundError, SunoError
from suno_mcp.domain.media import PLAIN_ID_RE, safe_stem
from suno_mcp.domain.models import SavedFile, Status
from suno_mcp.settings import Settings
from suno_mcp.store.base import LedgerStore
from suno_mcp.upstream.downloads import download_to

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 120.0

_Job = tuple[str, str]  # (tenant, task id)


class DownloadQueue:
    """The automatic downloads of finished tasks: at most ``limit`` run at once, the rest wait in
    the order their tasks finished, and a task queued or running is not queued again.

    A burst of finished tasks (thousands, on a busy server) is then a queue of small tuples and
    ``limit`` workers, not a task and an open connection each.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._waiting: deque[_Job] = deque()
        self._known: set[_Job] = set()  # waiting or running
        self.running = 0

    def __repr__(self) -> str:
        return f"DownloadQueue(running={self.running}, waiting={len(self._waiting)}, limit={self.limit})"

    @property
    def waiting(self) -> int:
        """Downloads queued behind the running ones."""
        return len(self._waiting)

    def add(
        self,
        tenant: str,
        task_id: str,
        group: anyio.abc.TaskGroup,
        download: Callable[[str, str], Awaitable[None]],
    ) -> None:
        """Queue ``download(tenant, task_id)``; start a worker in ``group`` if fewer than ``limit`` run."""
        job = (tenant, task_id)
        if job in self._known:
            return
        self._known.add(job)
        self._waiting.append(job)
        if self.running < self.limit:
            self.running += 1
            group.start_soon(self._work, download)
        self._publish()

    async def _work(self, download: Callable[[str, str], Awaitable[None]]) -> None:
        try:
            while self._waiting:
                job = self._waiting.popleft()
                self._publish()
                try:
                    await download(*job)
                finally:
                    self._known.discard(job)
        finally:
            self.running -= 1
            self._publish()

    def _publish(self) -> None:
        metrics.AUTO_DOWNLOADS.labels("running").set(self.running)
        metrics.AUTO_DOWNLOADS.labels("queued").set(len(self._waiting))


class Downloads:
    """Where a tenant's audio goes, and fetching it there once."""

    settings: Settings
    ledger: LedgerStore
    http: httpx.AsyncClient
    tenant: str
    # Defined by SunoService: refuses a caller's id the ledger does not know that does not look like one.
    check_caller_id: Callable[[str, str], Awaitable[None]]

    async def auto_download(self, tenant: str, task_id: str) -> None:
        """Save a completed task's audio for its tenant, as SUNO_MCP_AUTO_DOWNLOAD asks; failures are logged."""
        try:
            with anyio.move_on_after(DOWNLOAD_TIMEOUT_S):
                await self._download(tenant, task_id=task_id)
        except SunoError as err:
            log.warning("auto-download of %s failed: %s", task_id, err.message)
        except OSError as err:
            log.warning("auto-download of %s could not write the file: %s", task_id, err)

    async def download(self, *, task_id: str | None = None, clip_id: str | None = None) -> list[SavedFile]:
        """Save the final audio of a task's clips (or one clip) under the data directory."""
        if task_id is not None:
            await self.check_caller_id("task_id", task_id)
        if clip_id is not None:
            await self.check_caller_id("clip_id", clip_id)
        return await self._download(self.tenant, task_id=task_id, clip_id=clip_id)

    @property
    def audio_dir(self) -> Path:
        """Where this caller's downloads are saved (see :meth:`audio_dir_of`)."""
        return self.audio_dir_of(self.tenant)

    def audio_dir_of(self, tenant: str) -> Path:
        """Where a tenant's audio is saved: the audio directory itself for the server's own key,
        a directory of its own for each team-mode tenant."""
        if not tenant:
            return self.settings.audio_dir
        if not PLAIN_ID_RE.fullmatch(tenant):  # "t-" + hex: never a path of its own
            raise ValueError(f"not a tenant id: {tenant!r}")
        return self.settings.audio_dir / tenant

    async def _download(
        self, tenant: str, *, task_id: str | None = None, clip_id: str | None = None
    ) -> list[SavedFile]:
        """:meth:`download` for one tenant (the auto-download runs in the poller's hook, for the task's tenant)."""
        record = None
        if task_id is not None:
            record = await self.ledger.find(task_id, tenant=tenant)
        elif clip_id is not None:
            record = await self.ledger.find_by_clip(clip_id, tenant=tenant)
        if record is None:
            raise NotFoundError(f"no task or clip {task_id or clip_id} in the ledger", status_code=404)
        clips = [c for c in record.clips if clip_id is None or c.id == clip_id]
        ready = [c for c in clips if c.status is Status.COMPLETE and c.audio_url]
        if not ready:
            raise NotFoundError(
                "no final audio yet: the clip is not complete (call get_task_status with wait_seconds)",
                status_code=409,
            )
        saved_by_clip = {f.clip_id: f for f in record.files}
        saved: list[SavedFile] = []
        for clip in ready:
            assert clip.audio_url is not None
            existing = saved_by_clip.get(clip.id)
            if existing is not None and await anyio.Path(existing.path).exists():
                saved.append(existing)
                continue
            got = await download_to(
                self.http,
                clip.audio_url,
                str(self.audio_dir_of(tenant)),
                safe_stem(clip.title, clip.id),
                max_bytes=self.settings.download_max_bytes,
            )
            file = SavedFile(
                clip_id=clip.id,
                task_id=record.task_id,
                path=got.path,
                url=clip.audio_url,
                bytes=got.bytes,
                mime_type=got.content_type,
            )
            await self.ledger.record_file(file, tenant=tenant)
            saved.append(file)
        return saved
