"""Our HTTP app served in-process by uvicorn on a free loopback port, and MCP clients for it.

For tests that need the real HTTP stack (the door's middleware, the SDK's streamable HTTP
transport, SSE) without a subprocess. ``bearer_client`` sends a credential with every request,
as a team-mode client sends its own gptproto key.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import httpx2
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from suno_mcp.sandbox.runner import EmbeddedServer

STARTED_LIMIT_S = 10.0
# What an MCP POST must accept, and a handshake-era version for requests sent without initialize.
MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-06-18",
}
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    },
}


def loopback_socket() -> socket.socket:
    """A socket bound to a free loopback port, for a server that must know its URL before it serves
    (sign-in: the URL is its issuer). Hand it to :func:`serving`."""
    # IPPROTO_TCP named, not left 0: asyncio turns Nagle's algorithm off only on sockets that say they
    # are TCP, and with it on, every answer after the first on a keep-alive connection waited ~40 ms
    # for the client's delayed ACK before its body went out.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    return sock


def socket_url(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@asynccontextmanager
async def serving(app: Any, sock: socket.socket | None = None) -> AsyncIterator[str]:
    """Serve ``app`` (lifespan included) until the block ends; yields its base URL."""
    sock = sock or loopback_socket()
    port = sock.getsockname()[1]
    # Says when it listens, and stops as soon as the block ends (plain uvicorn is polled for the
    # first and takes ~0.15 s to notice and wind down).
    server = EmbeddedServer(uvicorn.Config(app, log_level="warning", lifespan="on"))
    try:
        async with anyio.create_task_group() as tg:
            with anyio.fail_after(STARTED_LIMIT_S):
                await tg.start(server.serve, [sock])
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                server.stop()
    finally:
        sock.close()


@asynccontextmanager
async def bearer_client(url: str, key: str | None, **options: Any) -> AsyncIterator[Client]:
    """An MCP client of ``{url}/mcp`` sending ``Authorization: Bearer <key>`` with every request."""
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    timeout = httpx2.Timeout(30.0, read=120.0)
    async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
        transport = streamable_http_client(f"{url}/mcp", http_client=http)
        async with Client(transport, **options) as client:
            yield client


def tool_call(
    name: str, arguments: dict[str, Any], *, request_id: int = 1, progress: str | None = None
) -> dict[str, Any]:
    """A raw JSON-RPC tools/call message."""
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if progress is not None:
        params["_meta"] = {"progressToken": progress}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def messages(response: httpx.Response) -> list[dict[str, Any]]:
    """The JSON-RPC messages of one POST's answer, in order: a JSON body or an SSE stream."""
    if response.headers.get("content-type", "").startswith("application/json"):
        return [response.json()]
    found = []
    for line in response.text.splitlines():
        if line.startswith("data:") and line[5:].strip():
            found.append(json.loads(line[5:]))
    return found
