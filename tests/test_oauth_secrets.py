"""After a whole sign-in, no key, token, code or secret is anywhere in clear: not in the server's log
(at DEBUG), not in an error it answered, not in its metrics, not in any file of its data directory
(the ledger's database included).

The server runs as the real command, with the real environment, in front of a sandbox process that
accepts one key. Everything secret is random per run, so finding it can only mean it leaked.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest

from tests.support.http_app import bearer_client
from tests.support.oauth_flow import OAuthSteps, pkce
from tests.support.processes import free_port, http_server_process, log_file, sandbox_process
from tests.support.stdio_session import server_env

pytestmark = pytest.mark.slow

FLOW_LIMIT_S = 60.0


async def test_a_whole_sign_in_leaves_no_secret_in_logs_errors_metrics_or_the_database(
    tmp_path: Path,
) -> None:
    key = "gp-leak-" + secrets.token_hex(16)
    wrong_key = "gp-wrong-" + secrets.token_hex(16)
    tenant_secret = secrets.token_hex(32)
    auth_secret = secrets.token_hex(32)
    port, metrics_port = free_port(), free_port()
    public = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    env = server_env(
        data,
        SUNO_MCP_KEYS="per-request",
        SUNO_MCP_TENANT_SECRET=tenant_secret,
        SUNO_MCP_AUTH="oauth,key",
        SUNO_MCP_PUBLIC_URL=public,
        SUNO_MCP_AUTH_SECRET=auth_secret,
        SUNO_MCP_LOG_LEVEL="DEBUG",
        SUNO_MCP_METRICS_PORT=str(metrics_port),
    )
    seen: list[str] = []  # every secret the flow handled
    answers: list[str] = []  # every answer the server gave
    with (
        log_file(tmp_path, "sandbox.log") as sandbox_log,
        sandbox_process("--speed", "100", "--api-key", key, env=server_env(tmp_path), log=sandbox_log) as (
            upstream,
            _,
        ),
        log_file(tmp_path, "server.log") as server_log,
        http_server_process({**env, "GPTPROTO_BASE_URL": upstream}, log=server_log, port=port),
    ):
        async with httpx.AsyncClient(timeout=FLOW_LIMIT_S) as http:
            steps = OAuthSteps(public, public, http)
            with anyio.fail_after(FLOW_LIMIT_S):
                confidential = await steps.register(token_endpoint_auth_method="client_secret_post")
                assert confidential.status_code == 201, confidential.text
                seen.append(confidential.json()["client_secret"])
                client_id = await steps.client()
                verifier, challenge = pkce()
                page_url, request_id = await steps.signin_page(client_id, challenge)
                seen.append(verifier)
                wrong = await steps.post_key(page_url, request_id, wrong_key)
                answers.append(wrong.text)
                assert wrong.status_code == 401
                signed_in = await steps.post_key(page_url, request_id, key)
                assert signed_in.status_code == 303
                code = parse_qs(urlsplit(signed_in.headers["location"]).query)["code"][0]
                seen.append(code)
                exchanged = await steps.exchange(client_id, code, verifier)
                tokens = exchanged.json()
                seen += [tokens["access_token"], tokens["refresh_token"]]
                replayed = await steps.exchange(client_id, code, verifier)  # refused; ends the family
                answers.append(replayed.text)
                client_id, tokens = await _signed_in_again(steps, key)
                seen += [tokens["access_token"], tokens["refresh_token"]]
                async with bearer_client(public, tokens["access_token"]) as client:
                    made = await client.call_tool(
                        "generate_music", {"description": "quiet secrets", "wait_seconds": 1}
                    )
                    answers.append(str(made.content) + str(made.structured_content))
                    assert not made.is_error
                refreshed = (await steps.refresh(client_id, tokens["refresh_token"])).json()
                seen += [refreshed["access_token"], refreshed["refresh_token"]]
                reused = await steps.refresh(client_id, tokens["refresh_token"])  # refused; revokes
                answers.append(reused.text)
                answers.append((await steps.revoke(client_id, refreshed["refresh_token"])).text)
                refused = await http.post(
                    steps.mcp, json={}, headers={"Authorization": f"Bearer {refreshed['access_token']}"}
                )
                assert refused.status_code == 401
                answers.append(refused.text + str(refused.headers))
                metrics = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
                assert "suno_mcp" in metrics
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert "sign" in log.lower()  # the log was written, at DEBUG
    secrets_used = {"the gptproto key": key, "the wrong key": wrong_key, "the tenant secret": tenant_secret,
                    "the auth secret": auth_secret, **{f"credential {n}": v for n, v in enumerate(seen)}}  # fmt: skip
    places = {"the server's log": log, "the metrics": metrics, "an answer": "\n".join(answers)}
    for path in data.rglob("*"):
        if path.is_file():
            places[f"the file {path.relative_to(data)}"] = path.read_bytes().decode("latin-1")
    assert any(name.startswith("the file tasks.sqlite3") for name in places), sorted(places)
    # The sign-in page's own id is in the page (its form posts it back), nowhere else.
    secrets_used["the sign-in page id"] = request_id
    places["an answer"] = places["an answer"].replace(request_id, "")
    leaks = [
        f"{what} in {where}"
        for what, value in secrets_used.items()
        for where, text in places.items()
        if value in text
    ]
    assert not leaks, leaks


async def _signed_in_again(steps: OAuthSteps, key: str) -> tuple[str, dict[str, str]]:
    client_id = await steps.client()
    verifier, challenge = pkce()
    page_url, request_id = await steps.signin_page(client_id, challenge)
    signed_in = await steps.post_key(page_url, request_id, key)
    code = re.search(r"code=([^&]+)", signed_in.headers["location"])
    assert code is not None
    answer = await steps.exchange(client_id, code.group(1), verifier)
    assert answer.status_code == 200, answer.text
    return client_id, answer.json()
