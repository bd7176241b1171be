"""Operators' metrics: Prometheus text on a listener of its own, and nothing secret in any label.

Driven as an operator sees it: tool calls through an MCP client against the sandbox, then a scrape
of the real loopback listener (SUNO_MCP_METRICS_PORT=0 picks a free port). The counters are the
process's own, so other tests' calls add to them: assertions say "at least" and "present".
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from mcp import Client
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pydantic import SecretStr

from suno_mcp.domain.errors import ConfigurationError, LedgerUnavailableError, RateLimitedError
from suno_mcp.domain.tenancy import tenant_id
from suno_mcp.metrics import REGISTRY
from suno_mcp.sandbox.runner import run_sandbox
from suno_mcp.sandbox.state import SandboxConfig
from suno_mcp.server.app import SunoServer, build_server
from suno_mcp.server.http import build_http_app
from suno_mcp.service.backends import SANDBOX_KEY, SandboxOptions, sandbox_backend, upstream_backend
from suno_mcp.settings import load_settings
from suno_mcp.store.base import LedgerStore
from suno_mcp.store.metered import MeteredLedger
from suno_mcp.upstream.families import TaskApi
from suno_mcp.upstream.retry import RetryPolicy
from suno_mcp.upstream.transport import Upstream
from tests.support.http_app import bearer_client, serving
from tests.support.processes import free_port
from tests.support.stdio_session import StdioSession, server_env

WAIT = 10  # seconds a tool may wait for playable audio; the sandbox at this speed takes well under one
SPEED = 200.0
SECRET = "a-team-secret-for-the-metrics-01"
SERIES = {
    "suno_mcp_tool_calls",
    "suno_mcp_upstream_requests",
    "suno_mcp_upstream_rate_limited",
    "suno_mcp_paid_submits",
    "suno_mcp_tasks_in_flight",
    "suno_mcp_poll_queue_depth",
    "suno_mcp_ledger_call_seconds",
    "suno_mcp_ledger_unavailable",
    "suno_mcp_auto_downloads",
}
# Every endpoint label the upstream may use: path templates, never a path with an id in it.
ENDPOINTS = {
    "/v1/suno/submit/music",
    "/v1/suno/submit/lyrics",
    "/v1/suno/fetch/{id}",
    "/v1/suno/generate/lyrics/{id}",
    "/suno/generate",
    "/suno/generate/concat/v2",
    "/v1/suno/uploads/audio-url",
    "/v1/suno/feed",
}


async def scrape(server: SunoServer) -> tuple[str, list[Sample]]:
    """The text the server's metrics listener serves, and its samples."""
    assert server.metrics_listeners, "no metrics listener is running"
    listener = server.metrics_listeners[0]
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(listener.url)
    assert response.status_code == 200
    text = response.text
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    return text, samples


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(
        s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def label_values(samples: list[Sample]) -> set[str]:
    return {v for s in samples if s.name.startswith("suno_mcp_") for v in s.labels.values()}


@asynccontextmanager
async def sandboxed_server(tmp_path: Path, **overrides: Any) -> AsyncIterator[tuple[SunoServer, Client]]:
    settings = load_settings(environ={}, data_dir=tmp_path, metrics_port=0, **overrides)
    server = build_server(settings, sandbox_backend(SandboxOptions(speed=SPEED, clip_seconds=2.0)))
    async with Client(server) as client:
        yield server, client


async def test_a_tool_call_shows_in_the_metrics_listener_with_no_key_id_or_prompt_in_any_label(
    tmp_path: Path,
) -> None:
    prompt = "a song about the lighthouse keeper " + secrets.token_hex(6)
    async with sandboxed_server(tmp_path) as (server, client):
        made = await client.call_tool(
            "generate_music", {"description": prompt, "wait_seconds": WAIT, "instrumental": True}
        )
        assert not made.is_error, made
        task_id = made.structured_content["task_id"]
        status = await client.call_tool("get_task_status", {"task_id": task_id, "wait_seconds": 0})
        assert not status.is_error, status
        refused = await client.call_tool("get_task_status", {"task_id": "../../etc/passwd"})
        assert refused.is_error
        text, samples = await scrape(server)

    families = {f.name for f in text_string_to_metric_families(text)}
    assert families >= SERIES
    assert "process_resident_memory_bytes" in families
    assert value(samples, "suno_mcp_tool_calls_total", tool="generate_music", outcome="ok") >= 1
    assert value(samples, "suno_mcp_tool_calls_total", tool="get_task_status", outcome="error") >= 1
    assert value(samples, "suno_mcp_paid_submits_total", kind="music", outcome="accepted") >= 1
    assert (
        value(samples, "suno_mcp_upstream_requests_total", endpoint="/v1/suno/submit/music", status="200")
        >= 1
    )
    assert (
        value(samples, "suno_mcp_upstream_requests_total", endpoint="/v1/suno/fetch/{id}", method="GET") >= 1
    )
    assert value(samples, "suno_mcp_ledger_call_seconds_count", operation="reserve") >= 1
    assert value(samples, "suno_mcp_ledger_call_seconds_count", operation="update") >= 1

    endpoints = {s.labels["endpoint"] for s in samples if "endpoint" in s.labels}
    assert endpoints <= ENDPOINTS
    labels = label_values(samples)
    for secret in (prompt, "lighthouse", task_id, SANDBOX_KEY, "passwd"):
        assert not any(secret in label for label in labels), secret


async def test_team_mode_metrics_name_no_tenant_and_no_key(tmp_path: Path) -> None:
    key = "gp-metrics-" + secrets.token_hex(12)
    tenant = tenant_id(SecretStr(SECRET), key)
    async with run_sandbox(SandboxConfig(speed=SPEED, clip_seconds=2.0)) as upstream:
        settings = load_settings(
            environ={},
            data_dir=tmp_path,
            keys="per-request",
            tenant_secret=SECRET,
            base_url=upstream.url,
            metrics_port=0,
        )
        server = build_server(settings, upstream_backend)
        async with serving(build_http_app(server, settings, "127.0.0.1")) as url:
            async with bearer_client(url, key) as client:
                made = await client.call_tool(
                    "generate_lyrics", {"description": "lyrics about a quiet harbour", "wait_seconds": WAIT}
                )
                assert not made.is_error, made
            _, samples = await scrape(server)

    assert value(samples, "suno_mcp_paid_submits_total", kind="lyrics", outcome="accepted") >= 1
    labels = label_values(samples)
    for secret in (key, tenant, tenant.removeprefix("t-")[:12], "harbour"):
        assert not any(secret in label for label in labels), secret


async def test_metrics_are_off_unless_a_port_is_set(tmp_path: Path) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path)
    server = build_server(settings, sandbox_backend(SandboxOptions(speed=SPEED)))
    async with Client(server) as client:
        await client.list_tools()
        assert server.metrics_listeners == []


