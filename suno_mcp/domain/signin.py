"""Sign-in (``SUNO_MCP_AUTH=oauth``): the credentials we mint, how they are kept, and the key at rest.

A person signs in once by pasting their gptproto key; the server keeps that key sealed (AES-GCM
under a key derived from a server secret that is a setting, never the database, with the tenant id
as associated data, so a sealed key moved to another tenant's row does not open) and hands the
client opaque tokens. What the database holds of a token or a code is a keyed hash of it
(HMAC-SHA256 under another key derived from the same secret): a copy of the database alone neither
reveals a token nor lets anyone confirm a guess of one.

Every credential carries a short prefix naming its kind, so the door tells an access token from a
gptproto key without a lookup, and a leaked one is recognisable in a secret scanner.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from pydantic import SecretStr

# Prefixes of what we mint. A bearer value starting with ACCESS_PREFIX is one of our access tokens,
# never a gptproto key.
ACCESS_PREFIX = "sma_"
REFRESH_PREFIX = "smr_"
CODE_PREFIX = "smc_"
PENDING_PREFIX = "sms_"
FAMILY_PREFIX = "smf_"
# Bytes of randomness in each (the spec asks at least 128 bits of a code; 256 for all).
TOKEN_BYTES = 32

# Lifetimes (seconds): an access token about an hour, a refresh token a month (each use rotates it),
# a code a few minutes, a sign-in page ten.
ACCESS_TTL_S = 3600.0
REFRESH_TTL_S = 30 * 24 * 3600.0
CODE_TTL_S = 300.0
PENDING_TTL_S = 600.0
# How long the End buttons of the sign-ins page stay good (their proof's lifetime).
PROOF_TTL_S = 600.0
# The subject of a proof over all of a tenant's sign-ins (a family id always starts with FAMILY_PREFIX).
ALL_SIGN_INS = "all"

_SEAL_VERSION = "v1"
_NONCE_BYTES = 12


def mint(prefix: str) -> str:
    """A new credential of the kind ``prefix`` names."""
    return prefix + secrets.token_urlsafe(TOKEN_BYTES)


def is_access_token(value: str) -> bool:
    """True for a value shaped like one of our access tokens (whether or not it is live)."""
    return value.startswith(ACCESS_PREFIX)


def _derive(secret: SecretStr, purpose: str) -> bytes:
    """A 256-bit key for one purpose, derived from the server secret (HKDF-SHA256, RFC 5869)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"suno-mcp {purpose}".encode())
    return hkdf.derive(secret.get_secret_value().encode())


@dataclass(frozen=True)
class Keys:
    """What the server secret opens: the key-sealing key, the token-hashing key and the key that
    signs the sign-ins page's proofs. None is shown in a repr."""

    seal: bytes = field(repr=False)
    digest: bytes = field(repr=False)
    proving: bytes = field(repr=False)

    @classmethod
    def from_secret(cls, secret: SecretStr) -> Keys:
        return cls(
            seal=_derive(secret, "key at rest v1"),
            digest=_derive(secret, "token digest v1"),
            proving=_derive(secret, "sign-in proof v1"),
        )

    def hash(self, credential: str) -> str:
        """What the database keeps of a token, code or sign-in id."""
        return hmac.new(self.digest, credential.encode(), hashlib.sha256).hexdigest()

    def proof(self, text: str) -> str:
        """The signature of ``text`` in a proof (its own key: a token's hash is never a valid proof)."""
        return hmac.new(self.proving, text.encode(), hashlib.sha256).hexdigest()

    def seal_key(self, tenant: str, key: SecretStr) -> str:
        """The gptproto key sealed for ``tenant``'s row (text, for any database)."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = AESGCM(self.seal).encrypt(nonce, key.get_secret_value().encode(), tenant.encode())
        return f"{_SEAL_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open_key(self, tenant: str, sealed: str) -> SecretStr | None:
        """The key sealed for ``tenant``, or None when it does not open (another tenant's row, another
        secret, or tampered with)."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        version, _, body = sealed.partition(".")
        if version != _SEAL_VERSION:
            return None
        try:
            raw = base64.urlsafe_b64decode(body.encode())
            plain = AESGCM(self.seal).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], tenant.encode())
        except (InvalidTag, ValueError):
            return None
        return SecretStr(plain.decode())


def make_proof(keys: Keys, subject: str, tenant: str, expires_at: float) -> str:
    """``subject.tenant.expiry.signature``: what an End button of the sign-ins page carries instead of
    the key, so ending a sign-in needs neither the key again nor anything the page could leak.
    ``subject`` is a family id, or :data:`ALL_SIGN_INS` for every sign-in of ``tenant``."""
    text = f"{subject}.{tenant}.{int(expires_at)}"
    return f"{text}.{keys.proof(text)}"


def read_proof(keys: Keys, proof: str, now: float) -> tuple[str, str] | None:
    """``(subject, tenant)`` of a proof this server signed and that is still good at ``now``, or None
    (tampered with, signed under another secret, malformed, or expired)."""
    parts = proof.split(".")
    if len(parts) != 4:
        return None
    subject, tenant, expiry, signature = parts
    expected = keys.proof(f"{subject}.{tenant}.{expiry}")
    # Bytes: compare_digest refuses non-ASCII text, which a forged form field may hold.
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return None
    if not expiry.isdigit() or int(expiry) <= now:
        return None
    return subject, tenant


# Schemes a registered redirect may not use: they run or read something in the browser itself.
_UNSAFE_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "about", "blob", "ftp", "ws", "wss"})


def redirect_problem(uri: str) -> str | None:
    """Why a client may not register ``uri`` as a redirect, or None when it may.

    https to a public host; plain http only to this machine's loopback (native apps' redirect, RFC
    8252 §7.3); an app's own scheme (``cursor://...``, RFC 8252 §7.1). A private-network, link-local
    or otherwise non-public address is refused (by IP literal: names are not resolved here), so a
    code is never sent into the server's own network.
    """
    from urllib.parse import urlsplit

    from suno_mcp.domain.inputs import private_host

    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
    except ValueError:
        return f"{uri[:80]!r} is not a URL"
    scheme = parts.scheme.lower()
    if parts.fragment:
        return "a redirect_uri may not have a fragment (#...)"
    if scheme in _UNSAFE_SCHEMES or not scheme:
        return f"the scheme {scheme or '(none)'}: is not allowed for a redirect_uri"
    if scheme not in ("http", "https"):
        return None  # an app's own scheme: the operating system hands it to that app
    if not host:
        return "a redirect_uri needs a host"
    if parts.username is not None or parts.password is not None:
        return "a redirect_uri may not hold a user name or password"
    if host in ("localhost", "127.0.0.1", "::1"):
        return None
    if scheme != "https":
        return f"{host}: a redirect_uri to another machine must use https"
    if private_host(host):
        return f"{host} is a loopback, private-network or link-local address; use a public https address"
    return None
