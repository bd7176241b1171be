"""Headless Chromium for the tests that look at our pages in a real browser (the in-chat player,
the sign-in page): where Chromium comes from, and the pinned Node packages that drive it.

A test drives the browser from a small Node script (playwright-core, run with the machine's node)
and asserts on the JSON it prints; this module only finds the pieces. Chromium is Debian's
``chromium``, installed with apt-get when missing and we are root; otherwise the test skips.
The npm packages are test-only and installed once into the cache of tests/support/node_tools.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.node_tools import node_packages

# One pinned set for every browser test, so they share one cached install. Versions verified
# together: ext-apps 2.0.4 wants the 2.x TypeScript SDK and zod 4 as peers (the player's host).
BROWSER_PACKAGES = {
    "@modelcontextprotocol/ext-apps": "2.0.4",
    "@modelcontextprotocol/client": "2.4.0",
    "@modelcontextprotocol/core": "2.4.0",
    "zod": "4.6.7",
    "playwright-core": "1.65.1",
    "esbuild": "0.28.2",
}
APT_LIMIT_S = 900.0


def _install_chromium() -> str | None:
    """apt-get install chromium, when we may; None when we cannot."""
    apt = shutil.which("apt-get")
    if apt is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in ([apt, "update", "-q"], [apt, "install", "-y", "-q", "chromium"]):
        done = subprocess.run(args, capture_output=True, text=True, timeout=APT_LIMIT_S, env=env, check=False)
        if done.returncode != 0:
            return None
    return shutil.which("chromium")


def chromium_executable() -> str:
    """The path of Chromium, installing it when we may; skips the test when we cannot."""
    found = shutil.which("chromium") or _install_chromium()
    if found is None:
        pytest.skip(
            "Chromium is not installed and cannot be here (apt-get install -y chromium needs root and apt)"
        )
    return found


def browser_modules() -> Path:
    """The ``node_modules`` holding playwright-core (and the player host's libraries)."""
    return node_packages("player-host", BROWSER_PACKAGES)


def node_executable() -> str:
    """The machine's node (:func:`browser_modules` has skipped the test already when there is none)."""
    node = shutil.which("node")
    assert node is not None
    return node
