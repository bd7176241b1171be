"""House rules that are cheaper to check by reading the code than by remembering them.

- Nothing in ``suno_mcp`` reaches into the MCP SDK's internals (its tool manager, a tool's argument
  metadata, an object's ``__dict__``): those change between SDK releases without notice, and the SDK's
  public hooks (an override of ``call_tool``, a model that publishes its own schema) do the same jobs.
- More generally, the package reads no ``_private`` attribute that it does not define itself.
- The tests do not import ``bench/``: benchmarks are run by hand and may change freely; what both need
  lives in ``tests/support``.

The code is read as syntax trees, so a comment or docstring that names one of these is not a match.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "suno_mcp"
TESTS = ROOT / "tests"
# Internals of the SDK (mcp 2.x) that a server could be tempted to touch.
SDK_INTERNALS = {
    "_tool_manager",
    "_resource_manager",
    "_prompt_manager",
    "_mcp_server",
    "_session",
    "fn_metadata",
}


def _trees(root: Path) -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(root.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def _where(path: Path, node: ast.expr) -> str:
    return f"{_shown(path)}:{node.lineno}: {ast.unparse(node)}"


def _sdk_internals(root: Path) -> list[str]:
    """Every use of an SDK internal or of an object's ``__dict__`` under ``root``."""
    return [
        _where(path, node)
        for path, tree in _trees(root)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and (node.attr in SDK_INTERNALS or node.attr == "__dict__")
    ]


def _foreign_private_reads(root: Path) -> list[str]:
    """Every read of a ``_private`` attribute that no code under ``root`` defines."""
    defined: set[str] = set()
    private_reads: list[tuple[Path, ast.Attribute]] = []
    for path, tree in _trees(root):
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                if isinstance(node.ctx, ast.Store):
                    defined.add(node.attr)
                elif node.attr.startswith("_") and not node.attr.endswith("__"):
                    private_reads.append((path, node))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                defined.add(node.target.id)  # dataclass fields and annotated class attributes
            elif isinstance(node, ast.Assign):
                defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
    # A private name we never define belongs to someone else's object: the SDK's, httpx's, ...
    return [_where(path, node) for path, node in private_reads if node.attr not in defined]


def _bench_imports(root: Path) -> list[str]:
    """Every import of ``bench`` (or a module in it) under ``root``."""
    found = []
    for path, tree in _trees(root):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            found += [f"{_shown(path)}:{node.lineno}: {m}" for m in modules if m.split(".")[0] == "bench"]
    return found


def test_the_package_touches_no_sdk_internals_and_no_objects_dict() -> None:
    assert _sdk_internals(PACKAGE) == []


def test_the_package_reads_no_private_attribute_that_it_does_not_define_itself() -> None:
    assert _foreign_private_reads(PACKAGE) == []


def test_no_test_module_imports_the_benchmarks() -> None:
    assert _bench_imports(TESTS) == []


def _found(findings: list[str]) -> list[str]:
    return sorted(line.split(": ", 1)[1] for line in findings)


def test_each_check_finds_what_it_looks_for_and_passes_code_without_it(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(
        "from bench.soak import run_soak\n"
        "import bench\n"
        "def hook(server):\n"
        "    server._tool_manager.get_tool('x').fn_metadata\n"
        "    server.__dict__.pop('output_schema', None)\n",
        encoding="utf-8",
    )
    (tmp_path / "good.py").write_text(
        '"""Mentions server._tool_manager and bench.soak only in prose."""\n'
        "class Own:\n"
        "    def __init__(self):\n"
        "        self._state = 1\n"
        "    def read(self):\n"
        "        return self._state\n",
        encoding="utf-8",
    )
    internals = _sdk_internals(tmp_path)
    assert _found(internals) == [
        "server.__dict__",
        "server._tool_manager",
        "server._tool_manager.get_tool('x').fn_metadata",
    ]
    assert all("bad.py" in line for line in internals)
    assert _found(_foreign_private_reads(tmp_path)) == ["server._tool_manager"]
    assert _found(_bench_imports(tmp_path)) == ["bench", "bench.soak"]
