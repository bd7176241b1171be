"""A local, offline stand-in for gptproto's Suno API that makes real (synthesized) audio.

It speaks both endpoint families, follows Suno's clip lifecycle on a speed-scalable clock, and
misbehaves on demand (rate limits, 5xx, slow or dropped responses, broken bodies, failed clips)
so the client can be tested against everything the real upstream does. It imports nothing from
the rest of suno_mcp.

    async with run_sandbox(SandboxConfig(speed=100)) as sandbox:
        ...  # point the client at sandbox.url; read sandbox.state.stats
"""

from suno_mcp.sandbox.app import build_app
from suno_mcp.sandbox.faults import ENDPOINTS, FAULT_KINDS, parse_fault_spec
from suno_mcp.sandbox.runner import SandboxHandle, run_sandbox, serve_forever
from suno_mcp.sandbox.state import (
    CONTENT_POLICY_TRIGGER,
    SandboxConfig,
    SandboxState,
    SandboxStats,
    account_of,
    fingerprint,
)

__all__ = [
    "CONTENT_POLICY_TRIGGER",
    "ENDPOINTS",
    "FAULT_KINDS",
    "SandboxConfig",
    "SandboxHandle",
    "SandboxState",
    "SandboxStats",
    "account_of",
    "build_app",
    "fingerprint",
    "parse_fault_spec",
    "run_sandbox",
    "serve_forever",
]
