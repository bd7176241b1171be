"""The journal: accepted submits the ledger could not record yet, on local disk until it can.

When the upstream has accepted (and charged) a submit and the ledger then cannot record its task id
(its database down, restarting, or busy past its timeout), the task must not be lost. The service
appends the accepted answer here, one JSON line flushed and fsynced in a worker thread before the
caller is answered, and writes it to the ledger as soon as the ledger answers again: this process
retries in the background (:meth:`Journal.replay`), and the next process started on the same data
directory replays whatever a stopped one left.

Files: ``<data dir>/journal/<replica>.jsonl``, one per process, held under an exclusive lock for the
process's life. A file whose lock nobody holds was left by a process that stopped (crashed, or closed
while the ledger was down): the next journal opened there claims it, replays it and removes it.

Replay is idempotent: an entry whose intent row already holds a task id (an earlier replay, or the
write that seemed to fail but had committed) is skipped, so nothing is recorded twice, no row is
added, and no newer state a poll stored is overwritten with the accepted one. Entries carry the
tenant, never a key.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.to_thread
from pydantic import ValidationError

from suno_mcp.domain.models import AcceptedSubmit
from suno_mcp.store.base import LedgerStore

log = logging.getLogger(__name__)

SUFFIX = ".jsonl"


def _try_lock(fd: int) -> bool:
    """Take the file's exclusive lock without waiting; False when another open file holds it."""
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _fsync_directory(directory: Path) -> None:
    # A new file's name is durable only once its directory is; Windows cannot open a directory.
    if sys.platform == "win32":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class _File:
    """One journal file held open under its lock: this process's own, or one it claimed."""

    path: Path
    fd: int
    own: bool
    entries: list[AcceptedSubmit] = field(default_factory=list)  # not yet in the ledger


