"""A real third-party client, the MCP Inspector's CLI, lists and calls every tool over stdio and HTTP.

The inspector's CLI runs one request per invocation. Over stdio that means one server process per
call, so the embedded sandbox (which lives inside the server process) cannot carry a task from one
call to the next: the stdio scenario that chains calls runs each server against one shared
``suno-mcp sandbox`` process instead, on the same data directory. The embedded sandbox over stdio
is covered by the calls that stand alone. Over streamable HTTP one server process answers every
call, so the whole chain runs against ``serve --transport http --sandbox``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from suno_mcp.server.app import build_server
from suno_mcp.server.identity import PNG_URL, WEBSITE_URL
from suno_mcp.settings import load_settings
from tests.support.node_tools import INSPECTOR, node_tool

SCRIPT = str(Path(sys.executable).parent / "suno-mcp")
SPEED = "100"  # the sandbox's 30 s to a preview and 2 min to the final audio become 0.3 s and 1.2 s
CALL_LIMIT_S = 60.0
START_LIMIT_S = 30.0
STOP_LIMIT_S = 15.0
POLL_S = 0.05
WAIT = 10  # wait_seconds for status checks: far longer than any sandbox step at SPEED

Call = Callable[..., dict[str, Any]]

# The inspector comes from npm (cached after the first run) and drives server subprocesses.
pytestmark = [pytest.mark.network, pytest.mark.slow]


@pytest.fixture(scope="module")
def inspector() -> Path:
    return node_tool(INSPECTOR)


def _served_tools(data_dir: Path) -> list[str]:
    @asynccontextmanager
    async def unopenable(settings: Any) -> Any:
        raise AssertionError("listing tools must not open the backend")
        yield  # pragma: no cover

    async def names() -> list[str]:
        server = build_server(load_settings(environ={}, data_dir=data_dir), unopenable)
        return [tool.name for tool in await server.list_tools()]

    return anyio.run(names)


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """This process's environment without any real key or setting, and an inspector catalog in tmp."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPTPROTO_", "SUNO_MCP_"))}
    env["MCP_CATALOG_PATH"] = str(tmp_path / "inspector-catalog.json")
    return env


def _inspect(inspector: Path, target: list[str], env: dict[str, str], *method: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(inspector), "--cli", *target, "--method", *method],
        capture_output=True,
        text=True,
        timeout=CALL_LIMIT_S,
        env=env,
        check=False,
    )
    assert done.returncode == 0, f"inspector {method} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _caller(inspector: Path, target: list[str], env: dict[str, str]) -> Call:
    """``call(tool, key=value, ...)``: one tools/call through the inspector, its result checked for errors."""

    def call(tool: str, **arguments: Any) -> dict[str, Any]:
        pairs = [f"{key}={value}" for key, value in arguments.items()]
        args = ["tools/call", "--tool-name", tool] + [a for pair in pairs for a in ("--tool-arg", pair)]
        result = _inspect(inspector, target, env, *args)
        text = " ".join(block.get("text", "") for block in result.get("content", []))
        assert result.get("isError") is not True, f"{tool}: {text}"
        structured: dict[str, Any] = result["structuredContent"]
        return structured

    return call


def _until_complete(call: Call, task_id: str) -> dict[str, Any]:
    for _ in range(5):
        status = call("get_task_status", task_id=task_id, wait_seconds=WAIT)
        if status["status"] == "complete":
            return status
    raise AssertionError(f"task {task_id} did not complete: {status}")


def _every_tool_in_a_chain(call: Call, data_dir: Path, *, embedded_sandbox: bool) -> None:
    """generate -> status -> extend -> complete song -> download, then lyrics and the ledger."""
    song = call("generate_music", description="inspector test", wait_seconds=5)
    # Only the embedded sandbox is known to be one; a standalone one looks like the vendor.
    assert song["sandbox"] is embedded_sandbox
    assert len(song["clips"]) == 2
    assert song["status"] in ("streaming", "complete")
    done = _until_complete(call, song["task_id"])
    assert all(clip["audio_url"] for clip in done["clips"])

    extension = call("extend_music", clip_id=done["clips"][0]["id"], continue_at=1, wait_seconds=5)
    assert extension["task_id"] != song["task_id"]
    extended = _until_complete(call, extension["task_id"])

    whole = call("get_complete_song", clip_id=extended["clips"][0]["id"], wait_seconds=WAIT)
    assert whole["clips"]
    assert _until_complete(call, whole["task_id"])["clips"][0]["audio_url"]

    saved = call("download_audio", task_id=song["task_id"])
    assert len(saved["files"]) == 2
    for file in saved["files"]:
        path = Path(file["path"])
        assert path.is_relative_to(data_dir)
        assert path.stat().st_size == file["bytes"] > 0

    lyrics = call("generate_lyrics", description="a song about rain", wait_seconds=WAIT)
    assert lyrics["status"] == "complete"
    assert lyrics["lyrics"]

    listed = call("list_tasks")
    assert listed["count"] == 4  # music, extension, complete song, lyrics
    assert {task["task_id"] for task in listed["tasks"]} >= {song["task_id"], extension["task_id"]}


