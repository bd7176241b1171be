"""The sign-ins page ``/signin/sessions`` over real HTTP: a person lists the apps signed in with their
key and ends one or all of them; the page never shows the key, and a proof that was changed or is
too old ends nothing.

Every server here sits in front of a sandbox that accepts one key only (tests/support/oauth_flow.py);
the page itself never asks the upstream.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx
from pydantic import SecretStr

from suno_mcp.domain.signin import PROOF_TTL_S
from suno_mcp.domain.tenancy import tenant_id
from suno_mcp.server.sessions import KEY_FORGOTTEN, NOTHING_FOUND
from suno_mcp.server.signin import MAX_FAILURES
from tests.support.oauth_flow import GOOD_KEY, SECRET, SignInServer, pkce, signin_server

PATH = "/signin/sessions"
END = re.compile(r'name="end" value="([^"]+)">\s*<button class="quiet" type="submit" aria-label="([^"]+)"')


async def _signed_in(site: SignInServer, name: str) -> dict[str, Any]:
    """An app called ``name`` signed in with the good key: its token answer, and its client_id."""
    registered = await site.register(client_name=name)
    assert registered.status_code == 201, registered.text
    client_id = registered.json()["client_id"]
    verifier, challenge = pkce()
    answer = await site.exchange(client_id, await site.code(client_id, challenge), verifier)
    assert answer.status_code == 200, answer.text
    tokens: dict[str, Any] = answer.json()
    return {**tokens, "client_id": client_id}


async def _look_up(site: SignInServer, key: str = GOOD_KEY) -> httpx.Response:
    return await site.http.post(site.url + PATH, data={"key": key})


def _buttons(page: httpx.Response) -> dict[str, str]:
    """The page's End buttons: what each says it ends -> the proof it carries."""
    return {label: proof for proof, label in END.findall(page.text)}


async def _end(site: SignInServer, proof: str) -> httpx.Response:
    return await site.http.post(site.url + PATH, data={"end": proof})


async def _key_kept(site: SignInServer) -> bool:
    service = await site.server.service_holder[0].get()  # type: ignore[index]
    tenant = tenant_id(SecretStr(SECRET), GOOD_KEY)
    return await service.ledger.signin_store().get_key(tenant) is not None


