"""Health over real HTTP: ``/healthz`` says the process serves, ``/readyz`` says whether it can serve a
tool call now (its service open, its ledger answering within a second). Both answer without any
credential in every mode, say nothing secret, and follow the ledger: 503 while it cannot answer,
200 again once it can."""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from suno_mcp.server.app import build_server
from suno_mcp.server.http import build_http_app
from suno_mcp.service.backends import upstream_backend
from suno_mcp.settings import Settings, load_settings
from tests.support.clock import FakeClock
from tests.support.http_app import INIT, MCP_HEADERS, serving
from tests.support.postgres import find_binaries, running_postgres, stopped

# Random per run, so finding one in an answer can only mean it leaked.
KEY = "gp-server-key-" + secrets.token_hex(12)
TOKEN = "door-token-" + secrets.token_hex(12)
TENANT_SECRET = "tenant-secret-" + secrets.token_hex(12)
CALLER = "gp-caller-" + secrets.token_hex(12)
READY_WITHIN_S = 30  # the service opens, and a locked ledger is let go of, well inside this

MODES: dict[str, dict[str, Any]] = {
    "one key": {"api_key": KEY},
    "token": {"api_key": KEY, "http_token": TOKEN},
    "team": {"keys": "per-request", "tenant_secret": TENANT_SECRET},
}
# What the door asks of an MCP request in each mode, for the check that only the two paths skip it.
CREDENTIAL = {"one key": None, "token": TOKEN, "team": CALLER}


def _settings(tmp_path: Path, mode: str = "one key", **overrides: Any) -> Settings:
    values = {**MODES[mode], **overrides}
    return load_settings(environ={}, data_dir=tmp_path / "data", base_url="http://127.0.0.1:9", **values)


@asynccontextmanager
async def _serving(
    settings: Settings, clock: Callable[[], float] = time.monotonic
) -> AsyncIterator[httpx.AsyncClient]:
    """The server over HTTP on loopback (against a vendor URL nothing listens on: readiness never asks
    it), and an HTTP client of it that sends no credential."""
    server = build_server(settings, upstream_backend, clock=clock)
    async with (
        serving(build_http_app(server, settings, "127.0.0.1")) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        yield http


async def _ready(http: httpx.AsyncClient) -> httpx.Response:
    """``/readyz`` until it says 200; the only other answer allowed meanwhile is that the service is
    still opening (each of those has waited the server's readiness limit)."""
    with anyio.fail_after(READY_WITHIN_S):
        while (answer := await http.get("/readyz")).status_code != 200:
            assert answer.json()["reason"] == "the service is still opening", answer.text
    return answer


def _assert_nothing_secret(answer: httpx.Response, settings: Settings) -> None:
    for secret in (KEY, TOKEN, TENANT_SECRET, CALLER, str(settings.data_dir), settings.base_url, "127.0.0.1"):
        assert secret not in answer.text, f"{secret!r} in {answer.text}"


@pytest.mark.parametrize("mode", MODES)
async def test_healthz_and_readyz_answer_without_a_credential_in_every_mode_and_say_nothing_secret(
    tmp_path: Path, mode: str
) -> None:
    settings = _settings(tmp_path, mode)
    async with _serving(settings) as http:
        health = await http.get("/healthz")
        ready = await _ready(http)
        # A probe by the replica's own address, which the DNS-rebinding check would refuse on /mcp.
        by_address = [
            await http.get(path, headers={"Host": "10.0.0.11:8000"}) for path in ("/healthz", "/readyz")
        ]
        # Only those two, with GET: the MCP endpoint, and another method on those paths, still meet the door.
        mcp = await http.post("/mcp", json=INIT, headers=MCP_HEADERS)
        posted = await http.post("/readyz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert ready.json() == {"status": "ready"}
    assert health.headers["cache-control"] == ready.headers["cache-control"] == "no-store"
    assert [answer.status_code for answer in by_address] == [200, 200]
    for answer in (health, ready):
        _assert_nothing_secret(answer, settings)
    if CREDENTIAL[mode] is None:
        assert mcp.status_code == 200
    else:
        assert mcp.status_code == posted.status_code == 401


@contextmanager
def _write_lock_held(path: Path) -> Iterator[None]:
    """Another connection to the SQLite file holds its write lock (as a second process could)."""
    other = sqlite3.connect(str(path), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_readyz_is_503_while_the_sqlite_ledger_cannot_answer_and_200_again_once_it_can(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    async with _serving(settings) as http:
        await _ready(http)
        with _write_lock_held(settings.ledger_path):
            blocked = await http.get("/readyz")
            alive = await http.get("/healthz")
        again = await _ready(http)
    assert blocked.status_code == 503
    assert blocked.json() == {"status": "not ready", "reason": "the ledger did not answer in time"}
    assert alive.status_code == 200  # the process still serves: not a reason to restart it
    assert again.json() == {"status": "ready"}


async def test_readyz_opens_a_service_that_failed_to_start_once_the_cause_is_gone(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data directory should be")
    settings = _settings(tmp_path)
    clock = FakeClock()
    async with _serving(settings, clock) as http:
        failed = await http.get("/readyz")
        blocker.unlink()  # the cause is gone, but the server waits out its delay before it looks again
        waiting = await http.get("/readyz")
        clock.now = 1.0
        ready = await _ready(http)
    assert failed.status_code == 503
    assert failed.json()["reason"].startswith("the service could not be opened (")
    assert failed.json()["reason"].endswith("the next try is in 1 s")
    _assert_nothing_secret(failed, settings)
    assert waiting.json() == failed.json()
    assert ready.json() == {"status": "ready"}


@pytest.mark.slow
async def test_readyz_is_503_while_the_postgresql_server_is_stopped_and_200_once_it_is_back(
    tmp_path: Path,
) -> None:
    binaries = find_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found")
    with running_postgres(binaries) as postgres:
        url = postgres.url_for("postgres")
        settings = _settings(tmp_path, database_url=url)
        async with _serving(settings) as http:
            ready = await _ready(http)
            with stopped(postgres):
                down = await http.get("/readyz")
                alive = await http.get("/healthz")
            # Started again: the first question finds the old connection gone, a later one connects.
            with anyio.fail_after(READY_WITHIN_S):
                while (answer := await http.get("/readyz")).status_code != 200:
                    assert answer.json()["reason"].startswith("the ledger failed to answer"), answer.text
    assert ready.json() == {"status": "ready"}
    assert answer.json() == {"status": "ready"}
    assert down.status_code == 503
    assert down.json()["status"] == "not ready"
    assert alive.status_code == 200
    _assert_nothing_secret(down, settings)
    assert url not in down.text
    assert str(postgres.port) not in down.text
