"""The spending question: before a paid request, the person is asked through the client.

The service calls the confirm callback (:func:`confirmer`) of the tool call that is paying. Older
connections are asked with an elicitation request in the middle of the call; from protocol
revision 2026-07-28 on, the call itself returns an InputRequiredResult (raised as
:class:`AskFirst` through the service, answered by :class:`suno_mcp.server.app.SunoServer`) and the
client calls again with the answer.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.server.elicitation import AcceptedElicitation, render_elicitation_schema
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field

from suno_mcp.domain.spending import Confirm, Decision, Question
from suno_mcp.server.lifespan import ToolContext

# The key of the spending question in an InputRequiredResult's input_requests.
CONFIRM_KEY = "suno_mcp_confirm_spend"
# From this protocol revision on, a tool asks the client through InputRequiredResult rather than a
# request sent in the middle of the call.
INPUT_REQUIRED_VERSION = "2026-07-28"


class SpendConfirmation(BaseModel):
    """The form of the spending question: one box, ticked."""

    send: bool = Field(default=True, description="Send this paid request.")


class AskFirst(Exception):
    """Raised through the service by the confirm callback when the question has not been asked yet
    (2026-07-28 connections): carries the InputRequiredResult that asks it."""

    def __init__(self, result: types.InputRequiredResult) -> None:
        super().__init__("the user must be asked first")
        self.result = result


def _can_elicit(ctx: ToolContext) -> bool:
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    # A bare `elicitation: {}` (before modes existed) means form support; url-only does not.
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def _decision(action: str, content: dict[str, Any] | None) -> Decision:
    if action == "accept":
        return "decline" if (content or {}).get("send") is False else "accept"
    return "decline" if action == "decline" else "cancel"


def confirmer(ctx: ToolContext) -> Confirm:
    """The service's confirm callback for this tool call: asks the person through elicitation."""

    async def confirm(question: Question) -> Decision:
        if not _can_elicit(ctx):
            return "unsupported"
        version = ctx.protocol_version
        if version is not None and is_version_at_least(version, INPUT_REQUIRED_VERSION):
            answer = (ctx.input_responses or {}).get(CONFIRM_KEY)
            # The answer counts only for the question asked: the same request, the same budget state.
            if isinstance(answer, types.ElicitResult) and ctx.request_state == question.key:
                return _decision(answer.action, answer.content)
            ask = types.ElicitRequest(
                params=types.ElicitRequestFormParams(
                    message=question.message(), requested_schema=render_elicitation_schema(SpendConfirmation)
                )
            )
            raise AskFirst(
                types.InputRequiredResult(input_requests={CONFIRM_KEY: ask}, request_state=question.key)
            )
        if not ctx.session.can_send_request:
            return "unsupported"
        try:
            result = await ctx.elicit(question.message(), SpendConfirmation)
        except ValueError:
            return "cancel"  # accepted with an answer we cannot read: not an explicit yes
        if isinstance(result, AcceptedElicitation):
            return "accept" if result.data.send else "decline"
        return _decision(result.action, None)

    return confirm
