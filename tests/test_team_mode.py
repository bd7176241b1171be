"""Team mode over real HTTP: each request pays with its caller's own gptproto key.

A request without ``Authorization: Bearer <key>`` is refused at the door; each key is a tenant of
its own (its tasks, duplicates and usage are not another's); one tenant cannot take every call
slot; the server's own GPTPROTO_API_KEY is never a fallback; and no key reaches a log or a file.

Which assertions need the ledger's tenant filters (branch h-ledger) and the sandbox's accounts per
key (branch h-bench) is said where they are made: with this branch alone they fail.
"""

from __future__ import annotations

import logging
import secrets
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from mcp import Client, MCPError
from pydantic import SecretStr

from suno_mcp.domain.models import MusicRequest
from suno_mcp.domain.tenancy import Caller, tenant_id
from suno_mcp.sandbox.runner import SandboxHandle, run_sandbox
from suno_mcp.sandbox.state import SandboxConfig
from suno_mcp.server.app import build_server
from suno_mcp.server.http import build_http_app
from suno_mcp.service.backends import SandboxOptions, sandbox_backend, upstream_backend
from suno_mcp.settings import Settings, load_settings
from tests.support.http_app import INIT, MCP_HEADERS, bearer_client, messages, serving, tool_call
from tests.support.processes import http_server_process, log_file, sandbox_process
from tests.support.stdio_session import SCRIPT, server_env

SECRET = "a-team-secret-for-the-tests-0123"
CALL_LIMIT_S = 30
# Random per run, so finding one in a log or a file can only mean it leaked.
ALICE = "gp-alice-" + secrets.token_hex(12)
BOB = "gp-bob-" + secrets.token_hex(12)


def _team_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return load_settings(environ={}, data_dir=tmp_path, keys="per-request", tenant_secret=SECRET, **overrides)


@asynccontextmanager
async def team_server(
    tmp_path: Path, *, sandbox: SandboxConfig | None = None, **overrides: Any
) -> AsyncIterator[tuple[str, SandboxHandle]]:
    """A team-mode server over HTTP in front of a sandbox of its own; yields its URL and the sandbox."""
    # Each tenant's own request pacing (2/s by default) is test_poller's to show; here it would
    # only hold a tenant's second request back by half a second.
    overrides.setdefault("tenant_max_rps", 1000.0)
    async with run_sandbox(sandbox or SandboxConfig(speed=100)) as upstream:
        settings = _team_settings(tmp_path, base_url=upstream.url, **overrides)
        server = build_server(settings, upstream_backend)
        async with serving(build_http_app(server, settings, "127.0.0.1")) as url:
            yield url, upstream


def _text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def test_a_request_without_a_bearer_key_is_refused_with_401_and_told_to_send_its_own(
    tmp_path: Path,
) -> None:
    async with team_server(tmp_path) as (url, _), httpx.AsyncClient(timeout=CALL_LIMIT_S) as http:
        missing = await http.post(f"{url}/mcp", json=INIT, headers=MCP_HEADERS)
        basic = await http.post(
            f"{url}/mcp", json=INIT, headers={**MCP_HEADERS, "Authorization": "Basic YTpi"}
        )
        empty = await http.post(f"{url}/mcp", json=INIT, headers={**MCP_HEADERS, "Authorization": "Bearer"})
        stream = await http.get(f"{url}/mcp", headers={"Accept": "text/event-stream"})
        # Two credentials: the door would have to guess which one the server acts on.
        twice = await http.post(
            f"{url}/mcp",
            json=INIT,
            headers=httpx.Headers(
                [
                    *MCP_HEADERS.items(),
                    ("Authorization", f"Bearer {ALICE}"),
                    ("Authorization", f"Bearer {BOB}"),
                ]
            ),
        )
        keyed = await http.post(
            f"{url}/mcp", json=INIT, headers={**MCP_HEADERS, "Authorization": f"Bearer {ALICE}"}
        )
    for refused in (missing, basic, empty, stream, twice):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.headers["content-type"] == "application/json"
        message = refused.json()["message"]
        assert "Authorization: Bearer <your gptproto key>" in message
    assert keyed.status_code == 200
    assert messages(keyed)[0]["result"]["serverInfo"]["name"] == "suno-mcp"


