"""Pinned third-party Node tools the tests drive: the MCP Inspector CLI and the MCPB validator.

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
