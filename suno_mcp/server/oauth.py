"""OAuth sign-in (``SUNO_MCP_AUTH=oauth``): the authorization server the SDK's auth routes call.

The SDK (``mcp.server.auth``) serves the metadata, ``/authorize``, ``/token``, ``/register`` and
``/revoke``, checks PKCE and the redirect, and refuses ``/mcp`` without a valid token. This module is
the provider it calls: it keeps clients, sign-ins, codes and tokens in the ledger database (any
replica honours any token; a restart signs nobody out), sends ``/authorize`` to our own sign-in page
(:mod:`suno_mcp.server.signin`), and turns a token back into its caller: the tenant and the
gptproto key it pays with.

Rules kept here:

- a code is used once; a code presented again revokes everything issued from it;
- a refresh token is used once (each use rotates it); one presented again revokes its family, so a
  stolen copy and the rightful client cannot both go on;
- every token is bound to this server's resource URL; a client asking for another gets
  ``invalid_target``;
- revoking a token ends its family, and the sealed key is forgotten when none of the tenant's
  tokens is still live; the person can do the same from the sign-ins page
  (:mod:`suno_mcp.server.sessions`), which reaches them through :meth:`SunoOAuthProvider.end_sign_in`.

With ``key`` in ``SUNO_MCP_AUTH`` as well, a bearer value that is not one of our access tokens is
taken as the caller's gptproto key (the CLI clients' way), as in plain team mode.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

from mcp.server.auth.handlers.metadata import ProtectedResourceMetadataHandler
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    RefreshToken,
    RegistrationError,
    TokenError,
)
from mcp.server.auth.routes import cors_middleware
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken, ProtectedResourceMetadata
from pydantic import AnyUrl, SecretStr

from suno_mcp.domain import signin
from suno_mcp.domain.errors import ConfigurationError, LedgerUnavailableError
from suno_mcp.domain.tenancy import Caller, tenant_id
from suno_mcp.server.callers import CallerToken
from suno_mcp.settings import Settings
from suno_mcp.store.signin import CodeRecord, SessionLine, SignInStore, TokenRecord

log = logging.getLogger(__name__)

# The client_id a bearer gptproto key is given (never one the SDK issues: those are UUIDs).
KEY_CLIENT_ID = "gptproto-key"
SIGNIN_PATH = "/signin"
ROOT_RESOURCE_METADATA = "/.well-known/oauth-protected-resource"
SESSIONS_PATH = SIGNIN_PATH + "/sessions"
# How often a process clears out dead sign-in rows (wall-clock seconds).
PURGE_EVERY_S = 3600.0


# Where a client's sealed secret is kept in its stored record, and what it is sealed to.
_SEALED_SECRET = "client_secret_sealed"  # noqa: S105 (a field name)


def _client_aad(client_id: str) -> str:
    return f"client {client_id}"


class SignedInCode(AuthorizationCode):
    family: str
    tenant: str


class SignedInRefresh(RefreshToken):
    family: str
    tenant: str
    token_hash: str


@dataclass(frozen=True)
class OAuthConfig:
    """What the provider is told at start-up."""

    issuer: str  # the public base URL (no trailing slash)
    resource: str  # issuer + "/mcp": what every token is bound to
    tenant_secret: SecretStr
    keys: signin.Keys
    accept_bearer_keys: bool

    @property
    def signin_url(self) -> str:
        return self.issuer + SIGNIN_PATH


def same_resource(given: str | None, ours: str) -> bool:
    """Whether an RFC 8707 resource indicator names this server (a trailing slash aside)."""
    return given is not None and given.rstrip("/") == ours.rstrip("/")


class SunoOAuthProvider:
    """The SDK's ``OAuthAuthorizationServerProvider`` over the ledger's sign-in tables.

    ``store`` gives the sign-in store once the service is open (the ledger may still be starting
    when the first request comes); ``clock`` is wall-clock seconds (token lifetimes)."""

    def __init__(
        self,
        config: OAuthConfig,
        store: Callable[[], Awaitable[SignInStore]],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._store = store
        self._clock = clock
        self._purged_at: float | None = None  # when this process last cleared out dead rows

    def __repr__(self) -> str:
        return f"SunoOAuthProvider(issuer={self.config.issuer!r})"

    # ------------------------------------------------------------ clients

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        info = await (await self._store()).get_client(client_id)
        if info is None:
            return None
        fields = json.loads(info)
        sealed = fields.pop(_SEALED_SECRET, None)
        if sealed is not None:
            secret = self.config.keys.open_key(_client_aad(client_id), sealed)
            if secret is None:  # sealed under another SUNO_MCP_AUTH_SECRET: the client registers again
                return None
            fields["client_secret"] = secret.get_secret_value()
        return OAuthClientInformationFull.model_validate(fields)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        for uri in client_info.redirect_uris or []:
            problem = signin.redirect_problem(str(uri))
            if problem is not None:
                raise RegistrationError("invalid_redirect_uri", problem)
        client_id = client_info.client_id
        assert client_id is not None  # the SDK's registration handler sets it
        # A confidential client's secret is kept sealed like a key: the SDK compares it in clear, so
        # it must come back whole, and the database must not hold it readable.
        fields = client_info.model_dump(mode="json", exclude_none=True)
        secret = fields.pop("client_secret", None)
        if secret is not None:
            fields[_SEALED_SECRET] = self.config.keys.seal_key(_client_aad(client_id), SecretStr(secret))
        await (await self._store()).put_client(client_id, json.dumps(fields), self._clock())

    # ------------------------------------------------------------ authorize -> sign-in page -> code

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        if not params.state:
            raise AuthorizeError("invalid_request", "state is required")
        if params.resource is not None and not same_resource(params.resource, self.config.resource):
            raise AuthorizeError(
                "invalid_target", f"this server issues tokens for {self.config.resource} only"
            )
        pending = signin.mint(signin.PENDING_PREFIX)
        assert client.client_id is not None
        await self._purge_now_and_then()
        await (await self._store()).put_pending(
            self.config.keys.hash(pending),
            client.client_id,
            params.model_dump_json(),
            self._clock() + signin.PENDING_TTL_S,
        )
        return f"{self.config.signin_url}?request={pending}"

    async def _purge_now_and_then(self) -> None:
        """Clear out expired sign-in pages and codes and long-dead tokens, at most once per
        :data:`PURGE_EVERY_S` per process, on the way into a new sign-in."""
        now = self._clock()
        if self._purged_at is not None and now - self._purged_at < PURGE_EVERY_S:
            return
        self._purged_at = now
        await (await self._store()).purge(now)

    async def pending(self, request_id: str) -> tuple[OAuthClientInformationFull, AuthorizationParams] | None:
        """The client and the authorization a sign-in page is for, or None when the link is unknown
        or expired."""
        store = await self._store()
        found = await store.get_pending(self.config.keys.hash(request_id), self._clock())
        if found is None:
            return None
        client_id, params_json = found
        client = await self.get_client(client_id)
        if client is None:
            return None
        return client, AuthorizationParams.model_validate_json(params_json)

    async def complete(self, request_id: str, key: SecretStr) -> tuple[AuthorizationParams, str] | None:
        """The person behind ``request_id`` signed in with ``key`` (already checked upstream): keep
        the key sealed, mint a code; returns the authorization and the code, or None when the sign-in
        link expired meanwhile."""
        found = await self.pending(request_id)
        if found is None:
            return None
        client, params = found
        assert client.client_id is not None
        store = await self._store()
        tenant = self.tenant_of(key)
        now = self._clock()
        code = signin.mint(signin.CODE_PREFIX)
        await store.put_code(
            CodeRecord(
                code_hash=self.config.keys.hash(code),
                family=signin.mint(signin.FAMILY_PREFIX),
                client_id=client.client_id,
                tenant=tenant,
                redirect_uri=str(params.redirect_uri),
                redirect_uri_explicit=params.redirect_uri_provided_explicitly,
                code_challenge=params.code_challenge,
                scopes=tuple(params.scopes or ()),
                resource=self.config.resource,
                expires_at=now + signin.CODE_TTL_S,
                used_at=None,
            )
        )
        # The code first: an unused code keeps the key from being forgotten by another of this
        # person's sessions ending at the same moment (see SignInStore.put_key).
        await store.put_key(tenant, self.config.keys.seal_key(tenant, key), now)
        await store.drop_pending(self.config.keys.hash(request_id))
        return params, code

    # ------------------------------------------------------------ code -> tokens

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> SignedInCode | None:
        store = await self._store()
        record = await store.get_code(self.config.keys.hash(authorization_code))
        if record is None or record.client_id != client.client_id:
            return None
        if record.used_at is not None:
            # A code seen twice was intercepted or replayed: end what the first use issued.
            log.warning("an authorization code was presented again; its tokens are revoked")
            await self.end_sign_in(record.family, record.tenant)
            return None
        return SignedInCode(
            code=authorization_code,
            scopes=list(record.scopes),
            expires_at=record.expires_at,
            client_id=record.client_id,
            code_challenge=record.code_challenge,
            redirect_uri=AnyUrl(record.redirect_uri),
            redirect_uri_provided_explicitly=record.redirect_uri_explicit,
            resource=record.resource,
            subject=record.tenant,
            family=record.family,
            tenant=record.tenant,
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: SignedInCode
    ) -> OAuthToken:
        store = await self._store()
        if not await store.use_code(self.config.keys.hash(authorization_code.code), self._clock()):
            raise TokenError("invalid_grant", "the authorization code was already used or has expired")
        return await self._issue(
            store, client, authorization_code.family, authorization_code.tenant, authorization_code.scopes
        )

    async def _issue(
        self,
        store: SignInStore,
        client: OAuthClientInformationFull,
        family: str,
        tenant: str,
        scopes: list[str],
    ) -> OAuthToken:
        assert client.client_id is not None
        now = self._clock()
        access = signin.mint(signin.ACCESS_PREFIX)
        refresh = signin.mint(signin.REFRESH_PREFIX)

        def record(token: str, kind: Literal["access", "refresh"], ttl: float) -> TokenRecord:
            return TokenRecord(
                token_hash=self.config.keys.hash(token),
                kind=kind,
                family=family,
                client_id=client.client_id or "",
                tenant=tenant,
                scopes=tuple(scopes),
                resource=self.config.resource,
                created_at=now,
                expires_at=now + ttl,
                revoked_at=None,
                rotated_at=None,
            )

        has_key = await store.put_tokens(
            record(access, "access", signin.ACCESS_TTL_S), record(refresh, "refresh", signin.REFRESH_TTL_S)
        )
        if not has_key:  # the person's last other session ended at this very moment, taking the key
            await self.end_sign_in(family, tenant)
            raise TokenError("invalid_grant", "the sign-in ended meanwhile; sign in again")
        return OAuthToken(
            access_token=access,
            token_type="Bearer",  # noqa: S106 (the scheme, not a secret)
            expires_in=int(signin.ACCESS_TTL_S),
            refresh_token=refresh,
            scope=" ".join(scopes) or None,
        )

    # ------------------------------------------------------------ refresh

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> SignedInRefresh | None:
        store = await self._store()
        token_hash = self.config.keys.hash(refresh_token)
        record = await store.get_token(token_hash)
        if record is None or record.kind != "refresh" or record.client_id != client.client_id:
            return None
        if record.rotated_at is not None and record.revoked_at is None:
            log.warning("a rotated refresh token was presented again; its family is revoked")
            await self.end_sign_in(record.family, record.tenant)
            return None
        if record.revoked_at is not None or record.expires_at <= self._clock():
            return None
        return SignedInRefresh(
            token=refresh_token,
            client_id=record.client_id,
            scopes=list(record.scopes),
            expires_at=int(record.expires_at),
            resource=record.resource,
            subject=record.tenant,
            family=record.family,
            tenant=record.tenant,
            token_hash=token_hash,
        )

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: SignedInRefresh, scopes: list[str]
    ) -> OAuthToken:
        store = await self._store()
        if not await store.rotate(refresh_token.token_hash, self._clock()):
            # Two uses raced: the loser is the reuse the rule is about.
            await self.end_sign_in(refresh_token.family, refresh_token.tenant)
            raise TokenError("invalid_grant", "the refresh token was already used; sign in again")
        return await self._issue(store, client, refresh_token.family, refresh_token.tenant, scopes)

    # ------------------------------------------------------------ access

    async def load_access_token(self, token: str) -> CallerToken | None:
        if not signin.is_access_token(token):
            return self._bearer_key(token)
        store = await self._store()
        record = await store.get_token(self.config.keys.hash(token))
        if (
            record is None
            or record.kind != "access"
            or record.revoked_at is not None
            or record.expires_at <= self._clock()
        ):
            return None
        sealed = await store.get_key(record.tenant)
        key = None if sealed is None else self.config.keys.open_key(record.tenant, sealed)
        if key is None:
            return None  # signed out meanwhile, or sealed under another secret: sign in again
        return CallerToken(
            token=token,
            client_id=record.client_id,
            scopes=list(record.scopes),
            expires_at=int(record.expires_at),
            resource=record.resource,
            subject=record.tenant,
            caller=Caller(tenant=record.tenant, key=key),
            family=record.family,
        )

    def _bearer_key(self, key: str) -> CallerToken | None:
        """A gptproto key sent as the bearer (``key`` in SUNO_MCP_AUTH too), as plain team mode takes it."""
        if not self.config.accept_bearer_keys or not key.strip():
            return None
        tenant = tenant_id(self.config.tenant_secret, key)
        return CallerToken(
            token=tenant,  # the key itself is kept out of what the SDK holds
            client_id=KEY_CLIENT_ID,
            scopes=[],
            resource=self.config.resource,
            subject=tenant,
            caller=Caller(tenant=tenant, key=SecretStr(key)),
        )

    # ------------------------------------------------------------ revoke

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        family = getattr(token, "family", None)
        tenant = token.subject
        if family is None or tenant is None:
            return  # a gptproto key is not ours to revoke
        await self.end_sign_in(family, tenant)

    async def end_sign_in(self, family: str, tenant: str) -> bool:
        """End one sign-in (every token and unused code of ``family``) and forget ``tenant``'s sealed
        key if no other sign-in of theirs is live; whether the key was forgotten. Revocation, a
        replayed code or refresh token, and the person's own End button all come here."""
        store = await self._store()
        now = self._clock()
        await store.revoke_family(family, now)
        return await store.forget_key_if_unused(tenant, now)

    # ------------------------------------------------------------ the person's own review

    def tenant_of(self, key: SecretStr) -> str:
        """The tenant a gptproto key signs in as (not checked upstream: a key never seen has no sign-ins)."""
        return tenant_id(self.config.tenant_secret, key.get_secret_value())

    async def sign_ins(self, tenant: str) -> list[tuple[str, SessionLine]]:
        """The tenant's live sign-ins, each with the app's name as the sign-in page showed it."""
        lines = await (await self._store()).sessions(tenant, self._clock())
        named: list[tuple[str, SessionLine]] = []
        for line in lines:
            label = line.client_name
            if label is None:  # no registered name: the page showed the redirect's host
                client = await self.get_client(line.client_id)
                label = "an app" if client is None else client_label(client)
            named.append((label, line))
        return named

    def proof(self, subject: str, tenant: str) -> str:
        """A proof, good for :data:`~suno_mcp.domain.signin.PROOF_TTL_S`, that ``tenant`` may end
        ``subject`` (a family, or all of theirs)."""
        return signin.make_proof(self.config.keys, subject, tenant, self._clock() + signin.PROOF_TTL_S)

    def proven(self, proof: str) -> tuple[str, str] | None:
        """``(subject, tenant)`` of a proof from :meth:`proof` still good now, else None."""
        return signin.read_proof(self.config.keys, proof, self._clock())


