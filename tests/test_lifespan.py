"""The service opens on the first tool call, not at start-up; a failure to open it is explained, and
tried again after a delay that grows with each failure in a row."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from suno_mcp.domain.errors import ConfigurationError
from suno_mcp.server.app import build_server
from suno_mcp.server.lifespan import LazyService
from suno_mcp.service.backends import upstream_backend
from suno_mcp.settings import load_settings
from tests.support.clock import FakeClock


async def test_listing_tools_resources_and_prompts_never_opens_the_backend(tmp_path: Path) -> None:
    opened: list[bool] = []

    @asynccontextmanager
    async def backend(settings: Any) -> AsyncIterator[Any]:
        opened.append(True)
        yield None

    server = build_server(load_settings(environ={}, data_dir=tmp_path), backend)
    async with Client(server) as client:
        await client.list_tools()
        await client.list_resources()
        await client.list_prompts()
        await client.read_resource("suno://models")
    assert opened == []
    assert not (tmp_path / "tasks.sqlite3").exists()


async def test_an_unwritable_data_directory_is_a_tool_error_that_names_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the data directory should be")
    settings = load_settings(environ={}, api_key="k", data_dir=blocker / "data")
    async with Client(build_server(settings, upstream_backend)) as client:
        result = await client.call_tool("list_tasks", {})
        again = await client.call_tool("get_task_status", {"task_id": "abc"})
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "SUNO_MCP_DATA_DIR" in text
    assert str(blocker / "data") in text
    assert again.is_error  # the server stays up and keeps explaining


class FlakyBackend:
    """A backend whose first ``failures`` starts raise; later ones open a fresh service object each."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.starts: list[float] = []  # the clock's time of every start
        self.clock = FakeClock()

    @asynccontextmanager
    async def __call__(self, settings: Any) -> AsyncIterator[Any]:
        self.starts.append(self.clock.now)
        if len(self.starts) <= self.failures:
            raise OSError("the database is down")
        yield object()


@asynccontextmanager
async def running(lazy: LazyService) -> AsyncIterator[LazyService]:
    async with anyio.create_task_group() as tg:
        tg.start_soon(lazy.run)
        yield lazy
        tg.cancel_scope.cancel()


async def test_a_failed_start_is_explained_then_tried_again_by_the_first_call_after_the_delay(
    tmp_path: Path,
) -> None:
    backend = FlakyBackend(failures=1)
    settings = load_settings(environ={}, data_dir=tmp_path)
    async with running(LazyService(backend, settings, clock=backend.clock)) as lazy:
        with pytest.raises(ConfigurationError) as first:
            await lazy.get()
        assert "the database is down" in first.value.message
        assert "SUNO_MCP_DATA_DIR" in first.value.message
        assert "tries again on a call made in 1 s" in first.value.message

        backend.clock.now = 0.9  # within the delay: the same error, and no new start
        with pytest.raises(ConfigurationError):
            await lazy.get()
        assert backend.starts == [0.0]

        backend.clock.now = 1.0
        service = await lazy.get()
        assert await lazy.get() is service
    assert backend.starts == [0.0, 1.0]


async def test_the_delay_between_failed_starts_doubles_from_1_s_up_to_30_s(tmp_path: Path) -> None:
    backend = FlakyBackend(failures=1000)
    settings = load_settings(environ={}, data_dir=tmp_path)
    async with running(LazyService(backend, settings, clock=backend.clock)) as lazy:
        for second in range(100):  # a call every second
            backend.clock.now = float(second)
            with pytest.raises(ConfigurationError):
                await lazy.get()
    assert backend.starts == [0, 1, 3, 7, 15, 31, 61, 91]


async def test_a_database_url_failure_names_the_database_not_the_data_directory(tmp_path: Path) -> None:
    backend = FlakyBackend(failures=1)
    url = "postgresql://suno:hunter2@db.internal/suno"
    settings = load_settings(environ={}, data_dir=tmp_path, database_url=url)
    async with running(LazyService(backend, settings, clock=backend.clock)) as lazy:
        with pytest.raises(ConfigurationError) as failed:
            await lazy.get()
    assert "SUNO_MCP_DATABASE_URL" in failed.value.message
    assert "hunter2" not in failed.value.message
    assert "db.internal" not in failed.value.message


async def test_a_service_that_stops_on_its_own_is_opened_again_after_the_delay(tmp_path: Path) -> None:
    clock = FakeClock()
    crash, closed = anyio.Event(), anyio.Event()
    opened: list[object] = []

    @asynccontextmanager
    async def backend(settings: Any) -> AsyncIterator[Any]:
        # Like open_service: the service's own tasks run in a task group around its life.
        try:
            async with anyio.create_task_group() as tg:
                if not opened:

                    async def poller() -> None:
                        await crash.wait()
                        raise OSError("the poller died")

                    tg.start_soon(poller)
                opened.append(object())
                yield opened[-1]
        finally:
            closed.set()  # the runner handles what this raises before the test runs again

    settings = load_settings(environ={}, data_dir=tmp_path)
    async with running(LazyService(backend, settings, clock=clock)) as lazy:
        assert await lazy.get() is opened[0]
        crash.set()
        await closed.wait()
        with pytest.raises(ConfigurationError):
            await lazy.get()
        clock.now = 1.0
        assert await lazy.get() is opened[1]
