"""Argument types and rules for the tools, and the text of a rejected argument.

Per-field bounds live in the annotated types below (they also become the tools' JSON
schemas). Rules that involve several fields, or the chosen model, are checked by the
``check_*`` functions, which raise :class:`ArgumentError` naming the field and the fix.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, ValidationError

from suno_mcp.catalog import DESCRIPTION_MAX, LYRICS_PROMPT_MAX, TITLE_MAX, Catalog
from suno_mcp.ids import ID_PATTERN, ID_RULE, is_id

LONGEST_LYRICS = 5000
LONGEST_TAGS = 1000
MAX_CONTINUE_AT = 60 * 60.0


class ArgumentError(ValueError):
    """An argument is wrong; the message names the field and the fix."""


Description = Annotated[
    str | None,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=DESCRIPTION_MAX),
    Field(
        description=f"Inspiration mode: describe the song and Suno writes lyrics and style (max {DESCRIPTION_MAX} "
        "chars). Do not combine with lyrics/tags/title.",
        examples=["a chill lo-fi song about rain on a window"],
    ),
]
Lyrics = Annotated[
    str | None,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=LONGEST_LYRICS),
    Field(
        description="Custom mode: the words to sing; [Verse]/[Chorus] markers allowed. "
        "Max 3000 chars (5000 on v4.5+)."
    ),
]
Tags = Annotated[
    str | None,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=LONGEST_TAGS),
    Field(
        description="Custom mode: comma-separated styles, e.g. 'lo-fi, chill, piano'. "
        "Max 200 chars (1000 on v4.5+).",
        examples=["lo-fi, chill, piano"],
    ),
]
Title = Annotated[
    str | None,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX),
    Field(description=f"Custom mode: the song title (max {TITLE_MAX} chars)."),
]


def _exact_id(value: str | None) -> str | None:
    # The schema's pattern is the portable part of the rule; this is all of it.
    if value is not None and not is_id(value):
        raise ValueError(f"an id is {ID_RULE}")
    return value


_ID = AfterValidator(_exact_id)


Model = Annotated[
    str | None,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    Field(description="Suno model (sent as mv), e.g. chirp-v3-5. Omit for the server default."),
]
TaskId = Annotated[
    str,
    Field(pattern=ID_PATTERN, description="A task id from an earlier result (a clip id works too)."),
    _ID,
]
ClipId = Annotated[
    str,
    Field(pattern=ID_PATTERN, description="A clip id from a task's clips."),
    _ID,
]
OptionalTaskId = Annotated[
    str | None,
    Field(pattern=ID_PATTERN, description="A task id from an earlier result."),
    _ID,
]
OptionalClipId = Annotated[
    str | None,
    Field(pattern=ID_PATTERN, description="A clip id from a task's clips."),
    _ID,
]
ContinueAt = Annotated[
    float,
    Field(
        ge=0,
        le=MAX_CONTINUE_AT,
        description="Second of the clip to continue from (0 to the clip's duration).",
    ),
]
ForceNew = Annotated[
    bool,
    Field(description="Pay for a new request even if an identical recent one can be reused."),
]
LyricsPrompt = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=LYRICS_PROMPT_MAX),
    Field(description="What the lyrics should be about, e.g. 'a lo-fi song about rain'."),
]


def wait_field(default: float, limit: float) -> Any:
    """The wait_seconds argument, bounded by the server's max wait."""
    return Annotated[
        float,
        Field(
            ge=0,
            le=limit,
            description="Most seconds to wait; returns as soon as audio is playable (or final).",
        ),
    ]


def check_model(model: str | None, catalog: Catalog, default: str) -> str:
    """The model to use; an unknown one is refused with the valid names."""
    name = model or default
    if catalog.get(name) is None:
        raise ArgumentError(f"model: unknown model '{name}'. Use one of: {', '.join(catalog.names)}.")
    return name


def check_music(
    *,
    description: str | None,
    lyrics: str | None,
    tags: str | None,
    title: str | None,
    instrumental: bool,
    model: str,
    catalog: Catalog,
) -> None:
    """Exactly one mode; custom mode needs lyrics unless instrumental; the model's text limits."""
    custom = [name for name, value in (("lyrics", lyrics), ("tags", tags), ("title", title)) if value]
    if description and custom:
        raise ArgumentError(
            f"description: use either description (inspiration mode) or {'/'.join(custom)} (custom mode), "
            "not both. Drop one."
        )
    if not description and not custom:
        raise ArgumentError(
            "description: give a description (Suno writes the song) or lyrics with optional tags/title "
            "(custom mode)."
        )
    if custom and not lyrics and not instrumental:
        raise ArgumentError(
            "lyrics: custom mode needs lyrics, or set instrumental=true for music without vocals "
            "(or use description instead)."
        )
    check_limits(lyrics=lyrics, tags=tags, model=model, catalog=catalog)


def check_limits(*, lyrics: str | None, tags: str | None, model: str, catalog: Catalog) -> None:
    """Suno's per-model lyrics and style lengths."""
    spec = catalog.get(model)
    if spec is None:
        return
    if lyrics and len(lyrics) > spec.lyrics_max:
        raise ArgumentError(
            f"lyrics: {len(lyrics)} characters is over {model}'s limit of {spec.lyrics_max}. "
            "Shorten the lyrics or choose a v4.5+ model (5000)."
        )
    if tags and len(tags) > spec.tags_max:
        raise ArgumentError(
            f"tags: {len(tags)} characters is over {model}'s limit of {spec.tags_max}. "
            "Use fewer styles or a v4.5+ model (1000)."
        )


_FIXES = {
    "missing": "it is required",
    "string_too_short": "it must not be empty or only spaces",
    "string_pattern_mismatch": (f"an id is {ID_RULE}; pass the id exactly as a previous tool returned it"),
    "greater_than_equal": "use a value of at least {ge}",
    "greater_than": "use a value above {gt}",
    "less_than_equal": "use a value of at most {le}",
    "less_than": "use a value below {lt}",
    "string_too_long": "shorten it to at most {max_length} characters",
    "string_type": "pass text (a JSON string)",
    "bool_type": "pass true or false",
    "bool_parsing": "pass true or false",
    "float_type": "pass a number",
    "float_parsing": "pass a number",
    "int_type": "pass a whole number",
    "int_parsing": "pass a whole number",
    "finite_number": "pass a finite number",
    "literal_error": "use one of {expected}",
    "enum": "use one of {expected}",
}


def explain(tool: str, err: ValidationError) -> str:
    """One line per bad argument: the field, what was wrong and how to fix it."""
    lines = []
    for item in err.errors(include_url=False):
        field = ".".join(str(p) for p in item["loc"]) or "arguments"
        ctx = item.get("ctx") or {}
        fix = _FIXES.get(item["type"])
        if fix is not None:
            with contextlib.suppress(KeyError, IndexError):
                fix = fix.format(**ctx)
            lines.append(f"{field}: {item['msg']}; {fix}.")
        else:
            lines.append(f"{field}: {item['msg']}.")
    return f"Invalid arguments for {tool}: " + " ".join(lines)


def check_text(**fields: str | None) -> None:
    """Refuse control characters other than newline and tab in free text."""
    for name, value in fields.items():
        if value and any((ord(ch) < 32 and ch not in "\n\r\t") or ord(ch) == 127 for ch in value):
            raise ArgumentError(
                f"{name}: contains control characters; remove them (newlines and tabs are fine)."
            )
