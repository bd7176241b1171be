"""Shared test configuration: async tests (anyio_mode = "auto") run on asyncio."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