def _wait_for_line(log: Path, marker: str, proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + START_LIMIT_S
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if marker in line:
                return line
        assert proc.poll() is None, f"exited {proc.returncode} before '{marker}':\n{log.read_text()}"
        time.sleep(POLL_S)
    raise AssertionError(f"no '{marker}' within {START_LIMIT_S} s:\n{log.read_text()}")


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_LIMIT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the server exited {proc.returncode}:\n{log.read_text()}"
        with socket.socket() as probe:
            probe.settimeout(1.0)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(POLL_S)
    raise AssertionError(f"nothing listened on port {port} within {START_LIMIT_S} s:\n{log.read_text()}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as sink:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=STOP_LIMIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_LIMIT_S)


def test_the_inspector_lists_and_calls_the_standalone_tools_over_stdio_with_the_embedded_sandbox(
    inspector: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    target = ["-e", f"SUNO_MCP_DATA_DIR={data_dir}", SCRIPT, "serve", "--sandbox", "--sandbox-speed", SPEED]
    env = _clean_env(tmp_path)

    listed = _inspect(inspector, target, env, "tools/list")
    assert [tool["name"] for tool in listed["tools"]] == _served_tools(tmp_path / "listing")
    assert all(tool["inputSchema"]["type"] == "object" for tool in listed["tools"])

    call = _caller(inspector, target, env)
    song = call("generate_music", description="inspector test", wait_seconds=5)
    assert song["sandbox"] is True
    assert [clip["preview_url"] or clip["audio_url"] for clip in song["clips"]] != [None, None]
    lyrics = call("generate_lyrics", description="a song about rain", wait_seconds=WAIT)
    assert lyrics["lyrics"]
    # Each call was its own server process; the ledger in the data directory outlives them all.
    listed_tasks = call("list_tasks")
    assert {t["task_id"] for t in listed_tasks["tasks"]} == {song["task_id"], lyrics["task_id"]}


def test_the_inspector_calls_every_tool_over_stdio_against_a_shared_sandbox(
    inspector: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    env = _clean_env(tmp_path)
    log = tmp_path / "sandbox.log"
    with _process([SCRIPT, "sandbox", "--port", "0", "--speed", SPEED], env, log) as sandbox:
        line = _wait_for_line(log, "listening on", sandbox)
        base_url = line.split("listening on ")[1].split()[0]
        target = [
            *("-e", f"SUNO_MCP_DATA_DIR={data_dir}"),
            *("-e", f"GPTPROTO_BASE_URL={base_url}"),
            *("-e", "GPTPROTO_API_KEY=sandbox-test-key"),  # the sandbox takes any non-empty key
            # The poll schedule follows the sandbox's speed, as serve --sandbox does by itself.
            *("-e", "SUNO_MCP_EXPECTED_PREVIEW_S=0.3"),
            *("-e", "SUNO_MCP_EXPECTED_COMPLETE_S=1.2"),
            SCRIPT,
        ]
        listed = _inspect(inspector, target, env, "tools/list")
        assert [tool["name"] for tool in listed["tools"]] == _served_tools(tmp_path / "listing")
        _every_tool_in_a_chain(_caller(inspector, target, env), data_dir, embedded_sandbox=False)


def test_the_inspector_calls_every_tool_over_streamable_http(inspector: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = _clean_env(tmp_path)
    env["SUNO_MCP_DATA_DIR"] = str(data_dir)
    port = _free_port()
    log = tmp_path / "server.log"
    args = [
        SCRIPT,
        "serve",
        "--transport",
        "http",
        "--sandbox",
        "--sandbox-speed",
        SPEED,
        "--port",
        str(port),
    ]
    with _process(args, env, log) as server:
        _wait_for_port(port, server, log)
        target = [f"http://127.0.0.1:{port}/mcp", "--transport", "http"]
        listed = _inspect(inspector, target, env, "tools/list")
        assert [tool["name"] for tool in listed["tools"]] == _served_tools(tmp_path / "listing")
        _every_tool_in_a_chain(_caller(inspector, target, env), data_dir, embedded_sandbox=True)
    assert server.returncode == 0, log.read_text()


def test_the_inspector_shows_our_icon_and_website_in_the_server_info(inspector: Path, tmp_path: Path) -> None:
    target = ["-e", f"SUNO_MCP_DATA_DIR={tmp_path / 'data'}", SCRIPT, "serve", "--sandbox"]
    shown = _inspect(inspector, target, _clean_env(tmp_path), "initialize")
    info = shown["serverInfo"]
    assert info["websiteUrl"] == WEBSITE_URL
    assert [icon["mimeType"] for icon in info["icons"]] == ["image/svg+xml", "image/png"]
    assert info["icons"][0]["src"].startswith("data:image/svg+xml;base64,")
    assert info["icons"][1]["src"] == PNG_URL
