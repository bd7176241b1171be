"""The sandbox and the streamable HTTP server as processes of their own, on loopback ports.

For tests and benchmarks that need the real deployment shape: the sandbox in one process, our
server in another, talking HTTP. Each start waits (bounded) until the process answers.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

from tests.support.stdio_session import SCRIPT

READY_LIMIT_S = 30.0
_READY_POLL_S = 0.05


def free_port() -> int:
    """A loopback port nothing listens on right now (bound and released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_answering(proc: subprocess.Popen[bytes], url: str, what: str) -> None:
    deadline = time.monotonic() + READY_LIMIT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before answering")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(_READY_POLL_S)  # a bounded start-up poll: the process has no ready signal
    raise RuntimeError(f"{what} did not answer {url} within {READY_LIMIT_S} s")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a spawned process, killing it if it will not go, bounded either way."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def sandbox_process(
    *args: str, env: dict[str, str], log: IO[bytes] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``suno-mcp sandbox --port P ARGS``: yields its base URL and the process."""
    port = free_port()
    proc = subprocess.Popen(
        [SCRIPT, "sandbox", "--port", str(port), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log if log is not None else subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_answering(proc, f"{url}/_sandbox/stats", "the sandbox")
        yield url, proc
    finally:
        stop_process(proc)


@contextlib.contextmanager
def http_server_process(
    env: dict[str, str], *args: str, log: IO[bytes] | None = None, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``suno-mcp serve --transport http --port P ARGS``: yields its MCP URL and the process. ``port``:
    one chosen beforehand, for a server that must be told its own address (sign-in)."""
    port = port or free_port()
    proc = subprocess.Popen(
        [SCRIPT, "serve", "--transport", "http", "--port", str(port), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log if log is not None else subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        # Any HTTP answer (a 4xx to a bare GET included) means it is listening.
        _wait_until_answering(proc, url, "the MCP server")
        yield url, proc
    finally:
        stop_process(proc)


def log_file(directory: Path, name: str) -> IO[bytes]:
    """A file to keep a process's stderr in, for the failure message."""
    return (directory / name).open("wb")