async def test_one_key_neither_sees_nor_reuses_another_keys_tasks(tmp_path: Path) -> None:
    song = {"description": "a song only alice asked for", "wait_seconds": 0}
    async with (
        team_server(tmp_path) as (url, upstream),
        bearer_client(url, ALICE) as alice,
        bearer_client(url, BOB) as bob,
    ):
        with anyio.fail_after(CALL_LIMIT_S):
            made = await alice.call_tool("generate_music", song)
            assert not made.is_error, _text(made)
            assert made.structured_content is not None
            task_id = made.structured_content["task_id"]
            alice_list = await alice.call_tool("list_tasks", {})
            bob_list = await bob.call_tool("list_tasks", {})
            bob_peek = await bob.call_tool("get_task_status", {"task_id": task_id})
            bob_same = await bob.call_tool("generate_music", song)
            alice_again = await alice.call_tool("generate_music", song)
            bob_usage = await bob.call_tool("get_usage", {})
            alice_tasks = (await alice.read_resource("suno://tasks")).contents[0]
            bob_tasks = (await bob.read_resource("suno://tasks")).contents[0]
    assert alice_list.structured_content is not None
    assert task_id in {t["task_id"] for t in alice_list.structured_content["tasks"]}
    assert task_id in getattr(alice_tasks, "text", "")
    # Alice's own repeat is answered from her ledger rows: the duplicate guard still works per tenant.
    assert alice_again.structured_content is not None
    assert alice_again.structured_content["deduplicated"] is True
    assert alice_again.structured_content["task_id"] == task_id

    # The rest needs the ledger's tenant filters (h-ledger).
    assert bob_list.structured_content is not None
    assert task_id not in {t["task_id"] for t in bob_list.structured_content["tasks"]}
    assert task_id not in getattr(bob_tasks, "text", "")
    assert bob_same.structured_content is not None
    assert bob_same.structured_content["deduplicated"] is False
    assert bob_same.structured_content["task_id"] != task_id
    assert upstream.state.stats.requests["submit_music"] == 2
    assert bob_usage.structured_content is not None
    assert bob_usage.structured_content["periods"][0]["requests"] == 1
    # Not found in Bob's ledger, and not adoptable upstream either: the sandbox keeps each key's
    # tasks apart as the vendor keeps accounts (h-ledger and h-bench together).
    assert bob_peek.is_error
    assert "Not found" in _text(bob_peek)


async def test_task_ids_complete_from_the_callers_own_ledger_only(tmp_path: Path) -> None:
    template = types.ResourceTemplateReference(uri="suno://tasks/{task_id}")

    async def task_ids(client: Client, typed: str) -> list[str]:
        return (await client.complete(template, {"name": "task_id", "value": typed})).completion.values

    async with (
        team_server(tmp_path) as (url, _),
        bearer_client(url, ALICE) as alice,
        bearer_client(url, BOB) as bob,
    ):
        with anyio.fail_after(CALL_LIMIT_S):
            made = [
                (
                    await client.call_tool(
                        "generate_music", {"description": f"{name}'s song", "wait_seconds": 0}
                    )
                )
                for client, name in ((alice, "alice"), (bob, "bob"))
            ]
            alices, bobs = (m.structured_content["task_id"] for m in made if m.structured_content)
            alice_all, alice_bobs = await task_ids(alice, ""), await task_ids(alice, bobs)
            bob_all, bob_alices = await task_ids(bob, ""), await task_ids(bob, alices)
    assert (alice_all, bob_all) == ([alices], [bobs])
    assert (alice_bobs, bob_alices) == ([], [])


