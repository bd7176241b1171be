"""The HTTP door under abuse: half-open connections time out and cannot crowd out a real client,
slow request heads are cut off, and tool calls past the cap are refused with 503 and Retry-After."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from suno_mcp.server.http import CallLimitMiddleware
from tests.support.http_app import INIT
from tests.support.processes import http_server_process, stop_process
from tests.support.stdio_session import server_env

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
HALF_OPEN = 1000
HEADER_TIMEOUT_S = 2


async def test_calls_past_the_cap_are_refused_with_503_and_retry_after() -> None:
    entered, release = anyio.Event(), anyio.Event()

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        entered.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = CallLimitMiddleware(slow_app, max_calls=1)
    transport = httpx.ASGITransport(app=app)
    statuses: list[int] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:

        async def first() -> None:
            statuses.append((await http.post("/mcp", json=INIT)).status_code)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(first)
                await entered.wait()
                busy = await http.post("/mcp", json=INIT)
                release.set()
            after = await http.post("/mcp", json=INIT)
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "1"
    assert "retry" in busy.json()["message"]
    assert statuses == [200]
    assert after.status_code == 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    # The test holds ~1,000 sockets itself: raise its own soft limit (the child inherits it too).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = HALF_OPEN + 512
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below the {wanted} descriptors this test needs")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    port = _free_port()
    env = {
        **os.environ,
        "SUNO_MCP_DATA_DIR": str(tmp_path),
        "SUNO_MCP_HTTP_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "SUNO_MCP_HTTP_MAX_CONNECTIONS": "256",
    }
    env.pop("GPTPROTO_API_KEY", None)
    env.pop("SUNO_MCP_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "suno_mcp", "serve", "--sandbox", "--transport", "http", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def _initialize(http: httpx.AsyncClient, url: str) -> httpx.Response:
    return await http.post(f"{url}/mcp", json=INIT, headers=HEADERS)


async def _until_ready(proc: subprocess.Popen[bytes], url: str) -> None:
    """Bounded: the server answers an initialize within 60 s of starting, or the test fails."""
    async with httpx.AsyncClient(timeout=10) as http:
        with anyio.fail_after(60):
            while True:
                try:
                    if (await _initialize(http, url)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert proc.poll() is None, "the server exited before it answered"
                await anyio.sleep(0.1)


def _open_half_open(port: int) -> list[socket.socket]:
    # Half send nothing, half start a request head and never finish it.
    sockets = []
    for i in range(HALF_OPEN):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if i % 2:
            sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        sockets.append(sock)
    return sockets


@pytest.mark.slow
@pytest.mark.timed  # served within 5 s beside a thousand half-open connections
async def test_a_thousand_half_open_connections_neither_lock_out_a_client_nor_leak_descriptors(
    http_server: tuple[subprocess.Popen[bytes], str],
) -> None:
    proc, url = http_server
    port = int(url.rsplit(":", 1)[1])
    await _until_ready(proc, url)
    # The baseline is taken with no client connection open (our pooled one is closed above).
    baseline = _open_fds(proc.pid)

    sockets = await anyio.to_thread.run_sync(_open_half_open, port)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            started = time.perf_counter()
            answer = await _initialize(http, url)
            served_in = time.perf_counter() - started
        # The server accepts in order: having answered us, it has taken in (and capped) all the rest.
        crowded = _open_fds(proc.pid)
        assert answer.status_code == 200
        print(f"\ninitialize served in {served_in * 1000:.0f} ms beside {HALF_OPEN} half-open connections")
        print(f"server descriptors: baseline {baseline}, after the half-open ones {crowded}")
        assert served_in < 5.0

        # Every half-open connection is closed once its head deadline passes: the server's
        # descriptors come back to where they were.
        with anyio.fail_after(HEADER_TIMEOUT_S + 30):
            while _open_fds(proc.pid) > baseline + 5:  # noqa: ASYNC110 (another process: no event to wait on)
                await anyio.sleep(0.2)
        print(f"server descriptors after the deadline: {_open_fds(proc.pid)}")
    finally:
        for sock in sockets:
            sock.close()
    # At most the cap was ever open at once, not a thousand.
    assert crowded <= baseline + 256 + 16


@pytest.mark.slow
@pytest.mark.timed  # cut off within a few seconds of its deadline
async def test_a_request_head_sent_one_byte_at_a_time_is_cut_off_at_the_deadline(
    http_server: tuple[subprocess.Popen[bytes], str],
) -> None:
    proc, url = http_server
    host, port = "127.0.0.1", int(url.rsplit(":", 1)[1])
    await _until_ready(proc, url)
    head = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Padding: " + b"a" * 200
    started = time.perf_counter()
    closed = False
    async with await anyio.connect_tcp(host, port) as stream:
        with anyio.fail_after(HEADER_TIMEOUT_S + 10):
            for byte in head:
                try:
                    await stream.send(bytes([byte]))
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    closed = True
                    break
                # The attacker's pace: one byte every 0.2 s keeps any idle timer from firing.
                with anyio.move_on_after(0.2):
                    try:
                        await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        closed = True
                        break
    took = time.perf_counter() - started
    assert closed, "the server kept a trickling request head open"
    assert HEADER_TIMEOUT_S - 0.5 <= took < HEADER_TIMEOUT_S + 5


BODY_TIMEOUT_S = 2
BODY_LENGTH = 1000


async def _post_initialize(url: str) -> int:
    async with httpx.AsyncClient(timeout=10) as http:
        return (await _initialize(http, url)).status_code


@pytest.mark.slow
async def test_a_request_body_sent_one_byte_at_a_time_gets_408_and_gives_back_its_call_slot(
    tmp_path: Path,
) -> None:
    env = server_env(
        tmp_path,
        SUNO_MCP_HTTP_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
        SUNO_MCP_HTTP_MAX_CALLS="1",  # the trickler's call holds the only slot while its body arrives
    )
    with http_server_process(env) as (mcp_url, _):
        url = mcp_url.removesuffix("/mcp")
        host, port = "127.0.0.1", int(url.rsplit(":", 1)[1])
        head = (
            f"POST /mcp HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json, text/event-stream\r\nContent-Length: {BODY_LENGTH}\r\n\r\n"
        ).encode()
        answer = b""
        async with await anyio.connect_tcp(host, port) as stream:
            await stream.send(head + b"{")
            # The head is in, so the call has its slot: another call is refused until the body arrives.
            with anyio.fail_after(30):
                while await _post_initialize(url) != 503:
                    pass
            with anyio.fail_after(BODY_TIMEOUT_S + 30):
                for _ in range(BODY_LENGTH - 1):
                    try:
                        await stream.send(b" ")
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        break
                    # The attacker's pace: one byte every 0.2 s; whatever the server says is kept.
                    with anyio.move_on_after(0.2):
                        try:
                            answer += await stream.receive()
                        except (anyio.EndOfStream, anyio.BrokenResourceError):
                            break
                else:
                    pytest.fail("the server kept reading a trickling request body to its end")
                while True:  # the rest of the answer, until the server closes the connection
                    try:
                        answer += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert b"did not arrive within" in answer
        # The slot is free again: the next call is served.
        with anyio.fail_after(30):
            while (status := await _post_initialize(url)) == 503:
                pass
        assert status == 200
