"""The in-chat player in a real browser: headless Chromium, the official ext-apps AppBridge as the
host, and our server over streamable HTTP against its embedded sandbox.

tests/player_host/drive.mjs does the browser work (playwright-core) and reports what it saw; the
assertions are here. The driver acts as the model only once (generate_music): every later tool
call comes from the view through the host. Screenshots (light and dark, wide and narrow) land in
tests/artifacts/player/.

Needs node, npm and Chromium: tests/support/browser.py finds them (and installs the pinned npm
packages once, into the same cache as the Inspector).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from suno_mcp.server.player import PLAYER_URI
from suno_mcp.settings import DEFAULT_MEDIA_ORIGINS
from tests.support.browser import browser_modules, chromium_executable, node_executable

pytestmark = [pytest.mark.slow, pytest.mark.network]

HOST_DIR = Path(__file__).parent / "player_host"
ARTIFACTS = Path(__file__).parent / "artifacts" / "player"
SCRIPT = str(Path(sys.executable).parent / "suno-mcp")
SPEED = "10"  # previews after 3 s, final audio after 12 s: time to see both states
DRIVE_LIMIT_S = 240.0
START_LIMIT_S = 30.0
STOP_LIMIT_S = 15.0
POLL_S = 0.05
EXTEND_AT = 12  # the playhead the driver sets before "extend from here"


@pytest.fixture(scope="module")
def chromium() -> str:
    return chromium_executable()


@pytest.fixture(scope="module")
def host_modules() -> Path:
    return browser_modules()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_LIMIT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the server exited {proc.returncode}:\n{log.read_text()}"
        with socket.socket() as probe:
            probe.settimeout(1.0)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(POLL_S)  # polling another process's socket: there is no event to wait on
    raise AssertionError(f"nothing listened on port {port} within {START_LIMIT_S} s:\n{log.read_text()}")


@contextmanager
def _server(tmp_path: Path) -> Iterator[str]:
    """``suno-mcp serve --sandbox --transport http`` on a free loopback port; yields its MCP URL."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPTPROTO_", "SUNO_MCP_"))}
    env["SUNO_MCP_DATA_DIR"] = str(tmp_path / "data")
    log = tmp_path / "server.log"
    args = [
        SCRIPT,
        "serve",
        "--sandbox",
        "--sandbox-speed",
        SPEED,
        "--transport",
        "http",
        "--port",
        str(port),
    ]
    with log.open("wb") as sink:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, env=env)
    try:
        _wait_for_port(port, proc, log)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=STOP_LIMIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_LIMIT_S)


