"""The sign-in page in a real browser: headless Chromium opens an app's authorization link,
lands on ``/signin``, is refused with a wrong key and sent back to the app with the right one.

The sign-in server runs in this process in front of a sandbox that accepts one key only
(tests/support/oauth_flow.py). The app is a loopback page this test serves: it records the query
the browser brought back. tests/signin_browser/drive.mjs does the browser work (playwright-core,
as the player's browser test does) and reports what it saw; the assertions are here. Screenshots
(light, dark, narrow, the refusal, and the sign-ins page's list) land in tests/artifacts/signin/.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.support.browser import browser_modules, chromium_executable, node_executable
from tests.support.http_app import serving
from tests.support.oauth_flow import GOOD_KEY, pkce, signin_server

pytestmark = [pytest.mark.slow, pytest.mark.network]

DRIVER = Path(__file__).parent / "signin_browser" / "drive.mjs"
ARTIFACTS = Path(__file__).parent / "artifacts" / "signin"
DRIVE_LIMIT_S = 120.0
NARROW_PX = 380
WRONG_KEY = "gp-wrong-" + secrets.token_hex(8)
# WCAG 2.2 AA: 4.5:1 for text, 3:1 for the edge of a control (1.4.3 and 1.4.11).
TEXT_CONTRAST = 4.5
EDGE_CONTRAST = 3.0
REFUSED_LOAD = "the server responded with a status of 401"
CANARY_POLICY = "default-src 'none'; style-src 'none'"


def _app(calls: list[dict[str, list[str]]]) -> Starlette:
    """The app's side: ``/callback`` records what it was called with; ``/canary`` breaks its own
    policy on purpose (see the driver)."""

    async def callback(request: Request) -> HTMLResponse:
        calls.append(parse_qs(request.url.query))
        # An icon of its own, so Chromium asks this test's server for no /favicon.ico.
        page = '<!doctype html><title>Back in the app</title><link rel="icon" href="data:,"><p>Signed in.</p>'
        return HTMLResponse(page)

    async def canary(request: Request) -> HTMLResponse:
        page = "<!doctype html><title>Canary</title><style>body { background: #f00; }</style><p>x</p>"
        return HTMLResponse(page, headers={"Content-Security-Policy": CANARY_POLICY})

    return Starlette(routes=[Route("/callback", callback), Route("/canary", canary)])


async def _run(tmp_path: Path, chromium: str, modules: Path) -> dict[str, Any]:
    calls: list[dict[str, list[str]]] = []
    async with signin_server(tmp_path) as site, serving(_app(calls)) as app_url:
        await site.tokens()  # an app signed in already, for the sign-ins page to list
        redirect = app_url + "/callback"
        registered = await site.register([redirect])
        assert registered.status_code == 201, registered.text
        client_id = registered.json()["client_id"]
        verifier, challenge = pkce()
        state = "st-browser-" + secrets.token_hex(4)
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect,
            "state": state,
            "resource": site.resource,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        options = {
            "nodeModules": str(modules),
            "chromium": chromium,
            "outDir": str(ARTIFACTS),
            "authorizeUrl": f"{site.url}/authorize?{urlencode(query)}",
            "wrongKey": WRONG_KEY,
            "goodKey": GOOD_KEY,
            "callbackOrigin": app_url,
            "canaryUrl": app_url + "/canary",
            "sessionsUrl": site.url + "/signin/sessions",
        }
        with anyio.fail_after(DRIVE_LIMIT_S):
            done = await anyio.run_process([node_executable(), str(DRIVER), json.dumps(options)], check=False)
        out, err = done.stdout.decode(), done.stderr.decode()
        lines = out.strip().splitlines()
        assert lines, f"the driver printed nothing (exit {done.returncode}):\n{err[-4000:]}"
        observed: dict[str, Any] = json.loads(lines[-1])
        assert done.returncode == 0, f"{observed.get('error')}\n{err[-4000:]}"
        # The code the browser brought back is one the app can exchange for tokens.
        code = calls[0]["code"][0] if calls and "code" in calls[0] else ""
        exchanged = await site.exchange(client_id, code, verifier, redirect_uri=redirect)
        observed.update(
            serverOrigin=site.url,
            appOrigin=app_url,
            state=state,
            callbacks=calls,
            exchange=exchanged.status_code,
        )
        return observed


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run of the driver against a sign-in server, and everything it observed."""
    chromium, modules = chromium_executable(), browser_modules()
    tmp_path = tmp_path_factory.mktemp("signin-browser")
    observed: dict[str, Any] = anyio.run(_run, tmp_path, chromium, modules)
    # Beside the screenshots, for a person looking into a failure.
    (ARTIFACTS / "signin-observed.json").write_text(json.dumps(observed, indent=1))
    return observed


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def test_the_right_key_lands_the_browser_at_the_app_with_a_code_and_its_state(seen: dict[str, Any]) -> None:
    landed = urlsplit(seen["views"]["narrow"]["landed"])
    assert f"{landed.scheme}://{landed.netloc}{landed.path}" == seen["appOrigin"] + "/callback"
    (call,) = seen["callbacks"]
    assert call["state"] == [seen["state"]]
    assert len(call["code"]) == 1
    assert set(call) == {"code", "state"}  # nothing else rides along, least of all the key
    assert GOOD_KEY not in json.dumps(seen["views"])
    assert seen["exchange"] == 200


