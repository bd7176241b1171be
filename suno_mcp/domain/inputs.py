"""Argument types and rules for the tools, and the text of a rejected argument.

Per-field bounds live in the annotated types below (they also become the tools' JSON
schemas). Rules that involve several fields, or the chosen model, are checked by the
``check_*`` functions, which raise :class:`ArgumentError` naming the field and the fix.
"""

from __future__ import annotations

import contextlib
import ipaddress
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import AfterValidator, Field, StringConstraints, ValidationError

from suno_mcp.domain.catalog import DESCRIPTION_MAX, LYRICS_PROMPT_MAX, TITLE_MAX, Catalog
from suno_mcp.domain.ids import ID_RULE, VENDOR_ID_RULE, is_id, looks_like_vendor_id

LONGEST_LYRICS = 5000
LONGEST_TAGS = 1000
MAX_CONTINUE_AT = 60 * 60.0
URL_MAX = 2048
AUDIO_SUFFIXES = (".mp3", ".wav", ".m4a", ".ogg", ".flac", ".aac")


class ArgumentError(ValueError):
    """An argument is wrong; the message names the field and the fix."""


# What to do about a refused id, wherever it was refused (the schema, or the service for an id
# nobody has seen).
ID_FIX = "pass an id exactly as an earlier result gave it; list_tasks shows them"


Description = Annotated[
    str | None,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=DESCRIPTION_MAX),
    Field(
        description="Describe the song; Suno writes lyrics and style. Not with lyrics/tags/title.",
        examples=["a chill lo-fi song about rain on a window"],
    ),
]
# The "...Text" forms carry the rule without a description: a tool whose description says its
# arguments are as in generate_music uses them, so the words are read once per conversation.
LyricsText = Annotated[
    str | None, StringConstraints(strip_whitespace=True, min_length=1, max_length=LONGEST_LYRICS)
]
Lyrics = Annotated[
    LyricsText,
    Field(
        description="Custom mode: words to sing, [Verse]/[Chorus] allowed; max 3000 chars (5000 on v4.5+)."
    ),
]
TagsText = Annotated[
    str | None, StringConstraints(strip_whitespace=True, min_length=1, max_length=LONGEST_TAGS)
]
Tags = Annotated[
    TagsText,
    Field(
        description="Custom mode: styles, e.g. 'lo-fi, piano'; max 200 chars (1000 on v4.5+).",
        examples=["lo-fi, chill, piano"],
    ),
]
CoverTags = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=LONGEST_TAGS),
    Field(description="The new style, comma-separated (max 200 chars)."),
]
CoverLyrics = Annotated[
    str | None,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=LONGEST_LYRICS),
    Field(description="Words to sing; default: the clip's own."),
]
NegativeTags = Annotated[
    str | None,
    StringConstraints(strip_whitespace=True, max_length=LONGEST_TAGS),
    Field(description="Styles to avoid."),
]
AudioUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=URL_MAX),
    Field(description="Public http(s) URL of an audio file (.mp3, .wav, .m4a, .ogg, .flac, .aac)."),
]
Title = Annotated[str | None, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX)]


def _exact_id(value: str | None) -> str | None:
    # The whole rule, checked here before anything is sent. The schema states none of it: "printable,
    # no spaces" tells a model nothing it would get wrong, and seven copies cost every conversation.
    if value is not None and not is_id(value):
        raise ValueError(f"an id is {ID_RULE}; {ID_FIX}")
    return value


_ID = AfterValidator(_exact_id)


ModelText = Annotated[str | None, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Model = Annotated[ModelText, Field(description="Suno model, e.g. chirp-v3-5; omit for the default.")]
TaskId = Annotated[
    str,
    Field(description="A task id from an earlier result (a clip id works too)."),
    _ID,
]
ClipId = Annotated[
    str,
    Field(description="A clip id from a task's clips."),
    _ID,
]
OptionalTaskId = Annotated[
    str | None,
    Field(description="A task id from an earlier result."),
    _ID,
]
OptionalClipId = Annotated[
    str | None,
    Field(description="A clip id from a task's clips."),
    _ID,
]
ContinueAt = Annotated[
    float,
    Field(
        ge=0,
        le=MAX_CONTINUE_AT,
        description="Second of the clip to continue from.",
    ),
]
ForceNew = Annotated[
    bool,
    Field(description="true: pay again instead of reusing."),
]
LyricsPrompt = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=LYRICS_PROMPT_MAX),
    Field(description="What the lyrics should be about, e.g. 'a lo-fi song about rain'."),
]


