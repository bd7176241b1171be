"""SUNO_MCP_DATABASE_URL puts the ledger in PostgreSQL: what the tools record lands there."""

from __future__ import annotations

from pathlib import Path

import anyio
import psycopg
from mcp import Client

from suno_mcp.server.app import build_server
from suno_mcp.service.backends import SandboxOptions, sandbox_backend
from suno_mcp.settings import load_settings
from suno_mcp.store.postgres import PostgresLedger
from tests.support.postgres import PostgresServer, fresh_database


async def test_with_a_database_url_a_generated_task_is_kept_in_postgres_and_no_sqlite_file_is_made(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    with fresh_database(postgres_server) as url:
        settings = load_settings(
            environ={"SUNO_MCP_DATABASE_URL": url}, data_dir=tmp_path, max_requests_per_second=1000.0
        )
        server = build_server(settings, sandbox_backend(SandboxOptions(speed=1000)))
        with anyio.fail_after(30):
            async with Client(server) as client:
                result = await client.call_tool(
                    "generate_music", {"description": "a waltz", "wait_seconds": 5}
                )
        assert not result.is_error, result.content
        assert result.structured_content is not None
        with psycopg.connect(url) as db:
            rows = db.execute("SELECT task_id, sandbox FROM tasks").fetchall()
        assert rows == [(result.structured_content["task_id"], True)]
        assert not settings.ledger_path.exists()


def test_the_database_url_never_shows_in_the_settings_repr() -> None:
    settings = load_settings(environ={"SUNO_MCP_DATABASE_URL": "postgresql://u:hunter2-pw@db.example/suno"})
    assert settings.database_url is not None
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())


async def test_a_ledger_whose_idle_connections_the_database_dropped_answers_its_next_call(
    postgres_server: PostgresServer,
) -> None:
    with fresh_database(postgres_server) as url:
        ledger = await PostgresLedger.open(url)
        try:
            local = await ledger.record_intent(api="task", kind="music", request={}, fingerprint=None)
            with psycopg.connect(postgres_server.admin_url, autocommit=True) as admin:
                # What a restart does to every connection to the ledger's database (the admin's is elsewhere).
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (url.rsplit("/", 1)[1],),
                )
            # The pool's check finds the connection gone before the call uses it: nothing in flight, nothing lost.
            await ledger.ping()
            assert await ledger.get(local) is not None
        finally:
            await ledger.close()