def _create_own(directory: Path) -> _File:
    """This process's file, locked before its name appears (a scan must never claim a live file)."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
    hidden = directory / f".{name}.tmp"
    fd = os.open(hidden, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
    try:
        if not _try_lock(fd):  # a new file nobody else can know of
            raise RuntimeError(f"could not lock the new journal file {hidden}")
        path = directory / f"{name}{SUFFIX}"
        os.replace(hidden, path)
        _fsync_directory(directory)
    except BaseException:
        os.close(fd)
        raise
    return _File(path=path, fd=fd, own=True)


def _read_entries(fd: int, path: Path) -> list[AcceptedSubmit]:
    with os.fdopen(os.dup(fd), "rb") as file:  # its own descriptor: closing it keeps the lock's
        data = file.read()
    entries: list[AcceptedSubmit] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(AcceptedSubmit.model_validate_json(line))
        except ValidationError:
            # Only a line cut short by a crash mid-write (never one a caller was answered after).
            log.warning("skipping an unreadable line %d of the journal file %s", number, path.name)
    return entries


def _claim_orphans(directory: Path, own: Path) -> list[_File]:
    """The files of stopped processes (nobody holds their lock), locked and read."""
    claimed: list[_File] = []
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        if path == own:
            continue
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:  # another process claimed and removed it meanwhile
            continue
        try:
            # Locked, and still the file of that name: one removed after we opened it is done with.
            if not _try_lock(fd) or os.fstat(fd).st_ino != os.stat(path).st_ino:
                os.close(fd)
                continue
        except FileNotFoundError:
            os.close(fd)
            continue
        claimed.append(_File(path=path, fd=fd, own=False, entries=_read_entries(fd, path)))
    return claimed


def _append(fd: int, line: bytes) -> None:
    os.write(fd, line)  # O_APPEND: one write, at the end
    os.fsync(fd)


def _empty(file: _File) -> None:
    """A file all of whose entries are in the ledger: this process's own is emptied (it keeps
    appending to it), a claimed one removed."""
    if file.own:
        os.ftruncate(file.fd, 0)
        os.fsync(file.fd)
        return
    with contextlib.suppress(FileNotFoundError):
        file.path.unlink()
    os.close(file.fd)


def _close(file: _File) -> None:
    if file.own and not file.entries:
        with contextlib.suppress(FileNotFoundError):
            file.path.unlink()
    os.close(file.fd)  # a file still holding entries is left for the next process to claim


class Journal:
    """Accepted submits not yet in the ledger. Open it with :meth:`open`; every file operation runs
    in one worker thread, in the order asked."""

    def __init__(self, directory: Path, own: _File, claimed: list[_File]) -> None:
        self.directory = directory
        self._own = own
        self._files = [own, *claimed]
        self._worker = anyio.CapacityLimiter(1)
        self._writing = anyio.Lock()  # an append and the emptying of the own file never interleave
        self._replaying = anyio.Lock()
        self._changed = anyio.Event()  # set when an entry arrives: wait_pending wakes

    @classmethod
    async def open(cls, directory: Path) -> Journal:
        """Create this process's file under ``directory`` and claim the files stopped processes left."""
        own = await anyio.to_thread.run_sync(_create_own, directory)
        claimed = await anyio.to_thread.run_sync(_claim_orphans, directory, own.path)
        journal = cls(directory, own, claimed)
        if journal.pending:
            log.warning(
                "the journal holds %d accepted task(s) a stopped process could not record in the ledger",
                journal.pending,
            )
        return journal

    @property
    def pending(self) -> int:
        """How many accepted tasks are waiting for the ledger."""
        return sum(len(f.entries) for f in self._files)

    def find(self, task_or_clip_id: str, *, tenant: str) -> AcceptedSubmit | None:
        """The tenant's waiting entry with this task id, local id or clip id, if any."""
        for file in self._files:
            for entry in file.entries:
                if entry.tenant != tenant:
                    continue
                task = entry.task
                if task_or_clip_id in (task.task_id, entry.local_id) or any(
                    c.id == task_or_clip_id for c in task.clips
                ):
                    return entry
        return None

    async def wait_pending(self) -> None:
        """Return once the journal holds an entry (at once when it does)."""
        while not self.pending:
            self._changed = anyio.Event()
            await self._changed.wait()

    async def append(self, entry: AcceptedSubmit) -> None:
        """Keep ``entry`` durably: one line, flushed and fsynced, before this returns.

        The entry is known to this process (:meth:`find`, :meth:`replay`) from the start, even if
        the disk refuses it; then this raises the ``OSError`` and only memory holds it.
        """
        line = (entry.model_dump_json() + "\n").encode()
        async with self._writing:
            self._own.entries.append(entry)
            self._changed.set()
            await anyio.to_thread.run_sync(_append, self._own.fd, line, limiter=self._worker)

    async def replay(self, ledger: LedgerStore) -> list[AcceptedSubmit]:
        """Write every waiting entry to the ledger; returns those now recorded (by this call).

        Stops at the first failure and raises it (usually ``LedgerUnavailableError``): what is
        left waits for the next call. A file all of whose entries are in is emptied or removed.
        """
        recorded: list[AcceptedSubmit] = []
        async with self._replaying:
            for file in list(self._files):
                for entry in list(file.entries):
                    if await _record(ledger, entry):
                        recorded.append(entry)
                    file.entries.remove(entry)
                if not file.entries:
                    await self._settle(file)
        return recorded

    async def _settle(self, file: _File) -> None:
        async with self._writing:
            if file.entries:  # an append came in meanwhile: the file still holds work
                return
            if not file.own:
                self._files.remove(file)
            await anyio.to_thread.run_sync(_empty, file, limiter=self._worker)

    async def close(self) -> None:
        """Let go of every file: empty ones are removed, ones still holding entries are left for the
        next process on this data directory."""
        async with self._writing:
            for file in self._files:
                await anyio.to_thread.run_sync(_close, file, limiter=self._worker)
            self._files = []


async def _record(ledger: LedgerStore, entry: AcceptedSubmit) -> bool:
    """Write one entry to the ledger unless it is there already; True when this call wrote it."""
    row = await ledger.get(entry.local_id, tenant=entry.tenant)
    if row is None:
        # The intent row is gone (the ledger was replaced?): keep the task all the same, as one
        # found upstream. It is then not counted as paid here; the log says why.
        log.warning(
            "the ledger has no intent row %s for accepted task %s: keeping the task as adopted",
            entry.local_id,
            entry.task.task_id,
        )
        await ledger.adopt(entry.api, entry.task, sandbox=entry.sandbox, tenant=entry.tenant)
        return True
    if row.task_id is not None:
        if row.task_id != entry.task.task_id:
            log.error(
                "ledger row %s holds task %s, not the journal's %s; leaving the row as it is",
                entry.local_id,
                row.task_id,
                entry.task.task_id,
            )
        return False  # already recorded: by an earlier replay, or by the write that seemed to fail
    await ledger.record_submitted(entry.local_id, entry.accepted_task())
    log.info("recorded accepted task %s (ledger row %s) from the journal", entry.task.task_id, entry.local_id)
    return True