def wait_field(default: float, limit: float, *, described: bool = True) -> Any:
    """The wait_seconds argument, bounded by the server's max wait (undescribed for the tools
    whose description says they wait like generate_music)."""
    return Annotated[
        float,
        Field(
            ge=0,
            le=limit,
            description="Most seconds to wait (returns early at a milestone)." if described else None,
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


def check_negative_tags(negative_tags: str | None, *, model: str, catalog: Catalog) -> None:
    """Styles to avoid are bounded like the styles themselves."""
    spec = catalog.get(model)
    if spec is not None and negative_tags and len(negative_tags) > spec.tags_max:
        raise ArgumentError(
            f"negative_tags: {len(negative_tags)} characters is over {model}'s limit of {spec.tags_max}. "
            "Name fewer styles to avoid."
        )


def variant_model(
    model: str | None, catalog: Catalog, default: str, variant: Literal["cover", "upload"]
) -> tuple[str, str]:
    """The base model and the mv that covers (``-tau``) or continues an upload (``-upload``) with it.

    An omitted model is the default when it has that variant, else the first model that has one;
    a named model without one is refused with the models that have it.
    """

    def of(name: str) -> str | None:
        spec = catalog.get(name)
        if spec is None:
            return None
        return spec.cover_variant if variant == "cover" else spec.upload_variant

    having = [m.name for m in catalog.models if of(m.name)]
    what = "cover model (-tau)" if variant == "cover" else "model for continuing uploaded audio (-upload)"
    if model is None:
        name = default if of(default) else next(iter(having), default)
    else:
        name = check_model(model, catalog, default)
    mv = of(name)
    if mv is None:
        fix = f"use {' or '.join(having)}, or omit model" if having else "no model has one"
        raise ArgumentError(f"model: {name} has no documented {what}; {fix}.")
    return name, mv


_PRIVATE_HOSTS = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


def private_host(host: str) -> bool:
    """A host that names this machine or a private network: loopback, private, link-local IPs."""
    name = host.lower().rstrip(".")
    if name in _PRIVATE_HOSTS or name.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        # A bare number is an IPv4 address to most resolvers (http://2130706433/ is 127.0.0.1).
        ip = ipaddress.ip_address(int(name) if name.isdigit() else name)
    except ValueError:
        # Octal or hex spellings (0177.0.0.1, 0x7f.1) are addresses to some resolvers: not a
        # name we can vouch for. Any other name is not resolved here (no network before sending).
        return all(part.isdigit() or part.startswith("0x") for part in name.split("."))
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_upload_url(url: str, *, allow_private: bool) -> str:
    """The URL to upload, or an ArgumentError saying what is wrong with it and how to fix it.

    http(s) only, no credentials in it, a path that looks like audio, and (unless
    ``allow_private``: the sandbox fetches only loopback URLs) a public host.
    """
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ArgumentError("url: contains spaces or control characters; percent-encode them (%20).")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - reading it checks the port is a number
    except ValueError:
        raise ArgumentError(f"url: {url[:80]!r} is not a valid URL; pass a public http(s) link.") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ArgumentError(
            "url: must be an http:// or https:// link to an audio file "
            f"(got {parts.scheme + '://' if parts.scheme else 'no scheme'})."
        )
    if parts.username is not None or parts.password is not None:
        raise ArgumentError(
            "url: must not hold a user name or password (user:pass@host); use a public link that needs none."
        )
    if not host:
        raise ArgumentError("url: has no host name; pass a full link such as https://example.com/song.mp3.")
    suffix = PurePosixPath(unquote(parts.path)).suffix.lower()
    if suffix not in AUDIO_SUFFIXES:
        raise ArgumentError(
            f"url: the path does not look like audio (it should end in {', '.join(AUDIO_SUFFIXES)}); "
            "pass a direct link to the audio file, not a web page."
        )
    if not allow_private and private_host(host):
        raise ArgumentError(
            f"url: {host} is a loopback or private-network address the upstream cannot reach; "
            "upload from a public URL (the sandbox alone fetches local ones)."
        )
    return url


_FIXES = {
    "missing": "it is required",
    "string_too_short": "it must not be empty or only spaces",
    "string_pattern_mismatch": f"an id is {ID_RULE}; {ID_FIX}",
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


def check_unseen_id(field: str, value: str) -> str:
    """``value``, an id the ledger does not know, if it looks like a vendor id; else an ArgumentError.

    The error names ``field``, shows the id with odd characters escaped (a look-alike letter
    or an invisible one shows up as ``\\u....``) and says what an id looks like.
    """
    if not looks_like_vendor_id(value):
        raise ArgumentError(
            f"{field}: {value!a} is not an id this server has seen, and it does not look like one "
            f"(an id is {VENDOR_ID_RULE}); {ID_FIX}."
        )
    return value
