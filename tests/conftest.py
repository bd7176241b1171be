"""Shared test configuration: async tests (anyio_mode = "auto") run on asyncio."""

from __future__ import annotations

import pytest

from tests.support.postgres import postgres_server

__all__ = ["postgres_server"]  # a session fixture: a throwaway PostgreSQL server, started on first use


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
