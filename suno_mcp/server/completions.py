"""Completions (``completion/complete``): the caller's own task ids for ``suno://tasks/{task_id}``,
and short curated lists for the prompts' arguments.

The SDK calls a completion handler with the reference and the argument only, no request context:
the caller it acts for (team mode) is set by :class:`suno_mcp.server.notices.Notices`, the server
middleware every request passes, in :data:`suno_mcp.domain.tenancy.CURRENT_CALLER`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import mcp_types as types
from mcp.server.mcpserver import MCPServer

from suno_mcp.domain.errors import ConfigurationError, LedgerUnavailableError
from suno_mcp.server.lifespan import AppState, LazyService, acting_for_caller

log = logging.getLogger(__name__)

TASK_TEMPLATE = "suno://tasks/{task_id}"
# The most values one completion holds (the spec's limit is 100; a picker shows far fewer).
MAX_VALUES = 20

USE_CASES = (
    "podcast intro",
    "podcast outro",
    "background for a product video",
    "game loop",
    "game menu theme",
    "YouTube intro",
    "livestream waiting screen",
    "meditation",
    "workout",
    "study focus",
    "ad jingle",
    "film trailer",
    "wedding video",
    "app onboarding",
)
STYLES = (
    "ambient",
    "acoustic",
    "blues",
    "bossa nova",
    "classical",
    "cinematic",
    "country",
    "drum and bass",
    "edm",
    "folk",
    "funk",
    "hip hop",
    "house",
    "indie folk",
    "indie rock",
    "jazz",
    "k-pop",
    "lofi",
    "metal",
    "orchestral",
    "pop",
    "punk",
    "r&b",
    "reggae",
    "rock",
    "soul",
    "synthwave",
    "techno",
    "trap",
)
MOODS = (
    "calm",
    "dark",
    "dreamy",
    "energetic",
    "epic",
    "happy",
    "hopeful",
    "melancholic",
    "mysterious",
    "nostalgic",
    "playful",
    "romantic",
    "tense",
    "uplifting",
    "warm",
)
MINUTES = ("2", "3", "4", "5", "6", "8")

# (prompt, argument) -> its values; a list argument (several words, comma-separated) completes its last word.
PROMPT_VALUES: dict[tuple[str, str], tuple[Sequence[str], bool]] = {
    ("write_a_full_song", "style"): ((*STYLES, *MOODS), True),
    ("write_a_full_song", "target_minutes"): (MINUTES, False),
    ("instrumental_for_use_case", "use_case"): (USE_CASES, False),
    ("instrumental_for_use_case", "mood"): (MOODS, True),
}


def complete_from(values: Sequence[str], typed: str, *, listed: bool = False) -> types.Completion:
    """The values beginning with what was typed (case aside), at most :data:`MAX_VALUES`.

    ``listed``: the argument is a comma-separated list, so the last item is completed and the
    ones before it are kept in front of each value.
    """
    head, comma, last = typed.rpartition(",") if listed else ("", "", typed)
    kept = f"{head}{comma} " if comma else ""
    wanted = last.strip().casefold()
    matches = [kept + value for value in values if value.casefold().startswith(wanted)]
    return _completion(matches[:MAX_VALUES], len(matches))


def _completion(values: list[str], total: int) -> types.Completion:
    return types.Completion(values=values, total=total, has_more=total > len(values))


def register_completions(server: MCPServer[AppState], holder: list[LazyService]) -> None:
    """Register the completion handler; task ids come from the service in ``holder``."""

    async def complete(
        ref: types.PromptReference | types.ResourceTemplateReference,
        argument: types.CompletionArgument,
        context: types.CompletionContext | None,
    ) -> types.Completion | None:
        if isinstance(ref, types.PromptReference):
            found = PROMPT_VALUES.get((ref.name, argument.name))
            return None if found is None else complete_from(found[0], argument.value, listed=found[1])
        if ref.uri != TASK_TEMPLATE or argument.name != "task_id" or not holder:
            return None
        try:
            service = acting_for_caller(await holder[0].get())
            ids, total = await service.task_ids(argument.value, limit=MAX_VALUES)
        except (ConfigurationError, LedgerUnavailableError) as err:
            # No key (team mode), no service or no ledger now: nothing to offer, and no error for it.
            log.info("no task ids to complete: %s", type(err).__name__)
            return None
        return _completion(ids, total)

    # The SDK's decorator carries no annotations; the handler above is typed.
    server.completion()(complete)  # type: ignore[no-untyped-call]
