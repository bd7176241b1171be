"""The sign-ins page ``/signin/sessions``: a person sees which apps are signed in with their key, and
ends any of them, without going through each app.

``GET`` asks for the key. ``POST`` with the key lists the key's live sign-ins (app, when it signed
in, when it last refreshed), each with an End button, and End all. The key is not checked upstream
(a key never signed in here simply has no sign-ins) and is never written back into a page: the End
buttons carry a proof instead (:func:`suno_mcp.domain.signin.make_proof`), signed by this server,
naming the sign-in and the tenant and good for ten minutes. Ending goes through the provider as a
revocation does, so the key is forgotten when the last sign-in ends; the page says so.

A lookup that finds nothing is counted per remote address, as wrong keys are per app on the sign-in
page: past :data:`~suno_mcp.server.signin.MAX_FAILURES` within the window the page stops looking,
so it cannot be used to test guessed keys in bulk. Behind a reverse proxy every person shares the
proxy's address, so one person's misses can hold others back for that window.

Same template, same headers as the sign-in page: no script, light or dark, 380 px wide.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import MCPServer
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

from suno_mcp.domain.signin import ALL_SIGN_INS
from suno_mcp.server.oauth import SESSIONS_PATH, SunoOAuthProvider
from suno_mcp.server.signin import KEY_MAX_CHARS, Failures, key_problem, page
from suno_mcp.store.signin import SessionLine

log = logging.getLogger(__name__)

HEADING = "Your sign-ins"
NOTHING_FOUND = "No sign-ins for this key on this server."
KEY_FORGOTTEN = "Your key is no longer kept on this server."
_STALE = (
    "This page has expired or was changed, so nothing was ended (End buttons last 10 minutes). "
    "Enter your key again to see your sign-ins."
)


def _when(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch_s))


def _key_form(error: str | None = None) -> str:
    alert = "" if error is None else f'<p class="error" id="error" role="alert">{html.escape(error)}</p>\n'
    invalid = "" if error is None else ' aria-invalid="true"'
    described = "about" if error is None else "error about"
    return f"""{alert}<form method="post" action="">
<label for="key">Your gptproto API key</label>
<input id="key" name="key" type="password" autocomplete="off" spellcheck="false" required autofocus
 maxlength="{KEY_MAX_CHARS}" aria-describedby="{described}"{invalid}>
<button type="submit">Show my sign-ins</button>
</form>
<p class="small" id="about">Every app you signed in to this server with this key, and a button to end
each. Ending one signs that app out; it asks you to sign in again next time.</p>"""


def _end_form(proof: str, label: str, text: str) -> str:
    return f"""<form method="post" action="">
<input type="hidden" name="end" value="{html.escape(proof)}">
<button class="quiet" type="submit" aria-label="{html.escape(label)}">{html.escape(text)}</button>
</form>"""


def _listing(
    provider: SunoOAuthProvider, tenant: str, found: list[tuple[str, SessionLine]], notes: list[str]
) -> str:
    said = "".join(f'<p class="done" role="status">{html.escape(note)}</p>\n' for note in notes)
    if not found:
        return f"{said}<p>{html.escape(NOTHING_FOUND)}</p>\n{_again()}"
    items = []
    for app, line in found:
        refreshed = "not yet" if line.last_issued_at <= line.created_at else _when(line.last_issued_at)
        items.append(
            f"""<li><strong>{html.escape(app)}</strong>
<span class="when">Signed in {_when(line.created_at)}<br>Last refreshed {refreshed}</span>
{_end_form(provider.proof(line.family, tenant), f"End the sign-in of {app}", "End")}</li>"""
        )
    everything = _end_form(provider.proof(ALL_SIGN_INS, tenant), "End all sign-ins", "End all")
    return f"""{said}<ul class="sessions">
{chr(10).join(items)}
</ul>
{everything}
{_again()}"""


def _again() -> str:
    return '<p class="small"><a href="">Look up another key</a></p>'


class SessionsPage:
    """The handlers of ``/signin/sessions``, over the provider."""

    def __init__(self, provider: SunoOAuthProvider, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._provider = provider
        self._misses = Failures(clock)

    async def show(self, request: Request) -> Response:
        return page(HEADING, _key_form())

    async def submit(self, request: Request) -> Response:
        form = await request.form()
        proof = form.get("end")
        if isinstance(proof, str):
            return await self._end(proof)
        return await self._look_up(str(form.get("key") or "").strip(), request)

    async def _look_up(self, key: str, request: Request) -> Response:
        source = request.client.host if request.client else "unknown"
        if self._misses.too_many(source):
            return page(
                HEADING, _key_form("Too many keys without sign-ins. Wait 15 minutes, then try again."), 429
            )
        problem = key_problem(key)
        if problem is not None:
            return page(HEADING, _key_form(problem), 400)
        tenant = self._provider.tenant_of(SecretStr(key))
        found = await self._provider.sign_ins(tenant)
        if not found:
            self._misses.add(source)
        return page(HEADING, _listing(self._provider, tenant, found, []))

    async def _end(self, proof: str) -> Response:
        proven = self._provider.proven(proof)
        if proven is None:
            return page(
                "Nothing was ended",
                f'<p class="error" role="alert">{html.escape(_STALE)}</p>\n' + _key_form(),
                400,
            )
        subject, tenant = proven
        found = await self._provider.sign_ins(tenant)
        ending = [(app, line) for app, line in found if subject in (ALL_SIGN_INS, line.family)]
        forgotten = False
        for _, line in ending:
            forgotten = await self._provider.end_sign_in(line.family, tenant) or forgotten
        notes = [
            f"Ended: {', '.join(app for app, _ in ending)}" if ending else "That sign-in had already ended."
        ]
        if forgotten:
            notes.append(KEY_FORGOTTEN)
        log.info("a person ended %d sign-in(s) from the sign-ins page", len(ending))
        left = await self._provider.sign_ins(tenant)
        return page(HEADING, _listing(self._provider, tenant, left, notes))


def register_sessions(
    server: MCPServer[Any], provider: SunoOAuthProvider, *, clock: Callable[[], float] = time.monotonic
) -> SessionsPage:
    """Serve ``/signin/sessions`` on ``server``."""
    sessions_page = SessionsPage(provider, clock=clock)
    server.custom_route(SESSIONS_PATH, methods=["GET"], include_in_schema=False)(sessions_page.show)
    server.custom_route(SESSIONS_PATH, methods=["POST"], include_in_schema=False)(sessions_page.submit)
    return sessions_page
