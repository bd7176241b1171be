"""Who is calling, on the HTTP transport in team mode: the caller a verified sign-in token stands
for, else the gptproto key sent as the bearer.

Kept apart from :mod:`suno_mcp.server.oauth` (the authorization server, its store and its routes),
which only a server with sign-in on loads: a stdio session or a key-only team server never imports it.
"""

from __future__ import annotations

from collections.abc import Mapping

from mcp.server.auth.provider import AccessToken
from pydantic import ConfigDict, SecretStr

from suno_mcp.domain.tenancy import Caller, caller_from_headers


class CallerToken(AccessToken):
    """An access token (ours, or a gptproto key sent as the bearer) with the caller it stands for.

    The SDK keeps it as the request's user; :func:`request_caller` reads the
    caller back. The SDK never renders it to anyone."""

    # Built when sign-in or a bearer key first makes one: a stdio session never does.
    model_config = ConfigDict(arbitrary_types_allowed=True, defer_build=True)

    caller: Caller
    family: str | None = None


def request_caller(request: object, headers: Mapping[str, str] | None, secret: SecretStr) -> Caller | None:
    """Team mode: who sent the HTTP request being handled. With sign-in on, the SDK has already
    verified the bearer (:meth:`SunoOAuthProvider.load_access_token`) and keeps the result as the
    request's user; otherwise the bearer is the caller's gptproto key."""
    scope = getattr(request, "scope", None)
    user = scope.get("user") if isinstance(scope, Mapping) else None
    token = getattr(user, "access_token", None)
    if isinstance(token, CallerToken):
        return token.caller
    return caller_from_headers(headers, secret)