def test_the_app_link_opens_the_sign_in_page_naming_the_app(seen: dict[str, Any]) -> None:
    light = seen["views"]["light"]
    assert light["status"] == 200
    look = light["look"]
    assert urlsplit(look["url"]).path == "/signin"
    assert look["heading"] == "Sign in to Suno music"
    assert look["labelled"] is True
    assert look["error"] is None


def test_a_wrong_key_shows_why_on_the_page_and_the_browser_stays_there(seen: dict[str, Any]) -> None:
    refused = seen["views"]["narrow"]["refused"]
    assert refused["status"] == 401
    look = refused["look"]
    assert urlsplit(look["url"]).path == "/signin"
    assert "did not accept this key" in look["error"]
    assert look["keyValue"] == ""  # the wrong key is not put back into the page
    # The field says it was wrong, and a screen reader reads the reason with it.
    assert look["invalid"] == "true"
    assert any(text and "did not accept this key" in text for text in look["describedBy"])
    assert look["focused"] == "key"
    for view in seen["views"].values():
        for request in view["requests"]:
            assert WRONG_KEY not in request["url"]


def test_light_dark_and_narrow_screenshots_are_saved(seen: dict[str, Any]) -> None:
    names = {Path(p).name for p in seen["screenshots"]}
    for shot in ("light", "dark", "narrow", "narrow-wrong-key", "dark-wrong-key"):
        assert f"signin-{shot}.png" in names
    assert all(Path(p).stat().st_size > 0 for p in seen["screenshots"])


def test_the_page_follows_the_system_scheme(seen: dict[str, Any]) -> None:
    # The inline style applied (its hash is in the policy), in each scheme's colours.
    assert seen["views"]["light"]["look"]["background"] == "rgb(246, 245, 242)"
    assert seen["views"]["dark"]["look"]["background"] == "rgb(20, 20, 20)"


def test_at_380_px_nothing_overflows_and_the_controls_are_in_view(seen: dict[str, Any]) -> None:
    for look in (seen["views"]["narrow"]["look"], seen["views"]["narrow"]["refused"]["look"]):
        assert look["scrollWidth"] <= NARROW_PX
        for control in look["controls"].values():
            assert control["visible"] is True
            assert control["left"] >= 0
            assert control["right"] <= NARROW_PX
            assert control["height"] >= 40  # a thumb's target
            assert control["bottom"] <= 800  # above the fold of the phone's screen


