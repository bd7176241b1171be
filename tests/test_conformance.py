"""The official MCP conformance suite, run against ``serve --transport http --sandbox`` for each
requirement set it knows (2025-11-25 on the stateful wire, 2026-07-28 on the stateless one).

Every scenario a set runs must pass, except those in ``conformance_expected_failures.txt``
(mostly ones that call the suite's own fixture tools, which a music server has no reason to
have); an expected failure that starts passing fails the test too, so the list stays true. The
verdict is read per scenario from the suite's ``checks.json`` files, by the suite's own rule: a
scenario fails when any of its checks is a FAILURE (a WARNING is a SHOULD and does not fail it).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.node_tools import CONFORMANCE, node_runtime, node_tool
from tests.support.processes import http_server_process, log_file
from tests.support.stdio_session import server_env

# The suite comes from npm (cached after the first run) and the server runs as a subprocess.
pytestmark = [pytest.mark.network, pytest.mark.slow]

REQUIREMENT_SETS = ("2025-11-25", "2026-07-28")
EXPECTED_FAILURES = Path(__file__).with_name("conformance_expected_failures.txt")
RUN_LIMIT_S = 300.0  # one requirement set; it takes about 5-10 s against the sandbox
LIST_LIMIT_S = 60.0

# Issue 23's acceptance list: each must be among the scenarios run, so a suite upgrade that
# renames or drops one cannot quietly stop checking it.
ACCEPTANCE = frozenset(
    {
        "completion-complete",
        "logging-set-level",
        "resources-subscribe",
        "resources-unsubscribe",
        "server-initialize",
        "server-session-lifecycle",
        "ping",
        "tools-list",
        "resources-list",
        "prompts-list",
        "server-sse-multiple-streams",
        "dns-rebinding-protection",
        "sep-2164-resource-not-found",
        "caching",
        "http-header-validation",
    }
)

_ENTRY = re.compile(r"^(?:(?P<set>\d{4}-\d\d-\d\d)\s+)?(?P<scenario>[\w/.-]+)(?::(?P<check>[\w/.-]+))?$")
_RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d\d-\d\dT[\d-]+Z$")


@dataclass
class Expected:
    """What one requirement set may fail of one scenario: all of it, or only the named checks."""

    whole: bool = False
    checks: set[str] = field(default_factory=set)
    every_set: bool = False  # from a line without a set: stale only if no set runs the scenario


def read_expected_failures(text: str) -> dict[tuple[str, str], Expected]:
    """The expected-failures file as (requirement set, scenario) -> what may fail there."""
    expected: dict[tuple[str, str], Expected] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line, _, reason = raw.partition("#")
        if not line.strip():
            continue
        entry = _ENTRY.match(line.strip())
        assert entry, f"{EXPECTED_FAILURES.name}:{number}: not '[set] scenario[:check]  # reason': {raw!r}"
        assert reason.strip(), f"{EXPECTED_FAILURES.name}:{number}: give the reason after '#'"
        for requirement_set in [entry["set"]] if entry["set"] else REQUIREMENT_SETS:
            assert requirement_set in REQUIREMENT_SETS, (
                f"{EXPECTED_FAILURES.name}:{number}: no set {requirement_set}"
            )
            what = expected.setdefault((requirement_set, entry["scenario"]), Expected())
            what.every_set = what.every_set or not entry["set"]
            if entry["check"]:
                what.checks.add(entry["check"])
            else:
                what.whole = True
            assert not (what.whole and what.checks), (
                f"{EXPECTED_FAILURES.name}:{number}: {entry['scenario']} is listed whole and by check"
            )
    return expected


def judge(checks: list[dict[str, object]], expected: Expected | None) -> tuple[str, str | None]:
    """One scenario's verdict for the table, and what is wrong (None when nothing is)."""
    failed = {str(c["id"]) for c in checks if c["status"] == "FAILURE"}
    succeeded = {str(c["id"]) for c in checks if c["status"] == "SUCCESS"} - failed
    if expected is None:
        return ("pass", None) if not failed else ("FAIL", f"failed checks {sorted(failed)}")
    if expected.whole:
        return ("expected", None) if failed else ("STALE", "passes now: delete its expected-failures line")
    unexpected, stale = failed - expected.checks, expected.checks & succeeded
    if unexpected:
        return "FAIL", f"failed checks {sorted(unexpected)} (expected only {sorted(expected.checks)})"
    if stale:
        return "STALE", f"checks {sorted(stale)} pass now: delete their expected-failures lines"
    return f"expected ({len(failed)} check{'s' * (len(failed) != 1)})", None