def client_label(client: OAuthClientInformationFull) -> str:
    """The name the sign-in page shows for a client (its registered name, else its redirect's host)."""
    if client.client_name:
        return client.client_name
    uris = client.redirect_uris or []
    return uris[0].host or "an app" if uris else "an app"


def register_root_resource_metadata(server: MCPServer[Any], config: OAuthConfig) -> None:
    """Serve the protected-resource metadata (RFC 9728) at the root well-known path as well.

    The SDK serves it at the path-suffixed form (``/.well-known/oauth-protected-resource/mcp``), which
    the 401 names; a client that probes the root form first (as RFC 9728 clients without a
    ``WWW-Authenticate`` hint do) finds the same document there."""
    # Validated from text, as the SDK's own document is: a path-less issuer keeps no trailing slash.
    metadata = ProtectedResourceMetadata.model_validate(
        {"resource": config.resource, "authorization_servers": [config.issuer]}
    )
    endpoint = cors_middleware(ProtectedResourceMetadataHandler(metadata).handle, ["GET", "OPTIONS"])
    server.custom_route(ROOT_RESOURCE_METADATA, methods=["GET", "OPTIONS"], include_in_schema=False)(endpoint)


@dataclass(frozen=True)
class OAuthParts:
    """The provider and what MCPServer is given to serve it."""

    provider: SunoOAuthProvider
    server_arguments: dict[str, Any]


