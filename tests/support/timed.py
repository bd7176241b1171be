"""Under pytest-xdist, a test marked ``timed`` runs alone: the other workers wait for it.

A timed test asserts how soon something happens in real time (the poller sees a preview within
1.15x of when it became playable, a learned latency lands within 30 % of the true one). On a
two-core machine, another worker's test beside it (and the programs that one starts) makes its
polls late, and it fails for nothing. So every test holds a lock on one file of the run, shared;
a timed test holds it alone. A turnstile in front keeps a timed test from waiting behind a stream
of short tests: once it queues, no new test starts until it has run. Without xdist (one process,
tests one after another) nothing is locked.

Under xdist the modules that hold timed tests also run first, while every worker is still on
short tests: a timed test then waits for a short test beside it to end, not for the browser run or
the wheel's build (a minute each). The modules with slow tests come next and the quick ones last,
each set biggest first, so the workers' ends are filled with small modules (pyproject's
--no-loadscope-reorder keeps this order).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections import Counter
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import IO, Any

import pytest


def _run_directory(config: pytest.Config) -> Path | None:
    """A directory shared by the workers of this run only; None when not under xdist."""
    if "PYTEST_XDIST_WORKER" not in os.environ or sys.platform == "win32":
        return None  # no fcntl on Windows: timed tests there share the machine as before
    basetemp = config.option.basetemp  # xdist gives each worker <the run's temp root>/popen-gwN
    return Path(basetemp).parent if basetemp else None


@contextlib.contextmanager
def _locked(path: Path, operation: int) -> Iterator[IO[str]]:
    import fcntl

    with path.open("a") as handle:
        fcntl.flock(handle, operation)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _run_directory(config) is None:
        return
    # Every worker collects, and must end up with the same order: a stable sort on the module.
    timed = {item.path for item in items if item.get_closest_marker("timed") is not None}
    slow = {item.path for item in items if item.get_closest_marker("slow") is not None}
    size = Counter(item.path for item in items)  # within each class, the bigger modules first
    items.sort(key=lambda item: (item.path not in timed, item.path not in slow, -size[item.path]))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, Any, Any]:
    directory = _run_directory(item.config)
    if directory is None:
        return (yield)
    import fcntl

    turnstile, room = directory / "timed-turnstile.lock", directory / "timed-room.lock"
    if item.get_closest_marker("timed") is not None:
        with _locked(turnstile, fcntl.LOCK_EX), _locked(room, fcntl.LOCK_EX):
            return (yield)
    with _locked(turnstile, fcntl.LOCK_EX):
        pass  # wait here while a timed test is queued or running
    with _locked(room, fcntl.LOCK_SH):
        return (yield)
