"""The layering the style guide asks for: no module speaks both MCP and HTTP-client."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "suno_mcp"
MODULES = sorted(PACKAGE.rglob("*.py"))


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_both_mcp_and_httpx(path: Path) -> None:
    roots = imported_roots(path)
    assert not ({"mcp", "mcp_types"} & roots and "httpx" in roots)


def test_the_client_never_imports_mcp_and_the_server_never_imports_httpx() -> None:
    assert not {"mcp", "mcp_types"} & imported_roots(PACKAGE / "client.py")
    assert "httpx" not in imported_roots(PACKAGE / "server.py")


def test_the_sandbox_depends_on_nothing_of_ours_outside_itself() -> None:
    for path in (PACKAGE / "sandbox").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("suno_mcp"):
                assert node.module.startswith("suno_mcp.sandbox"), (path.name, node.module)
        assert not {"mcp", "mcp_types"} & imported_roots(path)
