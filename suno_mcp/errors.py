"""Errors raised by the client and the service, and how an HTTP answer becomes one.

The tree::

    SunoError                         anything that went wrong talking to Suno
    ├── ConfigurationError            no API key, bad settings (nothing was sent)
    ├── UpstreamError                 the upstream answered, and not with success
    │   ├── InvalidRequestError       the request was refused as invalid (400)
    │   ├── AuthenticationError       401: the key was rejected
    │   ├── InsufficientBalanceError  403: the account has no credit left
    │   ├── NotFoundError             404 or "not found": unknown task or clip
    │   ├── RateLimitedError          429: too many requests (carries retry_after)
    │   ├── ContentPolicyError        503 with a policy message: the prompt was refused
    │   ├── ServerError               5xx: the upstream is failing
    │   └── MalformedResponseError    the body was not what the wire format promises
    └── TransportError                no usable answer at all
        ├── UpstreamTimeoutError      the upstream took too long
        ├── UpstreamConnectionError   the connection failed or was dropped
        └── SubmitOutcomeUnknownError a submit may have reached the upstream, no answer came back

``TransportError`` carries ``request_sent``: whether the request may have reached the
upstream. A submit whose request may have been sent must never be repeated blindly,
because Suno charges per generation.

:func:`error_from_response` is the one place an HTTP response is turned into one of
these; it reads both body shapes the vendor uses (``{"code": "error", ...}`` and
``{"error": {...}}``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# Retry-After larger than this is treated as this, wherever it is read: a tool call cannot wait hours,
# and a poller that waited longer would leave its waiters with nothing to report.
MAX_RETRY_AFTER_S = 60.0


class SunoError(Exception):
    """Base of every error this package raises on purpose."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class ConfigurationError(SunoError):
    """The server is not set up to make this call (for example no API key)."""


class UpstreamError(SunoError):
    """The upstream answered, but not with success."""


class InvalidRequestError(UpstreamError):
    """The upstream refused the request as invalid (HTTP 400)."""


class AuthenticationError(UpstreamError):
    """The API key was missing or rejected (HTTP 401)."""


class InsufficientBalanceError(UpstreamError):
    """The account has no balance left for this request (HTTP 403)."""


class NotFoundError(UpstreamError):
    """The task or clip is unknown to the upstream."""


class RateLimitedError(UpstreamError):
    """Too many requests (HTTP 429); ``retry_after`` is in seconds when the upstream said."""

    def __init__(
        self, message: str, *, status_code: int | None = 429, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class ContentPolicyError(UpstreamError):
    """The prompt, lyrics or style was refused by the content policy."""


class ServerError(UpstreamError):
    """The upstream failed (HTTP 5xx)."""


class MalformedResponseError(UpstreamError):
    """The upstream's answer did not have the shape the wire format promises."""


class TransportError(SunoError):
    """No usable answer came back."""

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class UpstreamTimeoutError(TransportError):
    """The upstream did not answer in time."""


class UpstreamConnectionError(TransportError):
    """The connection could not be made or was dropped."""


class SubmitOutcomeUnknownError(TransportError):
    """A paid submit may have reached the upstream, but no answer came back.

    ``local_id`` names the ledger row (status ``unknown``) that remembers it.
    """

    def __init__(self, message: str, *, local_id: str) -> None:
        super().__init__(message, request_sent=True)
        self.local_id = local_id


_POLICY_WORDS = ("policy", "moderation", "sensitive", "prohibited", "violat", "not allowed", "inappropriate")
_BALANCE_WORDS = ("balance", "quota", "credit", "insufficient")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form only), capped at MAX_RETRY_AFTER_S."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if seconds != seconds or seconds < 0:  # NaN or negative: ignore it
        return None
    return min(seconds, MAX_RETRY_AFTER_S)


def upstream_message(body: Any) -> str | None:
    """The human message inside either vendor error body, if there is one."""
    if not isinstance(body, Mapping):
        return None
    error = body.get("error")
    if isinstance(error, Mapping):
        message = error.get("message")
        return str(message) if message else None
    if isinstance(error, str) and error:
        return error
    message = body.get("message") or body.get("msg") or body.get("detail")
    return str(message) if message else None


def is_error_body(body: Any) -> bool:
    """True for a body that reports failure, whatever the HTTP status said."""
    if not isinstance(body, Mapping):
        return False
    code = body.get("code")
    if isinstance(code, str) and code.lower() not in ("success", "ok", "200"):
        return True
    return body.get("error") not in (None, "", {})


def error_from_response(
    status_code: int, body: Any, headers: Mapping[str, str] | None = None
) -> UpstreamError:
    """Turn a failed upstream answer into the matching error.

    ``body`` is the decoded JSON (or the raw text when it was not JSON). The message
    the upstream gave is kept, since it is often the most useful part.
    """
    message = upstream_message(body)
    if message is None and isinstance(body, str) and body.strip():
        message = body.strip()[:300]
    text = message or f"HTTP {status_code}"
    lowered = text.lower()

    if status_code == 401:
        return AuthenticationError(text, status_code=status_code)
    if status_code == 403 or (status_code in (200, 402) and any(w in lowered for w in _BALANCE_WORDS)):
        return InsufficientBalanceError(text, status_code=status_code)
    if status_code == 429:
        retry_after = parse_retry_after((headers or {}).get("retry-after"))
        return RateLimitedError(text, status_code=status_code, retry_after=retry_after)
    if any(w in lowered for w in _POLICY_WORDS):
        return ContentPolicyError(text, status_code=status_code)
    if status_code == 404 or "not found" in lowered or "not exist" in lowered:
        return NotFoundError(text, status_code=status_code)
    if status_code == 400 or status_code == 422:
        return InvalidRequestError(text, status_code=status_code)
    if status_code >= 500:
        return ServerError(text, status_code=status_code)
    # A 200 with an error body and no recognisable cause: the upstream refused it.
    return InvalidRequestError(text, status_code=status_code)


def decode_json(raw: bytes | str) -> Any:
    """Decode a body as JSON, or raise MalformedResponseError naming what came back."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        preview = raw[:80] if isinstance(raw, str) else raw[:80].decode("utf-8", "replace")
        raise MalformedResponseError(
            f"the upstream answered with something that is not JSON: {preview!r}"
        ) from err
