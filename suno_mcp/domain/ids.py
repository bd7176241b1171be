"""The two rules for what a task or clip id may be, and the one way an id goes into a URL.

The upstream hands out the ids; we do not choose their alphabet. Suno's are UUIDs, uploads
look like ``m_<uuid>``, and a gateway may add ``:``, ``.``, ``+`` or ``/``. So the loose rule
(:func:`is_id`, the tools' input schemas) refuses only what can never be a real id or would
be unsafe to show and store: empty, longer than :data:`ID_MAX`, whitespace, control and
other non-printing characters. An id the upstream gave us is kept and followed whatever
else it holds.

An id a caller types that nobody has seen is another matter: it is sent upstream only when
it looks like a vendor id (:func:`looks_like_vendor_id`, described by :data:`VENDOR_ID_RULE`).
Otherwise ``../../etc/passwd`` would buy a paid extension of nothing, and ``abc?x=1`` would
be asked about.

Ids go into URL paths percent-encoded (:func:`url_segment`), never raw, so an id holding
``/``, ``?``, ``#`` or ``..`` stays one path segment.
"""

from __future__ import annotations

import re
from urllib.parse import quote

ID_MAX = 128

# The rule as a regular expression, written to mean the same in Python's re, ECMAScript and
# Rust's regex (the tool schemas carried it once; the server now checks it alone, so the tool
# list stays small). Python's str.isprintable() (in is_id) also refuses the invisible format
# characters that a portable character class cannot name.
ID_PATTERN = rf"^[^\s\x00-\x1f\x7f-\x9f]{{1,{ID_MAX}}}$"
_ID_RE = re.compile(ID_PATTERN)

ID_RULE = f"1-{ID_MAX} printable characters without spaces"


def is_id(value: object) -> bool:
    """True when ``value`` may be a task or clip id."""
    return isinstance(value, str) and bool(_ID_RE.fullmatch(value)) and value.isprintable()


# What an id nobody has seen must look like: ASCII only (a Cyrillic "а" is not an "a"), and
# none of the characters that steer a URL or a path.
_VENDOR_ID_RE = re.compile(rf"[A-Za-z0-9_.:-]{{1,{ID_MAX}}}")

VENDOR_ID_RULE = (
    f"1-{ID_MAX} characters, only ASCII letters, digits, '-', '_', '.' and ':', never '..' and not '.' alone"
)


def looks_like_vendor_id(value: object) -> bool:
    """True when ``value`` has the shape of a vendor id (:data:`VENDOR_ID_RULE`).

    Checked only for ids the ledger does not know; an id the upstream gave us passes
    :func:`is_id` and is followed whatever it holds.
    """
    return (
        isinstance(value, str)
        and bool(_VENDOR_ID_RE.fullmatch(value))
        and ".." not in value
        and value != "."  # a dot segment: a URL client would resolve it away
    )


def check_id(value: str, what: str = "id") -> str:
    """Return ``value`` if it may be an id, else raise ValueError naming ``what``."""
    if not is_id(value):
        raise ValueError(f"{what} must be {ID_RULE}; pass it exactly as the upstream gave it")
    return value


def url_segment(value: str) -> str:
    """``value`` as one percent-encoded URL path segment.

    Every reserved character is encoded (``/`` too). ``.`` is unreserved and left alone by
    percent-encoding, so the two dot segments, which an HTTP client would resolve into the
    parent path, have their dots encoded as well.
    """
    segment = quote(value, safe="")
    if segment in (".", ".."):
        segment = segment.replace(".", "%2E")
    return segment
