"""Shared test configuration: async tests (anyio_mode = "auto") run on asyncio."""

from __future__ import annotations

import pytest

from tests.support.postgres import postgres_server

# A test not marked slow that starts another program fails. A plugin, not hooks imported here:
# a conftest's hooks never see the setup of session fixtures, which the rule must tell apart.
pytest_plugins = ["tests.support.quick_loop"]

__all__ = ["postgres_server"]  # a session fixture: a throwaway PostgreSQL server, started on first use


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
