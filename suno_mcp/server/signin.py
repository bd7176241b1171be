"""The sign-in page ``/signin``: where ``/authorize`` sends the person to paste their gptproto key once.

``GET /signin?request=...`` shows which app asks and a field for the key. ``POST /signin`` checks the
key with one free upstream request (:mod:`suno_mcp.upstream.keys`) before anything is issued: a
wrong key, or an upstream that cannot be asked now, shows the reason on the page (never a redirect
carrying an error); a good one is sealed and the browser is sent on to the app with a code.

Failed keys are counted per app (client): past :data:`MAX_FAILURES` within :data:`FAILURE_WINDOW_S`,
the page refuses without asking the upstream, so nobody can use this server to try keys in bulk.
The count is kept per replica, in memory.

The page is plain HTML and CSS from this package (no script, no remote asset), follows the
system's light or dark scheme, fits a 380 px screen, and may not be framed by another site.
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import re
import time
from collections.abc import Awaitable, Callable
from importlib.resources import files
from string import Template
from typing import Any

from mcp.server.auth.provider import construct_redirect_uri
from mcp.server.mcpserver import MCPServer
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from suno_mcp.domain.expiry import IdleMap
from suno_mcp.server.oauth import SESSIONS_PATH, SIGNIN_PATH, SunoOAuthProvider, client_label
from suno_mcp.upstream.keys import KeyVerdict

log = logging.getLogger(__name__)

MAX_FAILURES = 10
FAILURE_WINDOW_S = 900.0
# A gptproto key is a short printable token; anything longer is not one (and is not sent upstream).
KEY_MAX_CHARS = 512

_TEMPLATE = Template(files("suno_mcp.server").joinpath("signin.html").read_text(encoding="utf-8"))
_STYLE = re.search(r"<style>(.*?)</style>", _TEMPLATE.template, re.S)
_STYLE_HASH = base64.b64encode(hashlib.sha256((_STYLE.group(1) if _STYLE else "").encode()).digest()).decode()
# No script, no remote anything, no framing; the one inline style is allowed by its hash.
_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def page(heading: str, body: str, status: int = 200) -> HTMLResponse:
    """The page with ``body`` (already escaped HTML) under ``heading`` (text)."""
    text = _TEMPLATE.substitute(heading=html.escape(heading), body=body)
    return HTMLResponse(text, status_code=status, headers=_HEADERS)


def _form(request_id: str, app: str, redirect_host: str, error: str | None, sessions_url: str) -> str:
    alert = "" if error is None else f'<p class="error" id="error" role="alert">{html.escape(error)}</p>\n'
    # After a refusal the field says so, and a screen reader reads the reason with it.
    invalid = "" if error is None else ' aria-invalid="true"'
    described = "about" if error is None else "error about"
    return f"""{alert}<p><strong>{html.escape(app)}</strong> wants to make music with your gptproto account.
After you sign in you go back to it at <strong>{html.escape(redirect_host)}</strong>.</p>
<form method="post" action="">
<input type="hidden" name="request" value="{html.escape(request_id)}">
<label for="key">Your gptproto API key</label>
<input id="key" name="key" type="password" autocomplete="off" spellcheck="false" required autofocus
 maxlength="{KEY_MAX_CHARS}" aria-describedby="{described}"{invalid}>
