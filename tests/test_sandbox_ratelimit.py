"""The sandbox's own rate limit over real HTTP, on a fake clock (the bucket refills with it)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from test_sandbox_server import KEY, FakeClock, open_sandbox, submit_music

from suno_mcp.sandbox.state import SandboxConfig


async def test_past_the_burst_api_requests_get_429_with_retry_after_until_the_bucket_refills() -> None:
    clock = FakeClock()
    async with open_sandbox(clock, rate_limit_rps=2.0, rate_burst=3) as (sandbox, client):
        statuses = [(await client.get("/v1/suno/fetch/t")).status_code for _ in range(3)]
        assert statuses == [404, 404, 404]

        limited = await client.get("/v1/suno/fetch/t")
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "1"
        assert limited.json() == {
            "code": "error",
            "data": None,
            "message": "Rate limit exceeded: too many requests",
        }
        clip = await client.get("/v1/suno/feed", params={"ids": "x"})
        assert clip.status_code == 429
        assert clip.json()["error"]["type"] == "rate_limit_error"

        clock.advance(0.5)  # one token back at 2 per second
        assert (await client.get("/v1/suno/feed", params={"ids": "x"})).status_code == 200
        assert (await client.get("/v1/suno/feed", params={"ids": "x"})).status_code == 429

        stats = sandbox.state.stats
        assert stats.rate_limited == {"fetch": 1, "feed": 2}
        assert stats.responses[("fetch", 429)] == 1
        assert "429" not in stats.faults_fired  # not a fault draw: a limit
        served = (await client.get("/_sandbox/stats")).json()
        assert served["rate_limited"] == {"fetch": 1, "feed": 2}


async def test_a_rate_limited_submit_creates_nothing() -> None:
    async with open_sandbox(FakeClock(), rate_limit_rps=1.0) as (sandbox, client):
        await submit_music(client, prompt="first")
        refused = await client.post("/v1/suno/submit/music", json={"prompt": "second"})
        assert refused.status_code == 429
        assert sandbox.state.stats.tasks_created == 1


async def test_media_and_admin_requests_are_never_rate_limited() -> None:
    clock = FakeClock()
    async with open_sandbox(clock, rate_limit_rps=1.0, rate_burst=1) as (sandbox, client):
        task_id = await submit_music(client, prompt="x")  # spends the only token
        clip_id = sandbox.state.tasks[task_id].clip_ids[0]
        for _ in range(5):
            assert (await client.get(f"/sandbox/image/{clip_id}.png")).status_code == 200
            assert (await client.get("/_sandbox/stats")).status_code == 200
            assert (await client.get(f"/_sandbox/tasks/{task_id}/timeline")).status_code == 200
        assert (await client.get(f"/v1/suno/fetch/{task_id}")).status_code == 429


async def test_per_key_limits_give_every_key_its_own_bucket() -> None:
    async with open_sandbox(FakeClock(), rate_limit_rps=1.0, rate_burst=1, rate_limit_per_key=True) as (
        _,
        client,
    ):
        other = {"Authorization": "Bearer another-key"}
        assert (await client.get("/v1/suno/fetch/t")).status_code == 404
        assert (await client.get("/v1/suno/fetch/t", headers=other)).status_code == 404
        assert (await client.get("/v1/suno/fetch/t")).status_code == 429
        assert (await client.get("/v1/suno/fetch/t", headers=other)).status_code == 429


async def test_retry_after_is_the_whole_seconds_until_the_next_token() -> None:
    clock = FakeClock()
    async with open_sandbox(clock, rate_limit_rps=0.1) as (_, client):
        await client.get("/v1/suno/fetch/t")
        assert (await client.get("/v1/suno/fetch/t")).headers["retry-after"] == "10"
        clock.advance(7.5)
        assert (await client.get("/v1/suno/fetch/t")).headers["retry-after"] == "3"


async def test_the_limit_can_be_set_changed_and_lifted_over_http() -> None:
    async with open_sandbox(FakeClock()) as (_, client):
        assert (await client.get("/_sandbox/rate_limit")).json() == {"rate_limit": None}
        assert (await client.get("/v1/suno/fetch/t")).status_code == 404

        set_ = await client.post("/_sandbox/rate_limit", json={"rps": 1, "burst": 1})
        assert set_.json() == {"rate_limit": {"rps": 1.0, "burst": 1, "per_key": False}}
        assert (await client.get("/v1/suno/fetch/t")).status_code == 404
        assert (await client.get("/v1/suno/fetch/t")).status_code == 429

        for bad in (
            {"rps": 0},
            {"rps": "fast"},
            {"rps": 1, "burst": 0},
            {"burst": 3},
            {"rps": 1, "per_key": "yes"},
        ):
            assert (await client.post("/_sandbox/rate_limit", json=bad)).status_code == 400, bad

        lifted = await client.post("/_sandbox/rate_limit", json={"rps": None})
        assert lifted.json() == {"rate_limit": None}
        assert (await client.get("/v1/suno/fetch/t")).status_code == 404


async def test_an_unauthenticated_request_is_refused_before_it_spends_a_token() -> None:
    async with open_sandbox(FakeClock(), rate_limit_rps=1.0, rate_burst=1, api_key=KEY) as (_, client):
        assert (
            await client.get("/v1/suno/fetch/t", headers={"Authorization": "Bearer wrong"})
        ).status_code == 401
        assert (await client.get("/v1/suno/fetch/t")).status_code == 404


def test_the_config_refuses_a_limit_that_cannot_work() -> None:
    for bad in (
        {"rate_limit_rps": 0.0},
        {"rate_limit_rps": -1.0},
        {"rate_burst": 2},
        {"rate_limit_rps": 1.0, "rate_burst": 0},
    ):
        with pytest.raises(ValueError, match="rate_"):
            SandboxConfig(**bad)  # type: ignore[arg-type]


@pytest.mark.slow  # runs the command as a subprocess
def test_the_sandbox_command_refuses_a_zero_rate_limit() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "suno_mcp", "sandbox", "--rate-limit", "0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith(("GPTPROTO_", "SUNO_MCP_"))},
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "rate_limit_rps must be a positive number" in done.stderr