@pytest.fixture(scope="module")
def seen(chromium: str, host_modules: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One full run of the player in the browser, and everything the driver observed."""
    tmp_path = tmp_path_factory.mktemp("player-browser")
    node = node_executable()
    with _server(tmp_path) as url:
        options = {
            "nodeModules": str(host_modules),
            "serverUrl": url,
            "hostDir": str(HOST_DIR),
            "outDir": str(ARTIFACTS),
            "chromium": chromium,
        }
        done = subprocess.run(
            [node, str(HOST_DIR / "drive.mjs"), json.dumps(options)],
            capture_output=True,
            text=True,
            timeout=DRIVE_LIMIT_S,
            check=False,
        )
    lines = done.stdout.strip().splitlines()
    assert lines, f"the driver printed nothing (exit {done.returncode}):\n{done.stderr[-4000:]}"
    observed: dict[str, Any] = json.loads(lines[-1])
    assert done.returncode == 0, f"{observed.get('error')}\n{done.stderr[-4000:]}"
    return observed


def _sandbox_origin(seen: dict[str, Any]) -> str:
    media = urlsplit(seen["streaming"][0]["audioSrc"])
    return f"{media.scheme}://{media.netloc}"


def test_the_host_finds_the_player_through_the_tool_and_reads_its_declared_policy(
    seen: dict[str, Any],
) -> None:
    resource = seen["resource"]
    assert resource["uri"] == PLAYER_URI
    assert resource["mimeType"] == "text/html;profile=mcp-app"
    assert resource["csp"] == {"resourceDomains": [*DEFAULT_MEDIA_ORIGINS, _sandbox_origin(seen)]}


def test_the_view_renders_two_streaming_clips_marked_as_previews(seen: dict[str, Any]) -> None:
    assert seen["first"]["status"] == "streaming"
    assert len(seen["streaming"]) == 2
    for clip in seen["streaming"]:
        assert clip["status"] == "streaming"
        assert clip["previewMarked"] is True
        assert "/sandbox/preview/" in clip["audioSrc"]
        assert clip["title"]


def test_the_view_follows_the_task_to_complete_without_the_model(seen: dict[str, Any]) -> None:
    task_id = seen["first"]["taskId"]
    polls = [c for c in seen["calls"] if c["name"] == "get_task_status"]
    assert polls, "the view never asked for the task's status"
    assert polls[0]["arguments"]["task_id"] == task_id
    # Short waits, well inside a host's timeout; quick checks (0) while a clip has no audio yet.
    assert all(0 <= c["arguments"]["wait_seconds"] <= 10 for c in polls)
    assert any(c["arguments"]["wait_seconds"] > 0 for c in polls)
    for clip in seen["complete"]:
        assert clip["status"] == "complete"
        assert clip["previewMarked"] is False
        assert "/sandbox/audio/" in clip["audioSrc"]
        assert clip["duration"] == "1:00"
        assert clip["coverLoaded"] is True
    assert seen["complete"][0]["live"].startswith("Complete")


def test_the_final_audio_plays_and_its_time_advances(seen: dict[str, Any]) -> None:
    playback = seen["playback"]
    assert playback["paused"] is False
    assert playback["t2"] > playback["t1"] + 0.5
    assert playback["playButton"].startswith("Pause ")  # the button says what it will do, for readers


def test_pick_tells_the_model_which_clip_through_a_model_context_update(seen: dict[str, Any]) -> None:
    updates = [e["params"] for e in seen["hostLog"] if e["kind"] == "update-model-context"]
    picked = seen["pick"]["clipId"]
    assert updates[0]["structuredContent"]["picked_clip_id"] == picked
    assert picked in updates[0]["content"][0]["text"]
    assert seen["pick"]["pressed"] == "true"


def test_extend_from_here_calls_extend_music_at_the_playhead_and_renders_the_new_task(
    seen: dict[str, Any],
) -> None:
    assert seen["extendLabel"] == f"Extend from 0:{EXTEND_AT:02d}"
    (extend,) = [c for c in seen["calls"] if c["name"] == "extend_music"]
    assert extend["arguments"]["continue_at"] == EXTEND_AT
    assert extend["arguments"]["clip_id"] == seen["complete"][0]["id"]
    extended = seen["extended"]
    assert seen["first"]["taskId"] not in extended["taskLabel"]
    assert len(extended["clipIds"]) == 2
    assert not set(extended["clipIds"]) & {clip["id"] for clip in seen["complete"]}
    # The model hears of the extension too, not only the server.
    told = [e["params"] for e in seen["hostLog"] if e["kind"] == "update-model-context"][-1]
    assert told["structuredContent"]["continue_at"] == EXTEND_AT
    # And the view goes on to follow the new task by itself.
    new_task = extended["taskLabel"].removeprefix("task ")
    assert any(
        c["name"] == "get_task_status" and c["arguments"]["task_id"] == new_task for c in seen["calls"]
    )


def test_the_view_loads_nothing_but_the_sandbox_media_and_breaks_no_policy(seen: dict[str, Any]) -> None:
    allowed = {seen["hostOrigin"], _sandbox_origin(seen)}
    origins = {f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in seen["requests"]}
    assert origins <= allowed
    assert not [m for m in seen["console"] if "Content Security Policy" in m or m.startswith("error")]


def test_the_view_follows_the_host_theme_and_fits_a_narrow_column(seen: dict[str, Any]) -> None:
    assert seen["darkBackground"] == "rgb(48, 48, 46)"  # the host's dark --color-background-primary
    assert seen["narrowOverflow"] is False
    names = {Path(p).name for p in seen["screenshots"]}
    for shot in ("light-wide", "dark-wide", "dark-narrow", "light-narrow"):
        assert f"player-extended-{shot}.png" in names
    assert all(Path(p).stat().st_size > 0 for p in seen["screenshots"])


def test_download_and_open_are_asked_of_the_host_with_the_final_file(seen: dict[str, Any]) -> None:
    final = seen["complete"][1]["audioSrc"]
    (download,) = [e["params"] for e in seen["hostLog"] if e["kind"] == "download-file"]
    (link,) = download["contents"]
    assert link["type"] == "resource_link"
    assert link["uri"] == final
    assert link["mimeType"] == "audio/wav"
    assert link["name"].endswith(".wav")
    (opened,) = [e["params"] for e in seen["hostLog"] if e["kind"] == "open-link"]
    assert opened["url"] == final


def test_every_control_has_a_name_and_the_keyboard_reaches_them(seen: dict[str, Any]) -> None:
    assert seen["unnamed"] == []
    assert seen["firstTabStop"] == "button.play"
    assert seen["spaceToggles"] is True
