"""What gets published: the registry entry, the Claude Desktop bundle, the README line, the wheel.

The version has one source, ``suno_mcp.__version__`` (hatch reads it for the wheel); these tests hold
every other copy of it, and every list of tools, to the package itself.

The wheel test builds one wheel and one fresh virtual environment per run (about 30-60 s, most of it
pip fetching the dependencies). It runs in CI on purpose: it is the only check that the published
artefact, not the editable checkout, starts and serves.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import jsonschema  # type: ignore[import-untyped]  # no stubs; only this test uses it
import pytest
from mcp import Client, StdioServerParameters

from suno_mcp import __version__
from suno_mcp.server.app import build_server
from suno_mcp.server.identity import PNG_URL, REPOSITORY_URL, WEBSITE_URL, icon_bytes
from suno_mcp.service.core import SunoService
from suno_mcp.settings import ENV_FOR_FIELD, Settings, load_settings
from tests.support.node_tools import MCPB, node_tool

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests"
REGISTRY_SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
PUBLISHER_META = "io.modelcontextprotocol.registry/publisher-provided"
BUILD_LIMIT_S = 300.0
INSTALL_LIMIT_S = 600.0
RUN_LIMIT_S = 60.0
# Our distribution's name on PyPI (the bare `suno-mcp` there is an unrelated project); the command
# keeps the name `suno-mcp` and has a second script named like the distribution, for uvx.
DISTRIBUTION = "gptproto-suno-mcp"
WHEEL_PREFIX = DISTRIBUTION.replace("-", "_")

# The parts of the registry's server.json schema (2025-12-11) that an entry with one PyPI package
# uses, transcribed from the registry's published schema so the test needs no network. Stricter
# than the original in one way: unknown properties are refused, so a misspelt field fails here
# instead of being silently ignored by the registry.
_KEY_VALUE_INPUT = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "isRequired": {"type": "boolean"},
        "isSecret": {"type": "boolean"},
        "format": {"enum": ["string", "number", "boolean", "filepath"]},
        "default": {"type": "string"},
        "placeholder": {"type": "string"},
        "choices": {"type": "array", "items": {"type": "string"}},
        "value": {"type": "string"},
        "variables": {"type": "object"},
    },
}
REGISTRY_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["name", "description", "version"],
    "additionalProperties": False,
    "properties": {
        "$schema": {"type": "string"},
        "name": {
            "type": "string",
            "minLength": 3,
            "maxLength": 200,
            "pattern": "^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$",
        },
        "title": {"type": "string", "minLength": 1, "maxLength": 100},
        "description": {"type": "string", "minLength": 1, "maxLength": 100},
        "version": {"type": "string", "maxLength": 255},
        "websiteUrl": {"type": "string"},
        "repository": {"type": "object", "required": ["url", "source"]},
        "icons": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["src"],
                "additionalProperties": False,
                "properties": {
                    "src": {"type": "string", "pattern": "^https://", "maxLength": 255},
                    "mimeType": {
                        "enum": ["image/png", "image/jpeg", "image/jpg", "image/svg+xml", "image/webp"]
                    },
                    "sizes": {"type": "array", "items": {"type": "string", "pattern": "^(\\d+x\\d+|any)$"}},
                    "theme": {"enum": ["light", "dark"]},
                },
            },
        },
        "remotes": {"type": "array"},
        "_meta": {"type": "object"},
        "packages": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["registryType", "transport", "identifier", "version"],
                "additionalProperties": False,
                "properties": {
                    "registryType": {"enum": ["npm", "pypi", "nuget"]},
                    "registryBaseUrl": {"type": "string"},
                    "identifier": {"type": "string", "minLength": 1},
                    "version": {"type": "string", "minLength": 1, "not": {"const": "latest"}},
                    "fileSha256": {"type": "string", "pattern": "^[a-f0-9]{64}$"},
                    "runtimeHint": {"type": "string"},
                    "runtimeArguments": {"type": "array"},
                    "packageArguments": {"type": "array"},
                    "transport": {
                        "type": "object",
                        "required": ["type"],
                        "properties": {"type": {"enum": ["stdio", "streamable-http", "sse"]}},
                    },
                    "environmentVariables": {"type": "array", "items": _KEY_VALUE_INPUT},
                },
            },
        },
    },
}


def _json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((MANIFESTS / name).read_text(encoding="utf-8"))
    return data


@asynccontextmanager
async def _unopenable(settings: Settings) -> AsyncIterator[SunoService]:
    raise AssertionError("listing tools must not open the backend")
    yield  # pragma: no cover


async def _served_tools(tmp_path: Path) -> dict[str, str]:
    server = build_server(load_settings(environ={}, data_dir=tmp_path), _unopenable)
    return {tool.name: tool.description or "" for tool in await server.list_tools()}


def test_the_registry_entry_has_every_field_the_registry_requires() -> None:
    entry = _json("server.json")
    jsonschema.Draft7Validator(REGISTRY_SCHEMA).validate(entry)
    assert entry["$schema"] == REGISTRY_SCHEMA_URL
    assert len(entry["description"]) <= 100


def test_the_registry_entry_and_the_bundle_name_our_repository_and_icon() -> None:
    entry = _json("server.json")
    assert entry["repository"] == {"url": REPOSITORY_URL, "source": "github"}
    assert entry["websiteUrl"] == WEBSITE_URL
    # Each registry icon is the repository's copy of a file the package ships.
    for icon in entry["icons"]:
        name = icon["src"].rsplit("/", 1)[1]
        assert icon["src"] == f"{PNG_URL.rsplit('/', 1)[0]}/{name}"
        assert icon_bytes(name)
    bundle = _json("manifest.json")
    assert bundle["icon"] == "icon.png"
    assert (MANIFESTS / "icon.png").read_bytes().startswith(b"\x89PNG")
    assert bundle["repository"]["url"] == REPOSITORY_URL


def test_the_registry_entry_runs_this_pypi_package_at_this_version_over_stdio() -> None:
    entry = _json("server.json")
    assert entry["version"] == __version__
    (package,) = entry["packages"]
    assert package["registryType"] == "pypi"
    assert package["identifier"] == DISTRIBUTION
    assert package["version"] == __version__
    assert package["runtimeHint"] == "uvx"
    assert package["transport"] == {"type": "stdio"}


def test_the_registry_entry_declares_the_api_key_as_a_required_secret_and_only_variables_we_read() -> None:
    variables = {v["name"]: v for v in _json("server.json")["packages"][0]["environmentVariables"]}
    key = variables["GPTPROTO_API_KEY"]
    assert key["isRequired"] is True
    assert key["isSecret"] is True
    assert all(v["description"] for v in variables.values())
    assert set(variables) <= set(ENV_FOR_FIELD.values())
    assert not any(v.get("isSecret") for name, v in variables.items() if name != "GPTPROTO_API_KEY")


def test_the_bundle_manifest_and_its_pinned_dependency_carry_the_package_version() -> None:
    manifest = _json("manifest.json")
    assert manifest["version"] == __version__
    # Read as text, not TOML: tomllib is 3.11+ and the file is four plain lines.
    bundle_project = (MANIFESTS / "pyproject.toml").read_text(encoding="utf-8")
    assert re.findall(r"^dependencies = \[(.*)\]$", bundle_project, re.MULTILINE) == [
        f'"{DISTRIBUTION}=={__version__}"'
    ]
    assert re.findall(r'^version = "(.*)"$', bundle_project, re.MULTILINE) == [__version__]


def test_the_bundle_runs_its_entry_point_with_uv_and_the_key_from_a_sensitive_required_setting() -> None:
    manifest = _json("manifest.json")
    server = manifest["server"]
    assert server["type"] == "uv"
    assert (MANIFESTS / server["entry_point"]).is_file()
    assert server["entry_point"] in server["mcp_config"]["args"]
    assert server["mcp_config"]["env"] == {"GPTPROTO_API_KEY": "${user_config.gptproto_api_key}"}
    key = manifest["user_config"]["gptproto_api_key"]
    assert key["sensitive"] is True
    assert key["required"] is True
    assert key["type"] == "string"


async def test_both_manifests_list_exactly_the_tools_the_server_serves(tmp_path: Path) -> None:
    served = await _served_tools(tmp_path)
    bundle_tools = _json("manifest.json")["tools"]
    assert [t["name"] for t in bundle_tools] == list(served)
    assert all(t.get("description") for t in bundle_tools)
    registry_tools = _json("server.json")["_meta"][PUBLISHER_META]["tools"]
    assert registry_tools == list(served)


def test_the_readme_carries_the_registry_name_line_that_proves_ownership_on_pypi() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    names = re.findall(r"mcp-name:\s*(\S+)", readme)
    assert names == [_json("server.json")["name"]]


@pytest.mark.network  # the mcpb CLI comes from npm
@pytest.mark.slow  # and runs as a subprocess
def test_the_pinned_mcpb_cli_validates_the_manifest_and_packs_the_bundle(tmp_path: Path) -> None:
    mcpb = node_tool(MCPB)
    validated = subprocess.run(
        [str(mcpb), "validate", str(MANIFESTS / "manifest.json")],
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT_S,
        check=False,
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "validation passes" in validated.stdout
    bundle = tmp_path / "suno-mcp.mcpb"
    packed = subprocess.run(
        [str(mcpb), "pack", str(MANIFESTS), str(bundle)],
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT_S,
        check=False,
    )
    assert packed.returncode == 0, packed.stdout + packed.stderr
    with zipfile.ZipFile(bundle) as archive:
        assert sorted(archive.namelist()) == ["icon.png", "manifest.json", "pyproject.toml", "server/main.py"]


# -- the wheel, installed in a fresh environment --------------------------------------------------


def _clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPTPROTO_", "SUNO_MCP_", "VIRTUAL_ENV"))}
    env["SUNO_MCP_DATA_DIR"] = str(data_dir)
    return env


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the built wheel, the bin directory of a fresh venv with only that wheel and its dependencies)."""
    base = tmp_path_factory.mktemp("wheel")
    env = _clean_env(base / "data")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(base / "dist"), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=BUILD_LIMIT_S,
        check=False,
        env=env,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (base / "dist").glob(f"{WHEEL_PREFIX}-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=BUILD_LIMIT_S, env=env)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    installed = subprocess.run(
        [
            str(bin_dir / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=INSTALL_LIMIT_S,
        check=False,
        env=env,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    return wheel, bin_dir


# The wheel's venv installs the dependencies from the package index and runs the scripts.
@pytest.mark.network
@pytest.mark.slow
def test_the_wheel_holds_the_package_and_its_two_console_scripts_and_nothing_else(
    wheel_venv: tuple[Path, Path],
) -> None:
    wheel, _ = wheel_venv
    assert wheel.name.startswith(f"{WHEEL_PREFIX}-{__version__}-")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
        assert "suno-mcp = suno_mcp.cli:main" in scripts
        assert f"{DISTRIBUTION} = suno_mcp.cli:main" in scripts
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"suno_mcp", f"{WHEEL_PREFIX}-{__version__}.dist-info"}
    assert "suno_mcp/sandbox/runner.py" in names


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize("name", ["suno-mcp", DISTRIBUTION])
def test_each_installed_console_script_reports_its_version_and_help(
    wheel_venv: tuple[Path, Path], tmp_path: Path, name: str
) -> None:
    _, bin_dir = wheel_venv
    script = str(bin_dir / name)
    version = subprocess.run(
        [script, "--version"],
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT_S,
        check=True,
        env=_clean_env(tmp_path),
    )
    assert version.stdout.strip() == f"suno-mcp {__version__}"
    shown = subprocess.run(
        [script, "--help"],
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT_S,
        check=True,
        env=_clean_env(tmp_path),
    )
    for command in ("serve", "sandbox", "demo"):
        assert command in shown.stdout


@pytest.mark.network
@pytest.mark.slow
async def test_the_installed_server_lists_the_same_tools_over_stdio(
    wheel_venv: tuple[Path, Path], tmp_path: Path
) -> None:
    _, bin_dir = wheel_venv
    params = StdioServerParameters(
        command=str(bin_dir / "suno-mcp"), args=[], env=_clean_env(tmp_path / "data")
    )
    with anyio.fail_after(RUN_LIMIT_S):
        async with Client(params) as client:
            listed = await client.list_tools()
    assert [tool.name for tool in listed.tools] == list(await _served_tools(tmp_path))
