"""Errors raised by the client and the service, and how an HTTP answer becomes one.

The tree (right: what a submit refused with that error left behind, see :func:`submit_outcome`)::

    SunoError                         anything that went wrong talking to Suno
    ├── ConfigurationError            no API key, bad settings (nothing was sent)       refused
    ├── LedgerUnavailableError        the task ledger did not answer (database down,    refused
    │                                 restarting, or busy past its timeout): not sent
    ├── SpendingRefusedError          not sent: the user's budget or answer said no     refused
    │   ├── BudgetReachedError        SUNO_MCP_BUDGET would be passed
    │   └── DeclinedError             the user declined (or cancelled) when asked
    ├── UpstreamError                 the upstream answered, and not with success
    │   ├── InvalidRequestError       400, or HTTP 200 with {"code": "error"}:          refused
    │   │                             the request was refused as invalid
    │   ├── AuthenticationError       401 "Invalid signature", 403 "Invalid Token":     refused
    │   │                             the key is wrong or disabled
    │   ├── InsufficientBalanceError  403 "Insufficient balance": top up                refused
    │   ├── NotFoundError             404 or "not found": unknown task or clip          refused
    │   ├── RateLimitedError          429: too many requests (carries retry_after)      refused
    │   ├── ContentPolicyError        503 "Input may not meet the guidelines..." or     refused
    │   │                             another policy message: nothing was made
    │   ├── ServerError               5xx without a policy message: failing upstream    unknown
    │   └── MalformedResponseError    the body was not what the wire format promises    unknown
    │       └── UploadAnswerError     an upload's answer names no clip id               refused
    └── TransportError                no usable answer at all              unknown if request_sent
        ├── UpstreamTimeoutError      the upstream took too long
        ├── UpstreamConnectionError   the connection failed or was dropped
        └── SubmitOutcomeUnknownError a submit may have reached the upstream, no answer came back

"refused" means nothing was made and nothing charged: the same request may be sent again
once its cause is fixed. "unknown" means the upstream may have taken (and charged) the
submit, so it must never be repeated blindly, because Suno charges per generation. Each
error says which through its ``charged`` attribute (``"no"`` or ``"maybe"``);
``TransportError`` decides it per instance from ``request_sent``.

:func:`error_from_response` is the one place an HTTP response is turned into one of
these; it reads both body shapes the vendor uses (``{"code": "error", ...}`` and
``{"error": {...}}``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

# Retry-After larger than this is treated as this, wherever it is read: a tool call cannot wait hours,
# and a poller that waited longer would leave its waiters with nothing to report.
MAX_RETRY_AFTER_S = 60.0

Charged = Literal["no", "maybe"]
SubmitOutcome = Literal["refused", "unknown"]


class SunoError(Exception):
    """Base of every error this package raises on purpose."""

    # Whether a submit refused with this error may have been taken (and paid for) upstream.
    charged: Charged = "no"

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class ConfigurationError(SunoError):
    """The server is not set up to make this call (for example no API key)."""


class LedgerUnavailableError(SunoError):
    """The task ledger could not be read or written in time: its database is down, restarting,
    unreachable, or busy past its timeout. Raised by both stores in place of any driver error.

    Raised before a submit, it means nothing was sent or charged. After the upstream accepted a
    submit, the service does not let it escape as this error: the task id is kept elsewhere and the
    caller is told it (nothing paid is lost).
    """


class SpendingRefusedError(SunoError):
    """A paid request was not sent because of the user's spending rules; nothing was recorded."""


class BudgetReachedError(SpendingRefusedError):
    """The request would go past SUNO_MCP_BUDGET and was not confirmed."""


class DeclinedError(SpendingRefusedError):
    """The user was asked to confirm a paid request and declined or cancelled."""


class UpstreamError(SunoError):
    """The upstream answered, but not with success."""


class InvalidRequestError(UpstreamError):
    """The upstream refused the request as invalid (HTTP 400, or a 200 with an error body)."""


class AuthenticationError(UpstreamError):
    """The API key was missing, wrong or disabled (401 "Invalid signature", 403 "Invalid Token")."""


class InsufficientBalanceError(UpstreamError):
    """The account has no balance left for this request (403 "Insufficient balance")."""


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
    """The prompt, lyrics or style was refused by the content policy; nothing was made."""


class ServerError(UpstreamError):
    """The upstream failed (HTTP 5xx); a submit may still have been passed on and charged."""

    charged: Charged = "maybe"


class MalformedResponseError(UpstreamError):
    """The upstream's answer did not have the shape the wire format promises.

    ``raw_answer`` holds the start of the body as received (key scrubbed) when there was
    one, so a submit answer we could not read is still kept for a person to look at.
    """

    charged: Charged = "maybe"

    def __init__(
        self, message: str, *, status_code: int | None = None, raw_answer: str | None = None
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.raw_answer = raw_answer


class UploadAnswerError(MalformedResponseError):
    """An upload's answer carried no clip id where we looked (the vendor documents no field).

    An upload is not a paid generation, so nothing is lost by asking again: refused, not unknown.
    """

    charged: Charged = "no"


class TransportError(SunoError):
    """No usable answer came back."""

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message)
        self.request_sent = request_sent
        self.charged = "maybe" if request_sent else "no"


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


def submit_outcome(err: SunoError) -> SubmitOutcome:
    """What a submit that failed with ``err`` left behind upstream.

    ``"refused"``: nothing was made or charged (record it as rejected). ``"unknown"``: the
    upstream may have taken and charged it (record it as unknown; never resend blindly).
    """
    return "unknown" if err.charged == "maybe" else "refused"


# Lower-case fragments of the messages that name each cause.
_POLICY_WORDS = (
    "policy",
    "guideline",  # 503 "Input may not meet the guidelines. Please adjust and try again."
    "moderation",
    "sensitive",
    "prohibited",
    "violat",
    "not allowed",
    "inappropriate",
)
_BALANCE_WORDS = ("balance", "quota", "credit", "insufficient")
_AUTH_WORDS = ("invalid token", "invalid signature", "api key", "apikey", "unauthori")


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

    def says(words: tuple[str, ...]) -> bool:
        return any(w in lowered for w in words)

    if status_code == 401:
        return AuthenticationError(text, status_code=status_code)
    if status_code == 403:
        # The vendor uses 403 for two different things: a bad or disabled key ("Invalid
        # Token") and an empty account ("Insufficient balance"). Only the second is fixed
        # by topping up; anything else about a 403 is the key's access.
        if says(_BALANCE_WORDS):
            return InsufficientBalanceError(text, status_code=status_code)
        if says(_POLICY_WORDS) and not says(_AUTH_WORDS):
            return ContentPolicyError(text, status_code=status_code)
        return AuthenticationError(text, status_code=status_code)
    if status_code in (200, 402) and says(_BALANCE_WORDS):
        return InsufficientBalanceError(text, status_code=status_code)
    if status_code == 429:
        retry_after = parse_retry_after((headers or {}).get("retry-after"))
        return RateLimitedError(text, status_code=status_code, retry_after=retry_after)
    if status_code == 200 and says(_AUTH_WORDS):
        return AuthenticationError(text, status_code=status_code)
    # Before the 5xx rule: the vendor's content refusal comes as a 503 ("Input may not
    # meet the guidelines"), and nothing was made, unlike a failing gateway's 503.
    if says(_POLICY_WORDS):
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
