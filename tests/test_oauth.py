"""Sign-in (``SUNO_MCP_AUTH=oauth``) over real HTTP: the whole flow through the SDK's own OAuth client,
and each rule of the authorization server refusing what it must, one request at a time.

Every server here sits in front of a sandbox that accepts one key only, so a call that succeeds
was paid with the key the person pasted, and a wrong key is wrong upstream, not just to us.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import SecretStr

from suno_mcp.domain.signin import Keys
from suno_mcp.domain.tenancy import tenant_id
from suno_mcp.sandbox.state import account_of
from suno_mcp.server.signin import MAX_FAILURES
from tests.support.http_app import bearer_client
from tests.support.oauth_flow import GOOD_KEY, REDIRECT, SECRET, STEP_LIMIT_S, pkce, signin_server

CALL_LIMIT_S = 60


class MemoryStorage(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class ScriptedPerson:
    """The browser side of the flow: opens the authorization URL, pastes the key on our page, and
    hands the code the page redirects with back to the client."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.result: tuple[str, str | None] | None = None
        self.pages: list[str] = []

    async def redirect(self, authorization_url: str) -> None:
        async with httpx.AsyncClient(timeout=STEP_LIMIT_S) as browser:
            first = await browser.get(authorization_url)
            assert first.status_code == 302, first.text
            page_url = first.headers["location"]
            page = await browser.get(page_url)
            self.pages.append(page.text)
            request_id = re.search(r'name="request" value="([^"]+)"', page.text)
            assert request_id is not None, page.text
            posted = await browser.post(page_url, data={"request": request_id.group(1), "key": self.key})
            assert posted.status_code == 303, posted.text
            query = parse_qs(urlsplit(posted.headers["location"]).query)
            self.result = (query["code"][0], query.get("state", [None])[0])

    async def callback(self) -> AuthorizationCodeResult:
        assert self.result is not None
        code, state = self.result
        return AuthorizationCodeResult(code=code, state=state)


def _text(result: Any) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


async def test_the_sdk_client_signs_in_pays_with_the_pasted_key_refreshes_and_is_refused_after_revoking(
    tmp_path: Any,
) -> None:
    async with signin_server(tmp_path) as site:
        person = ScriptedPerson(GOOD_KEY)
        storage = MemoryStorage()
        oauth = OAuthClientProvider(
            server_url=site.resource,
            client_metadata=OAuthClientMetadata(
                redirect_uris=[REDIRECT],  # type: ignore[list-item]
                client_name="SDK test client",
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="none",
            ),
            storage=storage,
            redirect_handler=person.redirect,
            callback_handler=person.callback,
        )
        with anyio.fail_after(CALL_LIMIT_S):
            async with (
                httpx2.AsyncClient(auth=oauth, timeout=httpx2.Timeout(30.0, read=120.0)) as http,
                Client(streamable_http_client(site.resource, http_client=http)) as client,
            ):
                made = await client.call_tool(
                    "generate_music", {"description": "rain on a tin roof", "wait_seconds": 0}
                )
        assert not made.is_error, _text(made)
        # Discovery, registration, authorize and the page all happened: the page named the client.
        assert "SDK test client" in person.pages[0]
        # The sandbox took the submit from the pasted key's account.
        assert site.sandbox.state.stats.paid_by_account[account_of(GOOD_KEY)] == 1
        tokens, client_info = storage.tokens, storage.client
        assert tokens is not None
        assert tokens.refresh_token
        assert client_info
        assert client_info.client_id

        refreshed = await site.refresh(client_info.client_id, tokens.refresh_token)
        assert refreshed.status_code == 200, refreshed.text
        new = refreshed.json()
        assert new["refresh_token"] != tokens.refresh_token
        async with bearer_client(site.url, new["access_token"]) as again:
            with anyio.fail_after(CALL_LIMIT_S):
                listed = await again.call_tool("list_tasks", {})
        assert not listed.is_error, _text(listed)
        assert "rain on a tin roof" in _text(listed) or listed.structured_content

        revoked = await site.revoke(client_info.client_id, new["refresh_token"])
        assert revoked.status_code == 200, revoked.text
        assert await site.mcp_status(new["access_token"]) == 401
        assert await site.mcp_status(tokens.access_token) == 401
        # No live token of this person is left: the sealed key is gone from the database.
        service = await site.server.service_holder[0].get()  # type: ignore[index]
        tenant = tenant_id(SecretStr(SECRET), GOOD_KEY)
        assert await service.ledger.signin_store().get_key(tenant) is None