@pytest.mark.slow  # ~5 s: Alice's waited call holds her slot for its whole wait_seconds
@pytest.mark.timed  # and the other calls must come while it does
async def test_a_tenant_over_its_call_cap_gets_503_while_another_tenant_is_served(tmp_path: Path) -> None:
    # At speed 1 the first audio is ~30 s away, so Alice's waited call stays in the app for all
    # of its wait_seconds; its first progress report says it is in.
    inside = anyio.Event()

    async def progressed(progress: float, total: float | None, message: str | None) -> None:
        inside.set()

    async with team_server(tmp_path, sandbox=SandboxConfig(speed=1), tenant_max_calls=1) as (url, _):
        async with (
            bearer_client(url, ALICE, mode="legacy") as alice,
            httpx.AsyncClient(timeout=CALL_LIMIT_S) as http,
            anyio.create_task_group() as tg,
        ):
            results: list[Any] = []

            async def hold() -> None:
                waited = {"description": "holds alice's only slot", "wait_seconds": 4}
                results.append(await alice.call_tool("generate_music", waited, progress_callback=progressed))

            tg.start_soon(hold)
            with anyio.fail_after(CALL_LIMIT_S):
                await inside.wait()
                alice_more = await http.post(
                    f"{url}/mcp", json=tool_call("get_usage", {}), headers=_bearer(ALICE)
                )
                bob_served = await http.post(
                    f"{url}/mcp", json=tool_call("get_usage", {}), headers=_bearer(BOB)
                )
        with anyio.fail_after(CALL_LIMIT_S):
            alice_after = await http_post(url, tool_call("get_usage", {}), ALICE)
    assert alice_more.status_code == 503
    assert alice_more.headers["retry-after"] == "1"
    assert "this key" in alice_more.json()["message"]
    assert bob_served.status_code == 200
    assert messages(bob_served)[-1]["result"]["isError"] is False
    assert len(results) == 1
    assert not results[0].is_error, _text(results[0])
    # The slot comes back when the call ends.
    assert alice_after.status_code == 200


def _bearer(key: str) -> dict[str, str]:
    return {**MCP_HEADERS, "Authorization": f"Bearer {key}"}


async def http_post(url: str, message: dict[str, Any], key: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=CALL_LIMIT_S) as http:
        return await http.post(f"{url}/mcp", json=message, headers=_bearer(key))


async def test_without_http_headers_a_call_is_refused_with_how_to_send_the_key(tmp_path: Path) -> None:
    server = build_server(_team_settings(tmp_path), sandbox_backend(SandboxOptions(speed=100)))
    async with Client(server) as client:
        with anyio.fail_after(CALL_LIMIT_S):
            result = await client.call_tool("list_tasks", {})
            models = await client.read_resource("suno://models")
            with pytest.raises(MCPError, match="Authorization: Bearer"):
                await client.read_resource("suno://tasks")
    assert result.is_error
    assert "Authorization: Bearer <your gptproto key>" in _text(result)
    # What belongs to nobody still reads.
    assert "chirp-v3-5" in getattr(models.contents[0], "text", "")


