"""One TLS context for the tests' own HTTP clients: pass ``verify=TLS``.

httpx builds a new context for every client and loads certifi's CA bundle into it, ~50 ms of CPU
a client, though these tests speak plain HTTP to loopback servers: a few hundred clients made that
several seconds of the quick loop. The context is the one httpx would build, made once.
"""

from __future__ import annotations

import httpx

TLS = httpx.create_ssl_context()