def oauth_parts(
    settings: Settings, holder: list[Any], *, wall: Callable[[], float] = time.time
) -> OAuthParts:
    """The authorization server of ``settings`` (SUNO_MCP_AUTH=oauth), over the ledger the lifespan
    opens into ``holder``."""
    # The settings refuse sign-in without either.
    assert settings.public_url is not None
    assert settings.tenant_secret is not None
    issuer = settings.public_url
    config = OAuthConfig(
        issuer=issuer,
        resource=issuer + "/mcp",
        tenant_secret=settings.tenant_secret,
        keys=signin.Keys.from_secret(settings.auth_secret or settings.tenant_secret),
        accept_bearer_keys=settings.bearer_keys,
    )

    async def store() -> SignInStore:
        if not holder:
            raise LedgerUnavailableError("the server is starting")
        try:
            service = await holder[0].get()
        except ConfigurationError as err:  # its text names paths: the log has it, the client does not
            log.warning("sign-in: %s", err)
            raise LedgerUnavailableError("the server could not open its ledger") from err
        return cast("SignInStore", service.ledger.signin_store())

    provider = SunoOAuthProvider(config, store, clock=wall)
    # Given as text: the settings keep a path-less issuer as it is (RFC 8414 compares the issuer as a
    # string; an AnyHttpUrl made here would gain a trailing slash).
    auth = AuthSettings.model_validate(
        {
            "issuer_url": issuer,
            "resource_server_url": config.resource,
            "validate_token_resource": True,
            "client_registration_options": ClientRegistrationOptions(enabled=True),
            "revocation_options": RevocationOptions(enabled=True),
        }
    )
    return OAuthParts(provider, {"auth": auth, "auth_server_provider": provider})
