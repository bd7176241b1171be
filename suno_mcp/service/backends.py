"""How the server gets its service: against the real vendor, or against the sandbox.

The sandbox backend starts the local sandbox in-process on a free loopback port and
points the service at it, with the poll schedule scaled to the sandbox's speed.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio.to_thread
from pydantic import SecretStr

from suno_mcp.settings import Settings

if TYPE_CHECKING:
    from suno_mcp.service.core import SunoService

# The service and the sandbox are imported when the backend opens (on the first tool call),
# not when the server starts: that keeps httpx and starlette's server side out of start-up.
# They are imported by a worker thread: 100 ms and more of module loading would otherwise
# stall every other call the loop is serving (a ping, a tools/list) behind the first tool call.
SERVICE_MODULES = ("suno_mcp.service.wiring",)
SANDBOX_MODULES = ("suno_mcp.service.wiring", "suno_mcp.sandbox.runner", "suno_mcp.sandbox.state")


async def _import_off_the_loop(names: tuple[str, ...]) -> None:
    for name in names:
        await anyio.to_thread.run_sync(importlib.import_module, name)


# The key the service sends to its own sandbox (which accepts any non-empty key); in team mode each
# caller's own key is sent instead.
SANDBOX_KEY = "sandbox-key"
DEFAULT_SANDBOX_SPEED = 10.0


@asynccontextmanager
async def upstream_backend(settings: Settings) -> AsyncIterator[SunoService]:
    """The service against GPTPROTO_BASE_URL with the configured key."""
    await _import_off_the_loop(SERVICE_MODULES)
    from suno_mcp.service.wiring import open_service

    async with open_service(settings) as service:
        yield service


@dataclass(frozen=True)
class SandboxOptions:
    """How the embedded sandbox runs.

    ``profile`` changes how long the sandbox takes without telling the service: the poll
    schedule still expects the ``steady`` times, as it would expect the vendor's usual ones.
    """

    speed: float = DEFAULT_SANDBOX_SPEED
    faults: str = ""
    seed: int = 0
    clip_seconds: float = 60.0
    profile: str = "steady"
    rate_limit_rps: float | None = None

    def check(self) -> None:
        """Raise ValueError for options the sandbox would refuse (imports the sandbox)."""
        from suno_mcp.sandbox.state import SandboxConfig

        SandboxConfig(
            speed=self.speed, faults=self.faults, profile=self.profile, rate_limit_rps=self.rate_limit_rps
        )


def sandbox_backend(
    options: SandboxOptions | None = None,
) -> Callable[[Settings], AbstractAsyncContextManager[SunoService]]:
    """A backend factory that runs the sandbox for the server's lifetime."""
    opts = options or SandboxOptions()

    @asynccontextmanager
    async def backend(settings: Settings) -> AsyncIterator[SunoService]:
        await _import_off_the_loop(SANDBOX_MODULES)
        from suno_mcp.engine.poller import Timing
        from suno_mcp.sandbox.runner import run_sandbox
        from suno_mcp.sandbox.state import SandboxConfig
        from suno_mcp.service.wiring import open_service

        config = SandboxConfig(
            speed=opts.speed,
            faults=opts.faults,
            seed=opts.seed,
            clip_seconds=opts.clip_seconds,
            profile=opts.profile,
            rate_limit_rps=opts.rate_limit_rps,
        )
        async with run_sandbox(config) as sandbox:
            # In team mode the callers' own keys go to the sandbox (it takes any non-empty key, and
            # keeps each key's tasks apart as the vendor keeps accounts): the service has none.
            key = None if settings.team_mode else SecretStr(SANDBOX_KEY)
            local = settings.model_copy(update={"base_url": sandbox.url, "api_key": key, "sandbox": True})
            timing = Timing(
                preview_s=config.preview_after_s,
                complete_s=config.complete_after_s,
                lyrics_s=config.lyrics_after_s,
            ).scaled(config.speed)
            async with open_service(local, timing=timing, sandbox=True) as service:
                yield service

    return backend