def scenarios_required(suite: list[str], requirement_set: str) -> set[str]:
    """The server scenarios a requirement set runs (its scored ones and those it only reports)."""
    done = subprocess.run(
        [*suite, "list", "--server", "--requirements", requirement_set],
        capture_output=True,
        text=True,
        timeout=LIST_LIMIT_S,
        check=False,
    )
    assert done.returncode == 0, f"conformance list exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    names: set[str] = set()
    section = ""
    for line in done.stdout.splitlines():
        if line and not line[0].isspace():
            section = line
        item = re.match(r"^\s+- (\S+)(?: \[(\w+)\])?$", line)
        if item and (item[2] == "server" or (item[2] is None and section.startswith("Server scenarios"))):
            names.add(item[1])
    assert names, f"no server scenarios in:\n{done.stdout}"
    return names


def run_set(
    suite: list[str], url: str, requirement_set: str, out: Path
) -> dict[str, list[dict[str, object]]]:
    """Run one requirement set against ``url``: each scenario's checks, by scenario name."""
    done = subprocess.run(
        [*suite, "server", "--url", url, "--requirements", requirement_set, "--output-dir", str(out)],
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT_S,
        check=False,
    )
    # Its exit code says only whether a scored scenario failed; the verdict is read per scenario.
    results: dict[str, list[dict[str, object]]] = {}
    for directory in out.iterdir() if out.exists() else ():
        named = _RESULT_DIR.match(directory.name)
        assert named, f"unexpected result directory {directory}"
        results[named["scenario"]] = json.loads((directory / "checks.json").read_text())
    assert results, (
        f"the suite ran no scenario (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return results


@pytest.fixture(scope="module")
def suite() -> list[str]:
    """The command that runs the pinned suite under a Node new enough for it."""
    script = node_tool(CONFORMANCE).resolve()  # the bin link's target: dist/index.js
    return [str(node_runtime(22)), str(script)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Our server over streamable HTTP with its embedded sandbox: its MCP URL and its log."""
    data = tmp_path_factory.mktemp("conformance-server")
    with (
        log_file(data, "server.log") as log,
        http_server_process(server_env(data), "--sandbox", log=log) as (url, _),
    ):
        yield url, data / "server.log"


def test_the_conformance_suite_passes_every_scenario_but_the_expected_failures(
    suite: list[str], server: tuple[str, Path], tmp_path: Path
) -> None:
    server_url, server_log = server
    expected = read_expected_failures(EXPECTED_FAILURES.read_text())
    table: list[tuple[str, str, str]] = []
    problems: list[str] = []
    ran: set[tuple[str, str]] = set()
    for requirement_set in REQUIREMENT_SETS:
        required = scenarios_required(suite, requirement_set)
        results = run_set(suite, server_url, requirement_set, tmp_path / requirement_set)
        problems += [f"{requirement_set} {name}: did not run" for name in sorted(required - set(results))]
        for name, checks in sorted(results.items()):
            ran.add((requirement_set, name))
            verdict, problem = judge(checks, expected.get((requirement_set, name)))
            table.append((requirement_set, name, verdict))
            if problem:
                problems.append(f"{requirement_set} {name}: {problem}")

    problems += [
        f"{requirement_set} {name}: listed as an expected failure but not run there"
        for (requirement_set, name), what in sorted(expected.items())
        if (requirement_set, name) not in ran
        and not (what.every_set and any((other, name) in ran for other in REQUIREMENT_SETS))
    ]
    names_run = {name for _, name in ran}
    problems += [
        f"{name}: in issue 23's acceptance list but not run" for name in sorted(ACCEPTANCE - names_run)
    ]
    report = "\n".join(f"  {s}  {name:48} {verdict}" for s, name, verdict in table)
    print(f"conformance {CONFORMANCE[1]}, per scenario:\n{report}")  # shown with -rP or -s
    assert not problems, (
        "\n".join(problems)
        + f"\n\nall scenarios:\n{report}\n\nthe server's log ends:\n{server_log.read_text()[-4000:]}"
    )
