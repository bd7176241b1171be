"""Every line that tells someone what to install names our distribution, never the PyPI name we do not own.

The PyPI name ``suno-mcp`` belongs to an unrelated project. ``uvx suno-mcp`` in a client configuration
would download that project and hand it the user's API key, so the distribution has a name of its own
(``[project] name`` in pyproject.toml) and these tests read every README, doc and manifest for the ways
they can name a package: ``uvx`` command lines and ``args`` lists, ``pip``/``pipx``/``uv`` installs, the
registry entry's ``identifier`` and the bundle's pinned dependency.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests"
NOT_OURS = "suno-mcp"  # the PyPI name that belongs to someone else
# Packages the docs may tell people to install besides ours: the tool that runs us.
THIRD_PARTY = {"uv"}
# uvx options that take a value (uv tool run's reference); every other option is a bare flag.
UVX_VALUE_OPTIONS = {
    "--from",
    "--with",
    "--with-editable",
    "--with-requirements",
    "--python",
    "-p",
    "--index",
    "--default-index",
    "--index-url",
    "--extra-index-url",
    "--directory",
    "--env-file",
}
PIP_VALUE_OPTIONS = {"-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url"}


def _normalise(name: str) -> str:
    """PEP 503: names that differ only in case or runs of ``-_.`` are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _project_table() -> str:
    # Read as text, not TOML: tomllib is 3.11+ and the project supports 3.10.
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r"^\[project\]\n(.*?)(?=^\[)", text, re.MULTILINE | re.DOTALL)
    assert match is not None
    return match.group(1)


def _distribution() -> str:
    match = re.search(r'^name = "([^"]+)"$', _project_table(), re.MULTILINE)
    assert match is not None
    return match.group(1)


def _scripts() -> dict[str, str]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r"^\[project\.scripts\]\n(.*?)(?=^\[|\Z)", text, re.MULTILINE | re.DOTALL)
    assert match is not None
    return dict(re.findall(r'^([\w.-]+) = "([^"]+)"$', match.group(1), re.MULTILINE))


def _requirement_name(requirement: str) -> str:
    """The distribution a requirement names: ``name[extra]==1.0`` or ``name@1.0`` -> ``name``."""
    return _normalise(re.split(r"[\[=<>!~@; ]", requirement, maxsplit=1)[0])


def _is_path(source: str) -> bool:
    return source.startswith((".", "/", "~")) or "/" in source


def _documents() -> list[Path]:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    manifests = [
        p for p in sorted(MANIFESTS.rglob("*")) if p.is_file() and p.suffix in {".json", ".toml", ".py"}
    ]
    return docs + manifests


def _uvx_problems(args: list[str], where: str) -> list[str]:
    """What is wrong with one uvx invocation (its arguments after ``uvx``): empty when it runs ours."""
    source: str | None = None
    i = 0
    while i < len(args) and args[i].startswith("-"):
        option, _, inline = args[i].partition("=")
        if option in UVX_VALUE_OPTIONS and not inline:
            value = args[i + 1] if i + 1 < len(args) else ""
            i += 2
        else:
            value = inline
            i += 1
        if option == "--from":
            source = value
    if i == len(args):
        return [f"{where}: uvx {' '.join(args)} names no command"]
    command = args[i]
    package = source if source is not None else command
    if source is not None and _is_path(source):
        # From a clone: the package is whatever that directory builds; the command must be ours.
        if _requirement_name(command) not in {_normalise(s) for s in _scripts()}:
            return [f"{where}: uvx --from {source} {command}: {command} is not one of our console scripts"]
        return []
    if _requirement_name(package) != _normalise(_distribution()):
        return [f"{where}: uvx {' '.join(args)} installs {package!r}, not {_distribution()!r}"]
    return []


def _pip_problems(args: list[str], where: str) -> list[str]:
    """What is wrong with one install command (its arguments after ``install``/``add``)."""
    problems = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-"):
            option, _, inline = arg.partition("=")
            i += 2 if option in PIP_VALUE_OPTIONS and not inline else 1
            continue
        i += 1
        if _is_path(arg):
            continue  # a checkout (`-e .`, `'.[dev]'`): builds our pyproject, whatever its name
        if _requirement_name(arg) not in {_normalise(_distribution()), *THIRD_PARTY}:
            problems.append(f"{where}: install of {arg!r}, not {_distribution()!r}")
    return problems


