"""A raw JSON-RPC conversation with a spawned ``suno-mcp`` over stdio.

Tests use it where they need the process itself (to kill it) or every byte it prints.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from queue import Empty, Queue
from typing import Any

SCRIPT = str(Path(sys.executable).parent / "suno-mcp")
READ_LIMIT_S = 30.0


class StdioSession:
    """Starts ``suno-mcp`` (or ``command``, another stdio server) with the given arguments and
    environment and talks JSON-RPC to it."""

    def __init__(self, args: list[str], env: dict[str, str], *, command: str = SCRIPT) -> None:
        self.proc = subprocess.Popen(
            [command, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.stdout_lines: list[bytes] = []
        self.stderr_chunks: list[bytes] = []
        self._messages: Queue[dict[str, Any]] = Queue()
        self._next_id = 1
        self._pumps = [
            threading.Thread(target=self._pump_stdout, daemon=True),
            threading.Thread(target=self._pump_stderr, daemon=True),
        ]
        for pump in self._pumps:
            pump.start()

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout_lines.append(line)
            try:
                self._messages.put(json.loads(line))
            except ValueError:
                self._messages.put({"__not_json__": line.decode("utf-8", "replace")})

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for chunk in iter(lambda: self.proc.stderr.read1(4096) if self.proc.stderr else b"", b""):  # type: ignore[union-attr]
            self.stderr_chunks.append(chunk)

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        notifications: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Send a request and return its response; other messages go to ``notifications``."""
        request_id = self._next_id
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        while True:
            try:
                reply = self._messages.get(timeout=READ_LIMIT_S)
            except Empty:
                raise AssertionError(
                    f"no answer to {method} within {READ_LIMIT_S} s: {self.stderr_text()}"
                ) from None
            if reply.get("id") == request_id and "method" not in reply:
                return reply
            if notifications is not None:
                notifications.append(reply)

    def next_message(self, limit_s: float = READ_LIMIT_S) -> dict[str, Any]:
        """The next message the server sent, waiting at most ``limit_s``."""
        try:
            return self._messages.get(timeout=limit_s)
        except Empty:
            raise AssertionError(
                f"the server said nothing within {limit_s} s: {self.stderr_text()}"
            ) from None

    def initialize(self) -> dict[str, Any]:
        reply = self.request(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "tests", "version": "0"},
            },
        )
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return reply

    def call_tool(
        self, name: str, arguments: dict[str, Any], *, notifications: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "name": name,
            "arguments": arguments,
            "_meta": {"progressToken": f"p{self._next_id}"},
        }
        reply = self.request("tools/call", params, notifications=notifications)
        assert "result" in reply, reply
        result: dict[str, Any] = reply["result"]
        return result

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def close(self) -> None:
        """End the server (closing its stdin asks it to exit) and release every pipe."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for pump in self._pumps:
            pump.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def stderr_text(self) -> str:
        return b"".join(self.stderr_chunks).decode("utf-8", "replace")[-2000:]


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a spawned server: this one, minus any real key, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPTPROTO_", "SUNO_MCP_"))}
    env["SUNO_MCP_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env