async def test_the_metrics_listener_binds_loopback_by_default(tmp_path: Path) -> None:
    async with sandboxed_server(tmp_path) as (server, _):
        assert server.metrics_listeners is not None
        assert server.metrics_listeners[0].host == "127.0.0.1"


async def test_a_metrics_port_in_use_is_a_configuration_error_naming_the_setting(tmp_path: Path) -> None:
    async with sandboxed_server(tmp_path) as (server, _):
        assert server.metrics_listeners is not None
        taken = server.metrics_listeners[0].port
        settings = load_settings(environ={}, data_dir=tmp_path / "second", metrics_port=taken)
        with pytest.raises(ConfigurationError, match="SUNO_MCP_METRICS_PORT"):
            async with Client(build_server(settings, sandbox_backend())):
                pass


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class _LedgerDown:
    """A ledger whose database does not answer (the stores raise this for any driver error)."""

    async def ping(self) -> None:
        raise LedgerUnavailableError("the ledger database did not answer")


async def test_a_ledger_that_does_not_answer_is_counted_with_its_latency() -> None:
    unavailable = _count("suno_mcp_ledger_unavailable_total", operation="ping")
    calls = _count("suno_mcp_ledger_call_seconds_count", operation="ping")
    with pytest.raises(LedgerUnavailableError):
        await MeteredLedger(cast(LedgerStore, _LedgerDown())).ping()
    assert _count("suno_mcp_ledger_unavailable_total", operation="ping") == unavailable + 1
    assert _count("suno_mcp_ledger_call_seconds_count", operation="ping") == calls + 1


async def test_a_429_is_counted_under_the_endpoint_template_not_the_task_id() -> None:
    task_id = "task-" + secrets.token_hex(8)
    endpoint = "/v1/suno/fetch/{id}"
    limited = _count("suno_mcp_upstream_rate_limited_total", endpoint=endpoint)
    requests = _count("suno_mcp_upstream_requests_total", endpoint=endpoint, method="GET", status="429")

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"error": "slow down"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        upstream = Upstream(
            http, base_url="https://upstream.test", api_key="k", retry=RetryPolicy(max_attempts=1)
        )
        with pytest.raises(RateLimitedError):
            await TaskApi(upstream).fetch_one(task_id)
    assert _count("suno_mcp_upstream_rate_limited_total", endpoint=endpoint) == limited + 1
    assert (
        _count("suno_mcp_upstream_requests_total", endpoint=endpoint, method="GET", status="429")
        == requests + 1
    )
    assert task_id not in "".join(
        v for family in REGISTRY.collect() for sample in family.samples for v in sample.labels.values()
    )


@pytest.mark.slow
def test_over_stdio_the_metrics_listener_serves_and_stdout_carries_only_the_protocol(tmp_path: Path) -> None:
    port = free_port()
    env = server_env(tmp_path, SUNO_MCP_METRICS_PORT=str(port), SUNO_MCP_LOG_LEVEL="INFO")
    session = StdioSession(["serve", "--sandbox", "--sandbox-speed", "200"], env)
    try:
        session.initialize()
        result = session.call_tool("generate_music", {"description": "a stdio song", "wait_seconds": WAIT})
        assert result["isError"] is False, result
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        session.close()
    samples = [s for family in text_string_to_metric_families(scraped) for s in family.samples]
    assert value(samples, "suno_mcp_tool_calls_total", tool="generate_music", outcome="ok") == 1
    assert value(samples, "suno_mcp_paid_submits_total", kind="music", outcome="accepted") == 1
    assert all(json.loads(line) for line in session.stdout_lines)  # nothing but JSON-RPC on stdout
    assert f"127.0.0.1:{port}/metrics".encode() in b"".join(session.stderr_chunks)  # said on stderr