async def test_the_page_asks_for_the_key_under_the_sign_in_pages_policy(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        shown = await site.http.get(site.url + PATH)
        assert shown.status_code == 200
        assert "Your gptproto API key" in shown.text
        assert "Show my sign-ins" in shown.text
        assert "<script" not in shown.text
        policy = shown.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
        assert shown.headers["cache-control"] == "no-store"


async def test_the_sign_in_page_links_to_the_sign_ins_page(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        client_id = await site.client()
        page_url, _ = await site.signin_page(client_id, pkce()[1])
        shown = await site.http.get(page_url)
        assert f'href="{site.url}{PATH}"' in shown.text
        assert "See or end your sign-ins" in shown.text


async def test_two_apps_are_listed_and_ending_one_signs_out_only_that_one(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        first = await _signed_in(site, "Claude at home")
        second = await _signed_in(site, "ChatGPT at work")
        listed = await _look_up(site)
        assert listed.status_code == 200
        assert "Claude at home" in listed.text
        assert "ChatGPT at work" in listed.text
        assert "Signed in 20" in listed.text
        assert "UTC" in listed.text
        buttons = _buttons(listed)
        assert set(buttons) == {
            "End the sign-in of Claude at home",
            "End the sign-in of ChatGPT at work",
            "End all sign-ins",
        }

        ended = await _end(site, buttons["End the sign-in of Claude at home"])
        assert ended.status_code == 200
        assert "Ended: Claude at home" in ended.text
        assert await site.mcp_status(first["access_token"]) == 401
        assert await site.mcp_status(second["access_token"]) == 200
        # What is left is listed again, with buttons that still work.
        assert set(_buttons(ended)) == {"End the sign-in of ChatGPT at work", "End all sign-ins"}
        assert KEY_FORGOTTEN not in ended.text
        assert await _key_kept(site)
        # The ended app's refresh token is dead too: the sign-in is over, not just its hour.
        assert (await site.refresh(first["client_id"], first["refresh_token"])).status_code == 400
        assert (await site.refresh(second["client_id"], second["refresh_token"])).status_code == 200


async def test_end_all_signs_out_every_app_and_the_key_is_no_longer_kept(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        first = await _signed_in(site, "Claude at home")
        second = await _signed_in(site, "ChatGPT at work")
        listed = await _look_up(site)
        ended = await _end(site, _buttons(listed)["End all sign-ins"])
        assert ended.status_code == 200
        assert "Ended: " in ended.text
        assert "Claude at home" in ended.text
        assert "ChatGPT at work" in ended.text
        assert KEY_FORGOTTEN in ended.text
        assert NOTHING_FOUND in ended.text
        assert await site.mcp_status(first["access_token"]) == 401
        assert await site.mcp_status(second["access_token"]) == 401
        assert not await _key_kept(site)


async def test_a_changed_or_expired_proof_is_refused_and_ends_nothing(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        tokens = await _signed_in(site, "Claude at home")
        proof = _buttons(await _look_up(site))["End the sign-in of Claude at home"]
        family, tenant, expiry, signature = proof.split(".")
        flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
        forged = [
            f"{family}.{tenant}.{expiry}.{flipped}",
            f"{family}.{tenant}.{int(expiry) + 3600}.{signature}",  # a later expiry, the old signature
            f"all.{tenant}.{expiry}.{signature}",  # the family's signature over everything
            f"{family}.{tenant}.{expiry}",
            "ë" * 40,
        ]
        for bad in forged:
            refused = await _end(site, bad)
            assert refused.status_code == 400, bad
            assert "nothing was ended" in refused.text
        site.wall.offset += PROOF_TTL_S + 1
        expired = await _end(site, proof)
        assert expired.status_code == 400
        assert "expired" in expired.text
        assert await site.mcp_status(tokens["access_token"]) == 200
        assert await _key_kept(site)


async def test_the_key_never_appears_in_any_page(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        await _signed_in(site, "Claude at home")
        await _signed_in(site, "ChatGPT at work")
        listed = await _look_up(site)
        buttons = _buttons(listed)
        one = await _end(site, next(iter(buttons.values())))
        rest = await _end(site, next(iter(_buttons(one).values())))
        for shown in (await site.http.get(site.url + PATH), listed, one, rest):
            assert GOOD_KEY not in shown.text
            assert GOOD_KEY not in str(shown.headers)


async def test_another_keys_page_lists_nothing_of_the_first(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        await _signed_in(site, "Claude at home")
        other = await _look_up(site, "gp-someone-else-" + secrets.token_hex(8))
        assert other.status_code == 200
        assert NOTHING_FOUND in other.text
        assert "Claude at home" not in other.text
        assert _buttons(other) == {}
        assert "End all" not in other.text


async def test_a_key_that_is_not_one_word_is_refused_without_a_lookup(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        answer = await _look_up(site, "two words")
        assert answer.status_code == 400
        assert "one word, no spaces" in answer.text
        assert "two words" not in answer.text


async def test_lookups_that_find_nothing_are_limited_per_address(tmp_path: Any) -> None:
    async with signin_server(tmp_path) as site:
        await _signed_in(site, "Claude at home")
        statuses = [(await _look_up(site, f"gp-guess-{n:04d}")).status_code for n in range(MAX_FAILURES + 5)]
        assert statuses[:MAX_FAILURES] == [200] * MAX_FAILURES
        assert statuses[MAX_FAILURES:] == [429] * 5
        # Even the right key waits now: the limit is on the address, not on a guess.
        held = await _look_up(site)
        assert held.status_code == 429
        assert "Claude at home" not in held.text