@pytest.mark.parametrize(("scheme", "refusal"), [("light", "narrow"), ("dark", "dark")])
def test_every_text_and_the_field_edge_meet_aa_contrast(
    seen: dict[str, Any], scheme: str, refusal: str
) -> None:
    contrast = {**seen["views"][refusal]["refused"]["look"]["contrast"]}  # with the error shown
    assert "error" in contrast
    for look in (seen["views"][scheme]["look"], seen["views"][refusal]["refused"]["look"]):
        edge = look["contrast"]["fieldEdge"]
        assert edge >= EDGE_CONTRAST, f"the key field's edge is {edge}:1 against the card in {scheme}"
    contrast.pop("fieldEdge")
    low = {name: ratio for name, ratio in contrast.items() if ratio < TEXT_CONTRAST}
    assert not low, f"text below {TEXT_CONTRAST}:1 in {scheme}: {low}"


def test_the_keyboard_reaches_the_field_then_the_button_with_a_visible_focus(seen: dict[str, Any]) -> None:
    order = seen["views"]["light"]["tabOrder"]
    assert [stop["name"] for stop in order[:2]] == ["key", "button"]
    for stop in order[:2]:
        assert stop["outline"].startswith("solid")
    assert seen["views"]["light"]["look"]["focused"] == "key"  # the field is ready for the paste


def test_the_page_loads_nothing_but_itself_and_breaks_no_policy(seen: dict[str, Any]) -> None:
    server = seen["serverOrigin"]
    for name in ("light", "dark", "narrow"):
        view = seen["views"][name]
        # Each visit is documents only: the authorization link, the page, the form's answer, and
        # (for the right key) the app's page. No style sheet, font, image, script or favicon.
        assert {r["type"] for r in view["requests"]} == {"document"}, view["requests"]
        origins = {_origin(r["url"]) for r in view["requests"]}
        assert origins <= {server, seen["appOrigin"]}
        assert not [m for m in view["console"] if "Content Security Policy" in m], view["console"]
        # A refusal is answered 401 on purpose, which Chromium reports as a failed load.
        errors = [m for m in view["console"] if m.startswith("error") and REFUSED_LOAD not in m]
        assert not errors, view["console"]
        assert view["pageErrors"] == []
    paths = [urlsplit(r["url"]).path for r in seen["views"]["light"]["requests"]]
    assert paths == ["/authorize", "/signin"]


def test_the_browser_reports_a_broken_policy_where_the_checks_look(seen: dict[str, Any]) -> None:
    # The control for the test above: a style its policy forbids is refused and said so.
    canary = seen["views"]["canary"]
    assert canary["background"] != "rgb(255, 0, 0)"
    assert [m for m in canary["console"] if "Content Security Policy" in m]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_sign_ins_page_lists_the_app_at_380_px_in_each_scheme(seen: dict[str, Any], scheme: str) -> None:
    view = seen["views"][f"sessions-{scheme}"]
    assert (view["status"], view["listed"]) == (200, 200)
    assert view["list"]["apps"] == ["Test app"]
    assert view["list"]["keyShown"] is False
    look = view["look"]
    assert look["scrollWidth"] <= NARROW_PX
    assert [b["text"] for b in view["list"]["buttons"]] == ["End", "End all"]
    for button in view["list"]["buttons"]:
        assert button["left"] >= 0
        assert button["right"] <= NARROW_PX
        assert button["height"] >= 40
    low = {name: ratio for name, ratio in look["contrast"].items() if ratio < TEXT_CONTRAST}
    assert not low, f"text below {TEXT_CONTRAST}:1 in {scheme}: {low}"
    assert {r["type"] for r in view["requests"]} == {"document"}, view["requests"]
    assert not [m for m in view["console"] if "Content Security Policy" in m], view["console"]
    assert view["pageErrors"] == []
    assert f"signin-sessions-{scheme}.png" in {Path(p).name for p in seen["screenshots"]}