def _shell_words(text: str) -> list[str]:
    """The words of a command written in prose or a code block, up to where the command ends."""
    command = re.split(r"[`\n]|&&|\|\||;|\|", text, maxsplit=1)[0]
    try:
        words = shlex.split(command.replace("\\", " "))
    except ValueError:
        words = command.split()
    return [w for w in words if w not in {"\\"}]


# uvx, uv tool run, pip/pipx/uv pip/uv tool install, uv add: each followed by its arguments.
UVX = re.compile(r"(?<![\w\"-])(?:uvx|uv tool run)[ \t]+(?=\S)(?!`)")
INSTALL = re.compile(
    r"(?<![\w-])(?:(?:uv[ \t]+)?pipx?[ \t]+install|uv[ \t]+tool[ \t]+install|uv[ \t]+add)[ \t]+"
)
ARGS_LIST = re.compile(r'"args":\s*(\[[^\]]*\])')
COMMAND = re.compile(r'"command":\s*"([^"]*)"')


def _install_lines() -> tuple[int, list[str]]:
    """(how many install or run lines were read, what is wrong with them)."""
    count = 0
    problems: list[str] = []
    for path in _documents():
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT)
        for match in UVX.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            count += 1
            problems += _uvx_problems(_shell_words(text[match.end() :]), f"{rel}:{line}")
        for match in INSTALL.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            count += 1
            problems += _pip_problems(_shell_words(text[match.end() :]), f"{rel}:{line}")
        if path.suffix == ".md":
            # Every `"args": [...]` in the docs, in a JSON block or inline prose, is a uvx argument list:
            # the docs name no other launcher.
            commands = set(COMMAND.findall(text))
            assert commands <= {"uvx"}, f"{rel}: a launcher this test does not know: {commands}"
            for match in ARGS_LIST.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                count += 1
                problems += _uvx_problems(json.loads(match.group(1)), f"{rel}:{line}")
    return count, problems


def test_the_distribution_is_not_the_pypi_name_that_belongs_to_another_project() -> None:
    assert _normalise(_distribution()) != NOT_OURS
    assert _distribution() == "gptproto-suno-mcp"


def test_the_command_keeps_its_name_and_a_second_one_matches_the_distribution_for_uvx() -> None:
    scripts = _scripts()
    assert scripts["suno-mcp"] == "suno_mcp.cli:main"
    assert scripts[_distribution()] == "suno_mcp.cli:main"


def test_every_install_and_run_line_in_the_docs_and_manifests_names_our_distribution() -> None:
    count, problems = _install_lines()
    assert problems == []
    assert count >= 20, "the scan found too few lines: the patterns no longer match the docs"


def test_the_registry_entry_and_the_bundle_install_our_distribution() -> None:
    entry = json.loads((MANIFESTS / "server.json").read_text(encoding="utf-8"))
    assert [p["identifier"] for p in entry["packages"] if p["registryType"] == "pypi"] == [_distribution()]
    bundle = (MANIFESTS / "pyproject.toml").read_text(encoding="utf-8")
    (dependencies,) = re.findall(r"^dependencies = \[(.*)\]$", bundle, re.MULTILINE)
    names = [_requirement_name(d.strip().strip('"')) for d in dependencies.split(",")]
    assert names == [_normalise(_distribution())]


def test_the_readme_says_how_to_run_from_a_clone_until_the_package_is_published() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"uvx --from /path/to/clone {_distribution()}" in readme
    assert f"uvx --from . {_distribution()}" in readme


@pytest.mark.parametrize(
    ("line", "wrong"),
    [
        ("uvx suno-mcp", True),
        ("uvx suno-mcp@0.1.0 serve --sandbox", True),
        ("uvx --from suno-mcp gptproto-suno-mcp", True),
        ("uvx --from . somebody-elses-command", True),
        ("pip install suno-mcp", True),
        ("pip install -q 'suno-mcp[dev]'", True),
        ("uv tool install suno-mcp", True),
        ("uvx gptproto-suno-mcp serve --sandbox", False),
        ("uvx --python 3.12 gptproto-suno-mcp", False),
        ("uvx --from /path/to/clone gptproto-suno-mcp", False),
        ("uvx --from . suno-mcp", False),  # our command from our checkout
        ("pip install -q -e '.[dev]'", False),
        ("pipx install uv", False),
    ],
)
def test_the_scan_tells_our_install_lines_from_a_strangers(line: str, wrong: bool) -> None:
    match = UVX.match(line) or INSTALL.match(line)
    assert match is not None
    words = _shell_words(line[match.end() :])
    problems = _uvx_problems(words, "x") if UVX.match(line) else _pip_problems(words, "x")
    assert bool(problems) is wrong
