"""Cover versions: the same song played in another style (``task: "cover"`` on ``/suno/generate``).

The vendor's request (scenario 7) is a generate body with ``task: "cover"``, ``cover_clip_id``,
a cover model (``mv`` ending in ``-tau``, e.g. ``chirp-v3-5-tau``), ``prompt`` (lyrics),
``tags``, ``negative_tags``, ``title``, ``generation_type: "TEXT"`` and the continuation and infill
fields as null. Its answer is the ordinary generate batch.

What makes a sandbox cover the same song: every stretch of the source keeps its style's key, mode
and seed, and the seed is what picks the chord progression, the bass figure and the melody. What
makes it a cover: the tempo and the instruments come from the new tags (less any instrument the
negative tags name), and the vocal line follows the cover's lyrics. The cover keeps the source's
bars, so at another tempo it lasts longer or shorter in proportion; an uploaded stretch is played
from the style the sandbox heard in it (see analysis.py).

Sandbox choices, not vendor facts: a cover's ``metadata`` carries ``task: "cover"`` and
``cover_clip_id`` (its ``history`` stays null, as a cover continues nothing); a model without the
``-tau`` suffix is refused, so a client that forgets it finds out here; an empty ``prompt`` sings
the source's lyrics; ``generation_type`` is type-checked and otherwise not read.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from suno_mcp.sandbox.audio import SAMPLE_RATE, bar_seconds, instruments_named, style_from_request
from suno_mcp.sandbox.state import (
    CLIP_DEFAULT_MODEL,
    CONTENT_POLICY_TRIGGER,
    Clip,
    MusicRequest,
    Phase,
    SandboxError,
    SandboxState,
    Segment,
    content_policy_error,
)

COVER_TASK = "cover"
COVER_SUFFIX = "-tau"
DEFAULT_COVER_MODEL = CLIP_DEFAULT_MODEL + COVER_SUFFIX
#: The name covers are counted under in ``created_by_endpoint`` (requests count under ``generate``).
COVER_ENDPOINT = "cover"


@dataclasses.dataclass(frozen=True)
class CoverRequest:
    """The cover-only fields of a generate body, already type-checked."""

    cover_clip_id: str
    negative_tags: str = ""


def _invalid(message: str) -> SandboxError:
    return SandboxError(400, message, "invalid_request_error")


def check_cover_fields(task: str | None, cover_clip_id: str | None) -> bool:
    """Whether a generate body asks for a cover; refuses a half-made cover request."""
    if task == COVER_TASK and not cover_clip_id:
        raise _invalid('Invalid request: task "cover" needs cover_clip_id, the id of the clip to cover')
    if cover_clip_id and task != COVER_TASK:
        raise _invalid('Invalid request: cover_clip_id is only read with task: "cover"')
    return task == COVER_TASK


def _source(state: SandboxState, clip_id: str, account: str) -> Clip:
    source = state.clip_for(clip_id, account)
    if source is None:
        raise SandboxError(404, f"Clip not found: {clip_id}", "not_found_error")
    phase = state.clip_phase(source)
    if phase is Phase.FAILED:
        raise _invalid(f"Clip {clip_id} failed and has no audio to cover")
    if phase is not Phase.COMPLETE:
        raise _invalid(f"Clip {clip_id} is not complete yet; it can be covered once it is complete")
    return source


def _check_model(mv: str) -> None:
    if not mv.endswith(COVER_SUFFIX):
        raise _invalid(
            f"Invalid mv for a cover: {mv!r} is not a cover model; use the model name with the "
            f"-tau suffix (e.g. mv: {DEFAULT_COVER_MODEL})"
        )


def _whole_samples(seconds: float) -> float:
    # Segment edges on whole samples keep the stretches of a cover joining sample-exactly.
    return round(seconds * SAMPLE_RATE) / SAMPLE_RATE


def cover_segments(
    source: Clip, *, tempo_bpm: int, instruments: tuple[str, ...], has_lead: bool
) -> tuple[Segment, ...]:
    """The source's stretches re-played at ``tempo_bpm`` on ``instruments``, bar for bar."""
    out = []
    for seg in source.segments:
        style = dataclasses.replace(
            seg.style, tempo_bpm=tempo_bpm, instruments=instruments, has_lead=has_lead
        )
        ratio = bar_seconds(style) / bar_seconds(seg.style)
        out.append(
            Segment(style, _whole_samples(seg.start_s * ratio), _whole_samples(seg.duration_s * ratio))
        )
    return tuple(out)


def _fields(request: MusicRequest, cover: CoverRequest, source: Clip, seed: int) -> dict[str, Any]:
    lyrics = request.prompt or source.prompt
    instrumental = not lyrics.strip() if request.make_instrumental is None else request.make_instrumental
    title = request.title or source.title
    # The new tags decide tempo and instruments; the seed varies them between the two clips.
    target = style_from_request(
        tags=request.tags, lyrics=lyrics, title=title, instrumental=instrumental, seed=seed
    )
    avoid = instruments_named(cover.negative_tags)
    instruments = tuple(name for name in target.instruments if name not in avoid)
    return {
        "title": title,
        "tags": request.tags or source.tags,
        "prompt": lyrics,
        "instrumental": instrumental,
        "segments": cover_segments(
            source, tempo_bpm=target.tempo_bpm, instruments=instruments, has_lead=not instrumental
        ),
        "cover_of": source.id,
    }


def create_cover(
    state: SandboxState,
    request: MusicRequest,
    cover: CoverRequest,
    *,
    body: dict[str, Any],
    account: str = "",
) -> tuple[str, list[Clip]]:
    """Accept a cover submit on the clip API: the batch id and its two clips (of ``account``,
    which must own the clip it covers)."""
    if request.continue_clip_id or request.continue_at is not None:
        raise _invalid(
            "Invalid request: a cover continues nothing; send continue_clip_id and continue_at as null"
        )
    if request.infill_start_s is not None or request.infill_end_s is not None:
        raise _invalid("Invalid request: a cover has no infill; send infill_start_s and infill_end_s as null")
    mv = request.mv or DEFAULT_COVER_MODEL
    _check_model(mv)
    if CONTENT_POLICY_TRIGGER in cover.negative_tags.casefold():
        raise content_policy_error()
    source = _source(state, cover.cover_clip_id, account)
    request = dataclasses.replace(request, mv=mv)
    return state.create_music(
        request,
        endpoint="generate",
        body=body,
        fields_for=lambda seed: _fields(request, cover, source, seed),
        created_as=COVER_ENDPOINT,
        account=account,
    )


def cover_metadata(clip: Clip) -> dict[str, Any]:
    """The metadata keys a cover adds (a sandbox choice: the vendor documents none)."""
    if clip.cover_of is None:
        return {}
    return {"task": COVER_TASK, "cover_clip_id": clip.cover_of}
