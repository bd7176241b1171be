"""Is this a working gptproto key? Asked before a sign-in issues anything (``SUNO_MCP_AUTH=oauth``).

The vendor documents no balance or account endpoint, so the check is the cheapest authenticated
request we know of: reading a task that does not exist. The upstream authenticates first, so a
wrong or disabled key is refused (401 "Invalid signature", 403 "Invalid Token") and a good one is
told the task is unknown. A read makes nothing and costs nothing. A key whose account has no
balance left is still the person's key: they sign in, and the first paid request says to top up.
When the vendor documents an account endpoint, :func:`check_key` is the one place to use it.
"""

from __future__ import annotations

from enum import Enum

import anyio
from pydantic import SecretStr

from suno_mcp.domain.errors import (
    AuthenticationError,
    InsufficientBalanceError,
    NotFoundError,
    SunoError,
)
from suno_mcp.upstream.transport import Upstream

# The task id read: one no upstream issues (ids are UUID-like), plain enough for any URL path.
PROBE_TASK_ID = "suno-mcp-key-check"
# How long the check may take, retries included (a person waits on the sign-in page).
CHECK_LIMIT_S = 15.0


class KeyVerdict(Enum):
    GOOD = "good"
    WRONG = "wrong"
    UNKNOWN = "unknown"  # the upstream could not be asked now (down, slow, rate limited)


async def check_key(upstream: Upstream, key: SecretStr) -> KeyVerdict:
    """Whether ``key`` is accepted by the upstream, asked with one free read (see the module)."""
    probe = upstream.with_key(key)
    try:
        with anyio.fail_after(CHECK_LIMIT_S):
            await probe.get_json(f"/v1/suno/fetch/{PROBE_TASK_ID}", endpoint="/v1/suno/fetch/{id}")
    except TimeoutError:
        return KeyVerdict.UNKNOWN
    except (NotFoundError, InsufficientBalanceError):
        return KeyVerdict.GOOD
    except AuthenticationError:
        return KeyVerdict.WRONG
    except SunoError:
        return KeyVerdict.UNKNOWN
    return KeyVerdict.GOOD
