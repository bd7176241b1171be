"""A stdio session starts as light as the SDK's own server: until its first tool call, suno-mcp
loads no package a bare MCPServer does not, and none of its own modules that only a tool call (the
tools themselves included), the HTTP transport, PostgreSQL, the metrics listener or the sandbox need.

The list of what a process loaded comes from Python itself (``PYTHONPROFILEIMPORTTIME``: one line on
stderr for every module the first time it is imported), for the installed console script spawned
as a client spawns it, driven through initialize and tools/list. How long that takes is
``bench/startup.py``'s business; this only holds what is loaded.
"""

from __future__ import annotations

import sys

import pytest

from tests.support.stdio_session import StdioSession, server_env

pytestmark = pytest.mark.slow  # spawns the server, and a bare SDK server beside it

BARE_SERVER = '''\
from mcp.server.mcpserver import MCPServer

server = MCPServer("hello")


@server.tool()
def hello(name: str) -> str:
    """Say hello to someone."""
    return f"hello {name}"


server.run("stdio")
'''

# What a tool call, another transport or an operator's setting loads when it is first needed.
NOT_AT_START = (
    "suno_mcp.service.wiring",
    "suno_mcp.service.core",
    "suno_mcp.upstream",
    "suno_mcp.store",
    "suno_mcp.engine",
    "suno_mcp.database",
    "suno_mcp.metrics",
    "suno_mcp.sandbox",
    "suno_mcp.server.http",
    # The tools and the models they are built from: tools/list is answered from the shipped listing.
    "suno_mcp.server.tools",
    "suno_mcp.server.results",
    "suno_mcp.server.schema",
    "suno_mcp.server.shaping",
    "suno_mcp.demo",
    # Registered with the first request that needs them, the player's resource first: the SDK's
    # Apps module with it (initialize advertises the extension without them).
    "suno_mcp.server.resources",
    "suno_mcp.server.prompts",
    "suno_mcp.server.player",
    "mcp.server.apps",
    # What only a running service, team mode or an operator's setting reads: the news items (built
    # by the service), sign-in's vocabulary and the caller token, the metrics listener.
    "suno_mcp.domain.news",
    "suno_mcp.domain.signin",
    "suno_mcp.server.callers",
    "suno_mcp.server.metrics",
    "suno_mcp.server.oauth",
    # A client starts the server with no arguments: nothing to parse.
    "argparse",
    "httpx",
    "psycopg",
    "psycopg_pool",
    "prometheus_client",
    "jsonschema",
)


def _loaded_until_tools_listed(env: dict[str, str], args: list[str], **command: str) -> set[str]:
    session = StdioSession(args, {**env, "PYTHONPROFILEIMPORTTIME": "1"}, **command)
    try:
        assert "result" in session.initialize()
        assert session.request("tools/list")["result"]["tools"]
    finally:
        session.close()
    stderr = b"".join(session.stderr_chunks).decode("utf-8", "replace")
    # "import time:  self [us] | cumulative | imported package", then one line per module.
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and not line.endswith("imported package")
    }


def _package(module: str) -> str:
    return module.split(".", 1)[0]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[set[str], set[str]]:
    """The modules suno-mcp and the bare SDK server loaded from spawn to their tool lists."""
    tmp = tmp_path_factory.mktemp("startup")
    bare = tmp / "bare_server.py"
    bare.write_text(BARE_SERVER)
    env = server_env(tmp / "data")
    ours = _loaded_until_tools_listed(env, [])
    reference = _loaded_until_tools_listed(env, [str(bare)], command=sys.executable)
    assert "suno_mcp.server.app" in ours  # the list is read: the server's own modules are on it
    assert "mcp.server.mcpserver" in reference
    return ours, reference


def test_a_stdio_session_loads_no_package_the_bare_sdk_server_does_not(
    loaded: tuple[set[str], set[str]],
) -> None:
    ours, reference = loaded
    extra = {_package(m) for m in ours} - {_package(m) for m in reference}
    assert extra - {"suno_mcp"} - set(sys.stdlib_module_names) == set()


@pytest.mark.parametrize("module", NOT_AT_START)
def test_a_stdio_session_leaves_what_only_a_call_or_another_mode_needs_unloaded(
    loaded: tuple[set[str], set[str]], module: str
) -> None:
    ours, _ = loaded
    assert not {m for m in ours if m == module or m.startswith(f"{module}.")}
