"""The quick loop's rule, checked: a test not marked ``slow`` starts no other program.

``pytest -m "not slow and not network"`` is what people run between edits; one subprocess costs
it a second or more of interpreter start-up, and a few of them used to slip in unmarked. Python's
audit hooks see every process start (``subprocess``, asyncio's subprocesses, ``os.fork``,
``os.posix_spawn``, ``os.system``), so a test that starts one without the marker fails, naming it.

Fixtures wider than a function (the session's PostgreSQL server) are shared by many tests and may
start programs; a test's own fixtures and body may not. Loaded from ``tests/conftest.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import Any

import pytest

_SPAWN_EVENTS = frozenset(
    {"subprocess.Popen", "os.posix_spawn", "os.fork", "os.forkpty", "os.exec", "os.spawn", "os.system"}
)


class _Watch:
    checking = False  # a test that may not start programs is in its setup or call
    shared_setups = 0  # session/module/class fixtures being set up just now
    started: list[str] = []  # noqa: RUF012 - one list per process, reset for each test


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event in _SPAWN_EVENTS and _Watch.checking and not _Watch.shared_setups:
        program = args[0] if args and event != "os.fork" else ""
        _Watch.started.append(f"{event} {program!r}" if program else event)


# An audit hook cannot be removed: it lives as long as the test process, costing one set lookup
# per audited event.
sys.addaudithook(_audit)


def _check(item: pytest.Item, phase: str) -> None:
    started, _Watch.started = _Watch.started, []
    if started:
        pytest.fail(
            f"{item.nodeid} started another program in its {phase} but is not marked slow "
            f"(pyproject.toml's marker): {'; '.join(started[:3])}",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any]) -> Generator[None, Any, Any]:
    shared = fixturedef.scope != "function"
    _Watch.shared_setups += shared
    try:
        return (yield)
    finally:
        _Watch.shared_setups -= shared


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    _Watch.started = []
    _Watch.checking = item.get_closest_marker("slow") is None
    try:
        yield
    finally:
        _Watch.checking = False
    _check(item, "setup")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    _Watch.checking = item.get_closest_marker("slow") is None
    try:
        yield
    finally:
        _Watch.checking = False
    _check(item, "body")
