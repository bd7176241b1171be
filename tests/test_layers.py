"""The house's shape: the layer contracts hold (import-linter, configured in pyproject.toml), a
wrong-way import breaks them, no module runs long, and nothing touches the SDK's private parts."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
PACKAGE = PROJECT / "suno_mcp"
MODULES = sorted(PACKAGE.rglob("*.py"))


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter with the project's contracts over the package found under ``root``."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--config",
            str(PROJECT / "pyproject.toml"),
            "--no-cache",
        ],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_the_package_keeps_its_layer_contracts() -> None:
    run = lint_imports(PROJECT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "wrong_way"),
    [
        ("domain/models.py", "from suno_mcp.store import sqlite"),  # a leaf reaching up
        ("upstream/transport.py", "import mcp.server"),  # the vendor client speaking MCP
        ("server/results.py", "import httpx"),  # the MCP layer speaking HTTP itself
        ("sandbox/state.py", "from suno_mcp.domain import models"),  # the sandbox leaning on us
    ],
)
def test_a_wrong_way_import_breaks_the_layer_contracts(tmp_path: Path, module: str, wrong_way: str) -> None:
    copy = tmp_path / "suno_mcp"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text() + f"\n{wrong_way}  # noqa\n")
    run = lint_imports(tmp_path)
    assert run.returncode != 0
    assert "1 broken" in run.stdout, run.stdout


def test_no_module_outside_the_sandbox_runs_past_600_lines() -> None:
    long = [
        (str(path.relative_to(PACKAGE)), lines)
        for path in MODULES
        if "sandbox" not in path.relative_to(PACKAGE).parts
        and (lines := len(path.read_text().splitlines())) > 600
    ]
    assert long == []


def test_the_package_touches_no_private_attribute_of_the_sdk() -> None:
    private = ("._tool_manager", ".fn_metadata", "__dict__.pop", "._mcp_server", "._session")
    found = [
        (path.name, line.strip())
        for path in MODULES
        for line in path.read_text().splitlines()
        if any(p in line for p in private)
    ]
    assert found == []


def test_no_function_outside_the_sandbox_runs_to_80_lines() -> None:
    long = [
        (path.name, node.name, node.end_lineno - node.lineno + 1)
        for path in MODULES
        if "sandbox" not in path.relative_to(PACKAGE).parts
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 >= 80
    ]
    assert long == []
