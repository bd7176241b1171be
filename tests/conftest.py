"""Shared test configuration: async tests (anyio_mode = "auto") run on asyncio."""

from __future__ import annotations

import sys

import pytest

# Keep compiled test modules (with pytest's assertion rewriting) and package modules between runs,
# even where the environment sets PYTHONDONTWRITEBYTECODE: without the cache every run and every
# xdist worker parses and rewrites all of them again (about 9 s of a quick loop's collection).
sys.dont_write_bytecode = False

from tests.support.postgres import postgres_server  # noqa: E402 (after the flag: it imports our package)

# A test not marked slow that starts another program fails (quick_loop: a plugin, not hooks
# imported here, because a conftest's hooks never see the setup of session fixtures, which the
# rule must tell apart). Under pytest-xdist a test marked timed runs alone (timed). The ledger
# suites' fixtures over both backends (ledgers) are a plugin too: imported into a test module, a
# fixture its tests take by name reads to the linter as an unused import redefined.
pytest_plugins = ["tests.support.quick_loop", "tests.support.timed", "tests.support.ledgers"]

__all__ = ["postgres_server"]  # a session fixture: a throwaway PostgreSQL server, started on first use


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
