"""How a tool body runs a service call: the service acting for this call's caller, progress and
the spending question wired in, and every domain error turned into a tool error whose text says
what to do next (the one place that mapping is made).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import mcp_types as types
from mcp.server.mcpserver.exceptions import ToolError

from suno_mcp.domain.errors import AuthenticationError, SunoError
from suno_mcp.domain.inputs import ArgumentError
from suno_mcp.domain.spending import CURRENT_CONFIRM
from suno_mcp.domain.tenancy import CURRENT_CALLER
from suno_mcp.server.confirm import confirmer
from suno_mcp.server.lifespan import ToolContext, tool_service
from suno_mcp.server.shaping import ProgressReport, progress_reporter, tool_result
from suno_mcp.server.texts import error_text

if TYPE_CHECKING:
    from suno_mcp.service.core import Outcome, SunoService

T = TypeVar("T")


# Team mode: the caller's own key was refused upstream (not the server's: it has none).
CALLER_KEY_REJECTED = (
    "The gptproto key this request sent (its Authorization: Bearer header) was rejected by gptproto "
    "({detail}): it is wrong, expired or disabled. Fix the header in your MCP client's entry for this "
    "server and call again. Nothing was charged."
)


async def run_call(call: Callable[[], Awaitable[T]]) -> T:
    """Run a service call, turning our errors into tool errors the model can act on."""
    try:
        return await call()
    except ArgumentError as err:
        raise ToolError(str(err)) from err
    except AuthenticationError as err:
        if CURRENT_CALLER.get() is not None:  # team mode: the key was the caller's, not the server's
            raise ToolError(CALLER_KEY_REJECTED.format(detail=err.message)) from err
        raise ToolError(error_text(err)) from err
    except SunoError as err:
        raise ToolError(error_text(err)) from err


async def answer(
    ctx: ToolContext, call: Callable[[SunoService, ProgressReport], Awaitable[Outcome]]
) -> types.CallToolResult:
    """Open the service, run one of its task calls with progress, and shape the result."""
    service = await tool_service(ctx)
    progress = progress_reporter(ctx)
    # Every paid submit of this call asks the person through this call's client.
    token = CURRENT_CONFIRM.set(confirmer(ctx))
    try:
        outcome = await run_call(lambda: call(service, progress))
    finally:
        CURRENT_CONFIRM.reset(token)
    return await tool_result(service, outcome)
