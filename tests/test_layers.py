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


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def our_imports(path: Path) -> set[str]:
    """The suno_mcp modules a module imports, at the top or inside a function (both make a cycle)."""
    names: set[str] = set()
    known = {_module_name(p) for p in MODULES}
    tree = ast.parse(path.read_text(), filename=str(path))
    for block in ast.walk(tree):
        # Imports for the type checker alone never run.
        if (
            isinstance(block, ast.If)
            and isinstance(block.test, ast.Name)
            and block.test.id == "TYPE_CHECKING"
        ):
            block.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from suno_mcp.sandbox import answers` names the module answers, not the package.
            submodules = {f"{node.module}.{a.name}" for a in node.names} & known
            names.update(submodules)
            if node.module in known and len(submodules) < len(node.names):
                names.add(node.module)
    names.discard(_module_name(path))
    names.discard("suno_mcp")  # the package itself only holds the version
    return names


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in ``graph`` (module -> modules it imports), or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once explored

    def visit(module: str, trail: list[str]) -> list[str] | None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return [*trail[trail.index(target) :], target]
            if target not in state and (found := visit(target, [*trail, target])):
                return found
        state[module] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_no_two_modules_of_the_package_import_each_other_even_indirectly() -> None:
    assert find_cycle({_module_name(p): our_imports(p) for p in MODULES}) is None


def test_the_cycle_check_finds_an_indirect_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


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