<button type="submit">Sign in</button>
</form>
<p class="small" id="about">The key is checked with gptproto once, then kept encrypted on this server.
The app gets a token that you can revoke, never the key. Your key is on your gptproto dashboard.
<a href="{html.escape(sessions_url)}">See or end your sign-ins</a>.</p>"""


class Failures:
    """Recent failures per source (an app, an address): at most :data:`MAX_FAILURES` within
    :data:`FAILURE_WINDOW_S`. In memory, per replica; a source quiet for the window is dropped."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._seen: IdleMap[str, list[float]] = IdleMap(idle_s=FAILURE_WINDOW_S, max_size=10_000, clock=clock)
        self._clock = clock

    def _recent(self, source: str) -> list[float]:
        now = self._clock()
        return [t for t in self._seen.get(source) or [] if now - t < FAILURE_WINDOW_S]

    def too_many(self, source: str) -> bool:
        """Whether ``source`` has used up its failures for now."""
        return len(self._recent(source)) >= MAX_FAILURES

    def add(self, source: str) -> None:
        """Count one failure of ``source``."""
        self._seen.put(source, [*self._recent(source), self._clock()])


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a gptproto key (checked before it goes anywhere), or None."""
    if not key or len(key) > KEY_MAX_CHARS or any(ch.isspace() for ch in key):
        return "Paste your gptproto API key: one word, no spaces."
    return None


_EXPIRED = (
    "<p>This sign-in link is unknown or has expired (links last 10 minutes). "
    "Go back to your app and connect again.</p>"
)


class SignInPage:
    """The two handlers of ``/signin``, over the provider and a key check."""

    def __init__(
        self,
        provider: SunoOAuthProvider,
        check_key: Callable[[SecretStr], Awaitable[KeyVerdict]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._provider = provider
        self._check_key = check_key
        self._failures = Failures(clock)
        self._review_url = provider.config.issuer + SESSIONS_PATH

    async def show(self, request: Request) -> Response:
        request_id = request.query_params.get("request", "")
        found = await self._provider.pending(request_id) if request_id else None
        if found is None:
            return page("Sign-in link expired", _EXPIRED, 400)
        client, params = found
        return page(
            "Sign in to Suno music",
            _form(request_id, client_label(client), params.redirect_uri.host or "", None, self._review_url),
        )

    async def submit(self, request: Request) -> Response:
        form = await request.form()
        request_id = str(form.get("request") or request.query_params.get("request", ""))
        key = str(form.get("key") or "").strip()
        found = await self._provider.pending(request_id) if request_id else None
        if found is None:
            return page("Sign-in link expired", _EXPIRED, 400)
        client, params = found
        assert client.client_id is not None
        label, host = client_label(client), params.redirect_uri.host or ""

        def again(error: str, status: int) -> Response:
            return page(
                "Sign in to Suno music", _form(request_id, label, host, error, self._review_url), status
            )

        if self._failures.too_many(client.client_id):
            return again(
                "Too many wrong keys were tried from this app. Wait 15 minutes, then try again.", 429
            )
        problem = key_problem(key)
        if problem is not None:
            return again(problem, 400)
        verdict = await self._check_key(SecretStr(key))
        if verdict is KeyVerdict.WRONG:
            self._failures.add(client.client_id)
            return again(
                "gptproto did not accept this key. Copy it again from your gptproto dashboard "
                "(the whole key, nothing around it).",
                401,
            )
        if verdict is KeyVerdict.UNKNOWN:
            return again("gptproto could not be reached to check the key. Try again in a minute.", 503)
        done = await self._provider.complete(request_id, SecretStr(key))
        if done is None:
            return page("Sign-in link expired", _EXPIRED, 400)
        params, code = done
        target = construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)
        log.info("a person signed in for the app %s", label)
        return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})


def register_signin(
    server: MCPServer[Any],
    provider: SunoOAuthProvider,
    holder: list[Any],
    *,
    clock: Callable[[], float] = time.monotonic,
) -> SignInPage:
    """Serve ``/signin`` on ``server``, checking keys with the service the lifespan opens into ``holder``."""

    async def check_key(key: SecretStr) -> KeyVerdict:
        if not holder:
            return KeyVerdict.UNKNOWN
        service = await holder[0].get()
        verdict: KeyVerdict = await service.task_api.key_verdict(key)
        return verdict

    signin_page = SignInPage(provider, check_key, clock=clock)

    server.custom_route(SIGNIN_PATH, methods=["GET"], include_in_schema=False)(signin_page.show)
    server.custom_route(SIGNIN_PATH, methods=["POST"], include_in_schema=False)(signin_page.submit)

    return signin_page