async def test_mcp_without_a_token_is_401_naming_the_resource_metadata_which_names_us(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        answer = await site.http.post(site.resource, json={})
        assert answer.status_code == 401
        challenge = answer.headers["www-authenticate"]
        assert challenge.startswith("Bearer ")
        metadata_url = re.search(r'resource_metadata="([^"]+)"', challenge)
        assert metadata_url is not None
        assert metadata_url.group(1) == site.url + "/.well-known/oauth-protected-resource/mcp"
        resource = (await site.http.get(metadata_url.group(1))).json()
        assert resource["resource"] == site.resource
        # The root form serves the same document.
        assert (await site.http.get(site.url + "/.well-known/oauth-protected-resource")).json() == resource
        assert resource["authorization_servers"] == [site.url + "/"] or resource["authorization_servers"] == [
            site.url
        ]
        server = (await site.http.get(site.url + "/.well-known/oauth-authorization-server")).json()
        assert server["issuer"] == site.url  # RFC 8414: compared as a string, so no trailing slash
        assert server["code_challenge_methods_supported"] == ["S256"]
        assert server["registration_endpoint"] == site.url + "/register"
        assert server["revocation_endpoint"] == site.url + "/revoke"


@pytest.mark.parametrize(
    ("challenge", "method"), [(None, None), ("abc" * 15, "plain")], ids=["no-pkce", "plain-pkce"]
)
async def test_authorize_without_s256_pkce_issues_nothing(
    tmp_path: Any, challenge: str | None, method: str | None
) -> None:
    async with signin_server(tmp_path) as site:
        client_id = await site.client()
        extra = {} if method is None else {"code_challenge": challenge or "", "code_challenge_method": method}
        answer = await site.authorize(client_id, None, **extra)
        assert "/signin" not in answer.headers.get("location", "")
        location = parse_qs(urlsplit(answer.headers.get("location", "")).query)
        assert answer.status_code == 400 or location.get("error") == ["invalid_request"], answer.text


async def test_authorize_without_state_issues_nothing(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        client_id = await site.client()
        _, challenge = pkce()
        answer = await site.authorize(client_id, challenge, state="")
        assert "/signin" not in answer.headers.get("location", "")


async def test_a_redirect_uri_that_was_not_registered_is_refused_without_redirecting(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        client_id = await site.client()
        _, challenge = pkce()
        answer = await site.authorize(client_id, challenge, redirect_uri="https://evil.example/cb")
        assert answer.status_code == 400
        assert "location" not in answer.headers


async def test_the_token_exchange_needs_the_same_redirect_uri_and_the_right_verifier(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        client_id = await site.client()
        verifier, challenge = pkce()
        code = await site.code(client_id, challenge)
        other = await site.exchange(client_id, code, verifier, redirect_uri="http://127.0.0.1:9/other")
        # (the SDK's token handler calls this one invalid_request)
        assert other.status_code == 400
        assert other.json()["error"] in ("invalid_request", "invalid_grant")
        wrong = await site.exchange(client_id, code, pkce()[0])
        assert wrong.status_code == 400
        assert wrong.json()["error"] == "invalid_grant"
        assert "access_token" not in other.text + wrong.text


async def test_a_replayed_code_is_refused_and_ends_what_its_first_use_issued(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        client_id = await site.client()
        verifier, challenge = pkce()
        code = await site.code(client_id, challenge)
        first = await site.exchange(client_id, code, verifier)
        assert first.status_code == 200
        access = first.json()["access_token"]
        assert await site.mcp_status(access) == 200
        second = await site.exchange(client_id, code, verifier)
        assert second.status_code == 400
        assert second.json()["error"] == "invalid_grant"
        assert await site.mcp_status(access) == 401


async def test_an_expired_access_token_is_refused_and_a_refresh_gets_a_live_one(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        client_id, tokens = await site.tokens()
        assert tokens["expires_in"] == 3600
        assert await site.mcp_status(tokens["access_token"]) == 200
        site.wall.offset = 3601
        assert await site.mcp_status(tokens["access_token"]) == 401
        refreshed = await site.refresh(client_id, tokens["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
        assert await site.mcp_status(refreshed.json()["access_token"]) == 200


async def test_a_rotated_refresh_token_used_again_revokes_its_whole_family(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        client_id, tokens = await site.tokens()
        rotated = await site.refresh(client_id, tokens["refresh_token"])
        assert rotated.status_code == 200
        newest = rotated.json()
        reused = await site.refresh(client_id, tokens["refresh_token"])
        assert reused.status_code == 400
        assert reused.json()["error"] == "invalid_grant"
        assert await site.mcp_status(newest["access_token"]) == 401
        assert (await site.refresh(client_id, newest["refresh_token"])).status_code == 400


async def test_a_token_issued_for_another_resource_is_refused(tmp_path: Any) -> None:
    # Two deployments on one ledger (one database), at two addresses: a token is bound to the one
    # that issued it.
    async with signin_server(tmp_path) as first:
        _, tokens = await first.tokens()
        assert await first.mcp_status(tokens["access_token"]) == 200
        async with signin_server(tmp_path, upstream=first.sandbox) as second:
            assert second.resource != first.resource
            assert await second.mcp_status(tokens["access_token"]) == 401


async def test_authorize_for_another_resource_is_refused(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        client_id = await site.client()
        _, challenge = pkce()
        answer = await site.authorize(client_id, challenge, resource="https://other.example/mcp")
        assert "/signin" not in answer.headers.get("location", "")
        assert parse_qs(urlsplit(answer.headers["location"]).query)["error"] == ["invalid_target"]


@pytest.mark.parametrize(
    "uri",
    [
        "https://10.0.0.5/cb",
        "http://192.168.1.20/cb",
        "https://169.254.169.254/latest",
        "https://[fd00::1]/cb",
        "http://example.com/cb",
        "javascript:alert(1)",
    ],
)
async def test_registration_refuses_a_redirect_into_a_private_network_or_in_clear(
    tmp_path: Any, uri: str
) -> None:
    async with signin_server(tmp_path) as site:
        answer = await site.register([uri])
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] in ("invalid_redirect_uri", "invalid_client_metadata")


async def test_registration_takes_loopback_https_and_app_scheme_redirects(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        answer = await site.register(
            [
                "http://127.0.0.1:33418/cb",
                "https://claude.ai/api/mcp/auth_callback",
                "cursor://anysphere.cursor-mcp/oauth/callback",
            ]
        )
        assert answer.status_code == 201, answer.text


async def test_a_wrong_key_shows_the_error_on_the_page_and_issues_nothing(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        client_id = await site.client()
        _, challenge = pkce()
        page_url, request_id = await site.signin_page(client_id, challenge)
        answer = await site.post_key(page_url, request_id, "gp-wrong-" + "0" * 16)
        assert answer.status_code == 401
        assert "location" not in answer.headers
        assert "did not accept this key" in answer.text
        assert "gp-wrong-" not in answer.text
        # The same page still works with the right key.
        assert (await site.post_key(page_url, request_id, GOOD_KEY)).status_code == 303


async def test_a_hundred_wrong_keys_from_one_client_are_stopped_before_the_upstream(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        client_id = await site.client()
        _, challenge = pkce()
        page_url, request_id = await site.signin_page(client_id, challenge)
        statuses = [
            (await site.post_key(page_url, request_id, f"gp-guess-{n:04d}")).status_code for n in range(100)
        ]
        assert statuses[:MAX_FAILURES] == [401] * MAX_FAILURES
        assert statuses[MAX_FAILURES:] == [429] * (100 - MAX_FAILURES)
        # Only the first few were asked upstream.
        checks = site.sandbox.state.stats.requests["fetch"]
        assert checks == MAX_FAILURES
        # Even the right key waits now: the limit is on the client, not on a guess.
        assert (await site.post_key(page_url, request_id, GOOD_KEY)).status_code == 429
        # Another client is not held back by this one.
        other = await site.client()
        assert (await site.code(other, pkce()[1])).startswith("smc_")


async def test_with_key_too_a_bearer_gptproto_key_still_works_beside_tokens(tmp_path: Any) -> None:
    async with signin_server(tmp_path, auth=("oauth", "key")) as site:
        _, tokens = await site.tokens()
        assert await site.mcp_status(tokens["access_token"]) == 200
        assert await site.mcp_status(GOOD_KEY) == 200
        # The two ways in are one tenant: a task made one way is listed the other way.
        async with bearer_client(site.url, GOOD_KEY) as by_key:
            with anyio.fail_after(CALL_LIMIT_S):
                made = await by_key.call_tool(
                    "generate_music", {"description": "one tenant", "wait_seconds": 0}
                )
        assert not made.is_error, _text(made)
        async with bearer_client(site.url, tokens["access_token"]) as by_token:
            with anyio.fail_after(CALL_LIMIT_S):
                listed = await by_token.call_tool("list_tasks", {})
        assert "one tenant" in str(listed.structured_content)


async def test_oauth_only_refuses_a_bearer_gptproto_key(tmp_path: Any) -> None:
    async with signin_server(tmp_path, auth=("oauth",)) as site:
        assert await site.mcp_status(GOOD_KEY) == 401


async def test_a_confidential_client_signs_in_with_its_secret_which_the_database_keeps_sealed(
    tmp_path: Any,
) -> None:
    async with signin_server(tmp_path) as site:
        registered = await site.register(token_endpoint_auth_method="client_secret_post")
        assert registered.status_code == 201, registered.text
        client_id, secret = registered.json()["client_id"], registered.json()["client_secret"]
        verifier, challenge = pkce()
        code = await site.code(client_id, challenge)
        wrong = await site.exchange(client_id, code, verifier, client_secret="not-" + secret)
        assert wrong.status_code == 401, wrong.text
        right = await site.exchange(client_id, code, verifier, client_secret=secret)
        assert right.status_code == 200, right.text
        service = await site.server.service_holder[0].get()  # type: ignore[index]
        stored = await service.ledger.signin_store().get_client(client_id)
        assert stored is not None
        assert secret not in stored


async def test_dead_sign_in_rows_are_cleared_out_as_new_sign_ins_come(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        client_id, tokens = await site.tokens()
        assert (await site.revoke(client_id, tokens["refresh_token"])).status_code == 200
        service = await site.server.service_holder[0].get()  # type: ignore[index]
        store = service.ledger.signin_store()
        keys = Keys.from_secret(SecretStr(SECRET))
        assert await store.get_token(keys.hash(tokens["access_token"])) is not None  # revoked, still kept
        site.wall.offset = 31 * 24 * 3600.0
        await site.signin_page(await site.client(), pkce()[1])  # a new sign-in starts
        assert await store.get_token(keys.hash(tokens["access_token"])) is None
        assert await store.get_token(keys.hash(tokens["refresh_token"])) is None


@pytest.mark.slow  # the check's retries back off in real time (~4 s)
async def test_an_upstream_that_fails_the_key_check_says_try_again_on_the_page_and_issues_nothing(
    tmp_path: Any,
) -> None:
    async with signin_server(tmp_path) as site:
        client_id = await site.client()
        _, challenge = pkce()
        page_url, request_id = await site.signin_page(client_id, challenge)
        # Every try of the check's read fails, retries included: the connection dropped mid-answer.
        site.sandbox.state.inject("drop", "fetch", count=50)
        failed = await site.post_key(page_url, request_id, GOOD_KEY)
        assert failed.status_code == 503
        assert "location" not in failed.headers
        assert "could not be reached" in failed.text
        assert GOOD_KEY not in failed.text
        # The same page goes through once the upstream answers again.
        site.sandbox.state.clear_faults()
        assert (await site.post_key(page_url, request_id, GOOD_KEY)).status_code == 303
