"""Sign-in on replicas sharing one PostgreSQL ledger: any replica honours any token, a restart signs
nobody out, and while the database is down a person is told to try again (503), not signed out or
sent a bare 500; once it is back, the same tokens work.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from suno_mcp.sandbox.runner import run_sandbox
from suno_mcp.sandbox.state import SandboxConfig
from tests.support.oauth_flow import GOOD_KEY, pkce, signin_server
from tests.support.postgres import PostgresServer, fresh_database, stopped

# Stopping and restarting the database with pg_ctl.
pytestmark = pytest.mark.slow

# The ledger's own bound on a call to a database that is not there (suno_mcp.database.Limits), and then some.
OUTAGE_ANSWER_S = 40.0


async def test_replicas_share_sign_ins_survive_a_restart_and_say_try_again_while_the_database_is_down(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    with fresh_database(postgres_server) as database:
        async with run_sandbox(SandboxConfig(speed=100, api_key=GOOD_KEY)) as sandbox:
            async with signin_server(tmp_path / "a", database_url=database, upstream=sandbox) as first:
                client_id = await first.client()
                verifier, challenge = pkce()
                code = await first.code(client_id, challenge)
                async with signin_server(
                    tmp_path / "b",
                    database_url=database,
                    upstream=sandbox,
                    public_url=first.settings.public_url,
                ) as second:
                    # A code issued on one replica is redeemed on another, and its token works on both.
                    answer = await second.exchange(client_id, code, verifier)
                    assert answer.status_code == 200, answer.text
                    tokens = answer.json()
                    assert await first.mcp_status(tokens["access_token"]) == 200
                    assert await second.mcp_status(tokens["access_token"]) == 200
                    refreshed = await first.refresh(client_id, tokens["refresh_token"])
                    assert refreshed.status_code == 200, refreshed.text
                    tokens = refreshed.json()
                public_url = first.settings.public_url

            # Every replica gone and a new one started: nobody is signed out.
            async with signin_server(
                tmp_path / "c", database_url=database, upstream=sandbox, public_url=public_url
            ) as restarted:
                assert await restarted.mcp_status(tokens["access_token"]) == 200
                other_client = await restarted.client()
                _, other_challenge = pkce()
                page_url, request_id = await restarted.signin_page(other_client, other_challenge)

                with stopped(postgres_server), anyio.fail_after(OUTAGE_ANSWER_S * 3):
                    # What a client and a person see while the database is down.
                    checked = await restarted.http.post(
                        restarted.mcp, json={}, headers={"Authorization": f"Bearer {tokens['access_token']}"}
                    )
                    assert checked.status_code == 503, checked.text
                    assert checked.headers["retry-after"]
                    assert checked.json()["error"] == "temporarily_unavailable"
                    page = await restarted.post_key(page_url, request_id, GOOD_KEY)
                    assert page.status_code == 503
                    assert "cannot reach its database" in page.text
                    assert "location" not in page.headers
                    renewed = await restarted.refresh(client_id, tokens["refresh_token"])
                    assert renewed.status_code == 503, renewed.text
                    for answer in (checked, page, renewed):
                        assert GOOD_KEY not in answer.text
                        assert "postgresql://" not in answer.text

                # Back: the very next request is served with the same token, the refresh token was not
                # spent by the failed try, and the sign-in page that failed goes through now.
                with anyio.fail_after(OUTAGE_ANSWER_S):
                    assert await restarted.mcp_status(tokens["access_token"]) == 200
                again = await restarted.refresh(client_id, tokens["refresh_token"])
                assert again.status_code == 200, again.text
                final = await restarted.post_key(page_url, request_id, GOOD_KEY)
                assert final.status_code == 303, final.text
