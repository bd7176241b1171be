"""Team mode through the service, against the sandbox: two callers of one server (each a view from
``service.for_caller``) neither see, nor reuse, nor pay for each other's tasks, on either ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import SecretStr

from suno_mcp.domain.errors import NotFoundError
from suno_mcp.domain.models import MusicRequest, Status
from suno_mcp.domain.tenancy import Caller, tenant_id
from suno_mcp.engine.poller import Timing
from suno_mcp.sandbox import SandboxConfig, run_sandbox
from suno_mcp.service.core import SunoService
from suno_mcp.service.wiring import open_service
from suno_mcp.settings import Settings, load_settings
from tests.support.postgres import PostgresServer, fresh_database

SPEED = 1000.0  # a task completes in ~0.13 s
BOUND_S = 30.0
SECRET = SecretStr("a-tenant-secret-of-some-length")


def caller(key: str) -> Caller:
    return Caller(tenant=tenant_id(SECRET, key), key=SecretStr(key))


@pytest.fixture(params=["sqlite", "postgres"])
def database_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield {}
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with fresh_database(server) as url:
        yield {"SUNO_MCP_DATABASE_URL": url}


async def until_complete(service: SunoService, task_id: str) -> None:
    with anyio.fail_after(BOUND_S):
        while True:
            outcome = await service.status(task_id, wait_s=5)
            if outcome.record.status.finished:
                assert outcome.record.status is Status.COMPLETE
                return


@asynccontextmanager
async def one_server(
    tmp_path: Path, environ: dict[str, str], **overrides: Any
) -> AsyncIterator[tuple[SunoService, Settings]]:
    """A service (the server's own view) against a sandbox."""
    config = SandboxConfig(speed=SPEED, clip_seconds=2.0)
    timing = Timing(
        preview_s=config.preview_after_s, complete_s=config.complete_after_s, lyrics_s=config.lyrics_after_s
    ).scaled(config.speed)
    async with run_sandbox(config) as sandbox:
        settings = load_settings(
            environ=environ,
            api_key="server-key",
            base_url=sandbox.url,
            data_dir=tmp_path,
            max_requests_per_second=1000.0,
            tenant_max_rps=1000.0,  # a tenant's own pacing (2/s by default) is test_poller's to show
            **overrides,
        )
        async with open_service(settings, timing=timing, sandbox=True) as service:
            yield service, settings


async def test_two_callers_neither_see_nor_reuse_nor_pay_for_each_others_tasks(
    tmp_path: Path, database_env: dict[str, str]
) -> None:
    # One request a day each: a shared budget would refuse the second caller's request.
    async with one_server(tmp_path, {**database_env, "SUNO_MCP_BUDGET": "1/day"}) as (service, settings):
        alice, bob = service.for_caller(caller("key-alice")), service.for_caller(caller("key-bob"))
        request = MusicRequest(gpt_description_prompt="a song about the sea", mv="chirp-v3-5")
        with anyio.fail_after(BOUND_S):
            mine = await alice.submit_music(request)
            theirs = await bob.submit_music(request)  # the same request, within the window
            again = await alice.submit_music(request)
        mine_id, theirs_id = mine.record.task_id, theirs.record.task_id
        assert mine_id is not None
        assert theirs_id is not None
        assert not theirs.deduplicated
        assert theirs_id != mine_id
        assert again.deduplicated  # the guard still answers a caller from their own rows
        assert again.record.task_id == mine_id

        assert [r.task_id for r in await bob.list_tasks()] == [theirs_id]
        assert [r.task_id for r in await alice.list_tasks()] == [mine_id]
        assert await service.list_tasks() == []  # the server's own key made nothing
        assert await bob.record(mine_id) is None
        assert await bob.record(mine.record.local_id) is None
        assert await alice.record(mine_id) is not None
        for view in (alice, bob):
            assert await view.budget_used() == 1
            assert [sum(line.requests for line in w.lines) for w in await view.usage()] == [1, 1, 1]

        # Followed by the shared poller, written to the caller's own row, saved in their directory.
        await until_complete(alice, mine_id)
        files = await alice.download(task_id=mine_id)
        assert files
        assert (
            {Path(f.path).parent for f in files} == {settings.audio_dir / alice.tenant} == {alice.audio_dir}
        )
        with pytest.raises(NotFoundError):
            await bob.download(task_id=mine_id)
        assert await bob.clip_source(files[0].clip_id) is None
        assert await alice.clip_source(files[0].clip_id) is not None


async def test_the_automatic_download_of_a_callers_task_lands_in_their_row_and_directory(
    tmp_path: Path, database_env: dict[str, str]
) -> None:
    async with one_server(tmp_path, database_env, auto_download=True) as (service, settings):
        alice = service.for_caller(caller("key-alice"))
        with anyio.fail_after(BOUND_S):
            outcome = await alice.submit_music(MusicRequest(gpt_description_prompt="auto", mv="chirp-v3-5"))
        task_id = outcome.record.task_id
        assert task_id is not None
        await until_complete(alice, task_id)
        with anyio.fail_after(BOUND_S):
            while True:
                record = await alice.record(task_id)
                assert record is not None
                if len(record.files) == len(record.clips):
                    break
                await anyio.sleep(0.05)  # a polling interval inside a bounded wait
        assert {Path(f.path).parent for f in record.files} == {settings.audio_dir / alice.tenant}
        assert all([await anyio.Path(f.path).is_file() for f in record.files])