async def test_the_servers_own_key_is_ignored_with_one_warning_and_never_pays_for_a_caller(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server_key = "gp-server-" + secrets.token_hex(8)
    caplog.set_level(logging.WARNING, logger="suno_mcp")
    # The upstream takes only the server's key: a call paid with it would succeed.
    async with (
        team_server(tmp_path, sandbox=SandboxConfig(speed=100, api_key=server_key), api_key=server_key) as (
            url,
            upstream,
        ),
        bearer_client(url, ALICE) as alice,
    ):
        with anyio.fail_after(CALL_LIMIT_S):
            result = await alice.call_tool(
                "generate_music", {"description": "paid by whom", "wait_seconds": 0}
            )
    warnings = [r.getMessage() for r in caplog.records if "GPTPROTO_API_KEY" in r.getMessage()]
    assert len(warnings) == 1
    assert "ignored" in warnings[0]
    assert server_key not in warnings[0]
    assert result.is_error
    text = _text(result)
    assert "Authorization: Bearer" in text
    assert "Nothing was charged" in text
    assert ALICE not in text
    assert server_key not in text
    assert upstream.state.stats.responses[("submit_music", 401)] >= 1


async def test_each_callers_own_key_is_the_one_sent_upstream(tmp_path: Path) -> None:
    async with (
        team_server(tmp_path, sandbox=SandboxConfig(speed=100, api_key=ALICE)) as (url, _),
        bearer_client(url, ALICE) as alice,
        bearer_client(url, BOB) as bob,
    ):
        with anyio.fail_after(CALL_LIMIT_S):
            accepted = await alice.call_tool(
                "generate_music", {"description": "alice pays", "wait_seconds": 0}
            )
            refused = await bob.call_tool("generate_music", {"description": "bob pays", "wait_seconds": 0})
    assert not accepted.is_error, _text(accepted)
    assert refused.is_error
    assert "was rejected by gptproto" in _text(refused)
    assert BOB not in _text(refused)


async def test_the_sandbox_backend_in_team_mode_has_no_key_of_its_own_and_takes_each_callers(
    tmp_path: Path,
) -> None:
    settings = _team_settings(tmp_path)
    caller = Caller(tenant=tenant_id(SecretStr(SECRET), ALICE), key=SecretStr(ALICE))
    async with sandbox_backend(SandboxOptions(speed=100))(settings) as service:
        assert service.settings.api_key is None
        acting = service.for_caller(caller)
        outcome = await acting.submit_music(
            MusicRequest(gpt_description_prompt="sandboxed team song", prompt="", mv="chirp-v3-5")
        )
    assert outcome.record.task_id
    assert outcome.record.sandbox is True
    assert ALICE not in repr(acting)
    assert ALICE not in repr(caller)


@pytest.mark.slow
async def test_the_server_process_never_prints_or_stores_either_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = server_env(
        data, SUNO_MCP_KEYS="per-request", SUNO_MCP_TENANT_SECRET=SECRET, SUNO_MCP_LOG_LEVEL="DEBUG"
    )
    with (
        log_file(tmp_path, "sandbox.log") as sandbox_log,
        sandbox_process("--speed", "100", env=server_env(tmp_path), log=sandbox_log) as (upstream, _),
        log_file(tmp_path, "server.log") as server_log,
        http_server_process({**env, "GPTPROTO_BASE_URL": upstream}, log=server_log) as (mcp_url, _),
    ):
        url = mcp_url.removesuffix("/mcp")
        async with bearer_client(url, ALICE) as alice, bearer_client(url, BOB) as bob:
            with anyio.fail_after(CALL_LIMIT_S * 2):
                made = await alice.call_tool(
                    "generate_music", {"description": "keep my key", "wait_seconds": 3}
                )
                assert made.structured_content is not None, _text(made)
                task_id = made.structured_content["task_id"]
                await alice.call_tool("get_task_status", {"task_id": task_id, "wait_seconds": 2})
                await bob.call_tool("get_task_status", {"task_id": task_id})
                await bob.call_tool("generate_music", {"description": "", "wait_seconds": 0})
                await bob.call_tool("download_audio", {"task_id": "no-such-task"})
                await alice.read_resource("suno://usage")
        async with httpx.AsyncClient(timeout=CALL_LIMIT_S) as http:
            refused = await http.post(mcp_url, json=INIT, headers=MCP_HEADERS)
    assert refused.status_code == 401
    printed = (tmp_path / "server.log").read_bytes()
    assert b"terminate TLS" in printed.replace(b"Terminate TLS", b"terminate TLS")
    for key in (ALICE, BOB):
        assert key.encode() not in printed
        for path in data.rglob("*"):
            if path.is_file():
                assert key.encode() not in path.read_bytes(), path


@pytest.mark.slow
@pytest.mark.parametrize("args", [[], ["serve"], ["serve", "--transport", "stdio", "--sandbox"]])
def test_team_mode_over_stdio_exits_2_saying_it_needs_http(tmp_path: Path, args: list[str]) -> None:
    env = server_env(tmp_path, SUNO_MCP_KEYS="per-request", SUNO_MCP_TENANT_SECRET=SECRET)
    done = subprocess.run(
        [SCRIPT, *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=CALL_LIMIT_S,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == b""  # stdout is the protocol's: nothing else may appear there
    said = done.stderr.decode()
    assert "SUNO_MCP_KEYS=per-request" in said
    assert "--transport http" in said
