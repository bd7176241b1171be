"""Team mode: who is calling, and with which key.

With ``SUNO_MCP_KEYS=per-request`` (HTTP only) every request brings its caller's own gptproto key
as its bearer credential. The key is used for that caller's upstream requests and kept only in
memory (:class:`KeyRing`), never written or logged. What the ledger stores instead is the tenant
id: a keyed hash of the key (HMAC-SHA256 with ``SUNO_MCP_TENANT_SECRET``), so rows of one key are
found again after a restart or on another replica, while the ledger alone does not reveal (or let
anyone test guesses of) the key.

Tenant ``""`` is the single-key modes: the server's own ``GPTPROTO_API_KEY`` (or the sandbox's).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field

from pydantic import SecretStr

from suno_mcp.domain.expiry import IdleMap

# The single-key modes' tenant.
SERVER_TENANT = ""
TENANT_PREFIX = "t-"
# Defaults of the key ring's memory: an hour after its last use a key is dropped (the poller's use
# of it counts, so a tenant's tasks are followed to the end), and at most this many are kept.
KEY_IDLE_S = 3600.0
MAX_KEYS = 10_000


def tenant_id(secret: SecretStr, key: str) -> str:
    """The tenant id of a gptproto key: stable for one server secret, useless without it."""
    digest = hmac.new(secret.get_secret_value().encode(), key.encode(), hashlib.sha256).hexdigest()
    return TENANT_PREFIX + digest[:32]


@dataclass(frozen=True)
class Caller:
    """One request's caller in team mode: the tenant id and the key it pays with."""

    tenant: str
    key: SecretStr = field(repr=False)


def bearer_key(headers: Mapping[str, str] | None) -> str | None:
    """The credential of ``Authorization: Bearer <key>``, or None when there is none."""
    if not headers:
        return None
    value = headers.get("authorization") or headers.get("Authorization") or ""
    scheme, _, key = value.partition(" ")
    key = key.strip()
    # One of our sign-in tokens is never a gptproto key (and must not become a tenant of its own).
    # Imported here: the sign-in module is for team mode's requests, not a stdio session's start.
    from suno_mcp.domain.signin import ACCESS_PREFIX

    return key if scheme.lower() == "bearer" and key and not key.startswith(ACCESS_PREFIX) else None


def caller_from_headers(headers: Mapping[str, str] | None, secret: SecretStr) -> Caller | None:
    """The caller a request's headers name, or None without a bearer key."""
    key = bearer_key(headers)
    return None if key is None else Caller(tenant=tenant_id(secret, key), key=SecretStr(key))


# The caller of the tool call or resource read being handled (set by the MCP server).
CURRENT_CALLER: ContextVar[Caller | None] = ContextVar("suno_mcp_caller", default=None)


class KeyRing:
    """The newest key each tenant called with, in memory only, so the poller can keep
    following that tenant's tasks between its calls. Lost on restart, by design: a replica
    that has not seen a tenant's key does not poll for it (another replica does, or the next
    call brings the key back).

    A key unused for ``idle_s`` seconds (neither by a call nor by a poll) is dropped, as is the
    least recently used past ``max_size``: a server up for months does not hold every key it
    ever saw. The tenant's next call brings it back.
    """

    def __init__(
        self,
        *,
        idle_s: float = KEY_IDLE_S,
        max_size: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys: IdleMap[str, SecretStr] = IdleMap(idle_s=idle_s, max_size=max_size, clock=clock)

    def __repr__(self) -> str:
        return f"KeyRing({len(self._keys)} tenants)"

    def __len__(self) -> int:
        return len(self._keys)

    def remember(self, caller: Caller) -> None:
        """Hold the key this caller brought (the newest one wins)."""
        self._keys.put(caller.tenant, caller.key)

    def get(self, tenant: str) -> SecretStr | None:
        """The tenant's key, if held (using it keeps it)."""
        return self._keys.get(tenant)
