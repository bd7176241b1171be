"""Behaviour of the sandbox synthesiser: real, deterministic, seamlessly extendable audio."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import math
import os
import struct
import subprocess
import sys
import wave
import zlib
from array import array
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suno_mcp.sandbox.audio import (
    SAMPLE_RATE,
    MusicStyle,
    render_cover_png,
    render_pcm,
    style_from_request,
    to_wav,
)

SONG = style_from_request(
    tags="lofi, chill, sad piano", title="Rain on the window", lyrics="[Verse]\nla la", seed=7
)
# 105 bpm makes a sixteenth exactly 3150 samples, so a bar is exactly 50400 samples (16/7 s).
ALIGNED = MusicStyle(
    tempo_bpm=105,
    key="D",
    mode="major",
    instruments=("guitar", "pad", "bass", "drums"),
    has_lead=True,
    seed=11,
)
BAR_SECONDS = 50400 / SAMPLE_RATE

VARIED_REQUESTS: list[dict[str, Any]] = [
    {"tags": "lofi chill sad piano"},
    {"tags": "edm dance happy synth", "instrumental": True},
    {"tags": "punk rock", "seed": 3},
    {"tags": "ambient dreamy"},
    {"description": "a gospel organ ballad about home"},
    {"tags": "orchestral epic strings", "instrumental": True},
    {"tags": "lullaby music box"},
    {},
]


def samples(pcm: bytes) -> array[int]:
    values = array("h")
    values.frombytes(pcm)
    if sys.byteorder == "big":
        values.byteswap()
    return values


def rms(values: array[int] | list[int]) -> float:
    return math.sqrt(sum(v * v for v in values) / len(values))


def test_rendered_wav_parses_and_has_the_requested_duration() -> None:
    for duration in (0.5, 3.0, 7.3, 12.34567):
        with wave.open(io.BytesIO(to_wav(render_pcm(SONG, duration))), "rb") as wav:
            assert wav.getnchannels() == 1
            assert wav.getsampwidth() == 2
            assert wav.getframerate() == SAMPLE_RATE
            assert wav.getnframes() == round(duration * SAMPLE_RATE)


def test_a_later_stretch_has_the_requested_duration_too() -> None:
    assert len(render_pcm(SONG, 4.2, start_s=61.7)) == 2 * round(4.2 * SAMPLE_RATE)


def test_zero_duration_renders_no_samples() -> None:
    assert render_pcm(SONG, 0.0) == b""


@pytest.mark.parametrize(("duration", "start"), [(-1.0, 0.0), (1.0, -0.5), (math.nan, 0.0), (1.0, math.inf)])
def test_negative_or_non_finite_times_are_rejected(duration: float, start: float) -> None:
    with pytest.raises(ValueError, match="must be a finite number"):
        render_pcm(SONG, duration, start_s=start)


@pytest.mark.parametrize("request_fields", VARIED_REQUESTS)
def test_every_second_of_a_song_is_clearly_audible(request_fields: dict[str, Any]) -> None:
    style = style_from_request(**request_fields)
    audio = samples(render_pcm(style, 45.0))
    for second in range(45):
        chunk = audio[second * SAMPLE_RATE : (second + 1) * SAMPLE_RATE]
        assert rms(chunk) > 500, f"second {second} of {style.describe()} is nearly silent"


@pytest.mark.parametrize("request_fields", VARIED_REQUESTS)
def test_audio_keeps_headroom_below_full_scale(request_fields: dict[str, Any]) -> None:
    style = style_from_request(**request_fields)
    audio = samples(render_pcm(style, 60.0))
    assert max(audio) < 32767
    assert min(audio) > -32767


@pytest.mark.parametrize(
    "split_s",
    [
        0.7,  # inside the first bar
        BAR_SECONDS,  # exactly on a bar line
        2 * BAR_SECONDS,  # where the intro ends and the lead comes in
        2.6,
        5.0,
        12345 / SAMPLE_RATE,  # an arbitrary whole sample
        9.9,
    ],
)
def test_rendering_in_two_pieces_matches_rendering_in_one_go(split_s: float) -> None:
    whole = render_pcm(ALIGNED, 12.0)
    first = render_pcm(ALIGNED, split_s)
    rest = render_pcm(ALIGNED, 12.0 - split_s, start_s=split_s)
    assert first + rest == whole


def test_rendering_in_many_pieces_matches_a_full_song() -> None:
    edges = [0.0, 1.3, 4.0, 4.1, 17.5, 29.9, 45.0, 80.0]
    pieces = [render_pcm(SONG, end - start, start_s=start) for start, end in itertools.pairwise(edges)]
    assert b"".join(pieces) == render_pcm(SONG, 80.0)


@settings(max_examples=25, deadline=None)
@given(split=st.integers(min_value=0, max_value=8 * SAMPLE_RATE))
def test_any_whole_sample_split_point_joins_seamlessly(split: int) -> None:
    total = 8.0
    split_s = split / SAMPLE_RATE
    joined = render_pcm(SONG, split_s, start_s=30.0) + render_pcm(
        SONG, total - split_s, start_s=30.0 + split_s
    )
    assert joined == render_pcm(SONG, total, start_s=30.0)


def test_a_stretch_far_into_the_piece_matches_the_end_of_a_long_render() -> None:
    tail = render_pcm(SONG, 3.0, start_s=200.0)
    assert tail == render_pcm(SONG, 203.0)[-len(tail) :]


def test_same_request_gives_the_same_style_and_identical_bytes() -> None:
    again = style_from_request(
        tags="lofi, chill, sad piano", title="Rain on the window", lyrics="[Verse]\nla la", seed=7
    )
    assert again == SONG
    assert render_pcm(again, 10.0) == render_pcm(SONG, 10.0)
    assert render_cover_png(again) == render_cover_png(SONG)


@pytest.mark.slow  # a fresh Python process
def test_audio_is_identical_in_a_fresh_process_with_a_different_hash_seed() -> None:
    program = (
        "import hashlib\n"
        "from suno_mcp.sandbox.audio import render_pcm, style_from_request\n"
        "style = style_from_request(tags='edm dance happy synth', lyrics='go', seed=42)\n"
        "print(style.seed, hashlib.sha256(render_pcm(style, 6.0, start_s=3.0)).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=env, check=True, timeout=60
    )
    style = style_from_request(tags="edm dance happy synth", lyrics="go", seed=42)
    digest = hashlib.sha256(render_pcm(style, 6.0, start_s=3.0)).hexdigest()
    assert result.stdout.split() == [str(style.seed), digest]


def test_mood_and_genre_words_choose_tempo_mode_and_instruments() -> None:
    calm = style_from_request(tags="lofi chill sad piano")
    lively = style_from_request(tags="edm dance happy synth")
    assert calm.tempo_bpm < 90 < 120 <= lively.tempo_bpm
    assert (calm.mode, lively.mode) == ("minor", "major")
    assert "piano" in calm.instruments
    assert "synth" in lively.instruments
    assert render_pcm(calm, 5.0) != render_pcm(lively, 5.0)


def test_heavy_genres_are_fast_and_ambient_has_no_drums() -> None:
    assert style_from_request(tags="punk metal").tempo_bpm >= 160
    ambient = style_from_request(tags="ambient meditation")
    assert ambient.tempo_bpm <= 76
    assert "drums" not in ambient.instruments


def test_explicit_tempo_and_key_in_the_text_are_obeyed() -> None:
    style = style_from_request(tags="pop, 128 bpm", description="in F# minor, bright and happy")
    assert (style.tempo_bpm, style.key, style.mode) == (128, "F#", "minor")
    assert style_from_request(tags="ballad in Bb major").key == "Bb"


def test_a_minor_setback_in_prose_is_not_read_as_a_key() -> None:
    prose = "a song about a minor setback"
    keys = {style_from_request(description=prose, seed=seed).key for seed in range(12)}
    assert len(keys) > 1
    assert style_from_request(description="a song in a minor", seed=3).key == "A"


def test_seed_and_lyrics_vary_the_piece_for_the_same_tags() -> None:
    base = style_from_request(tags="indie pop", seed=1)
    assert style_from_request(tags="indie pop", seed=2).seed != base.seed
    assert style_from_request(tags="indie pop", lyrics="new words", seed=1).seed != base.seed
    assert render_pcm(base, 4.0) != render_pcm(style_from_request(tags="indie pop", seed=2), 4.0)


def test_instrumental_request_keeps_the_backing_and_drops_the_lead_line() -> None:
    vocal = style_from_request(tags="acoustic folk", lyrics="[Chorus]\nsing it loud", seed=5)
    instrumental = style_from_request(
        tags="acoustic folk", lyrics="[Chorus]\nsing it loud", seed=5, instrumental=True
    )
    assert vocal.has_lead
    assert not instrumental.has_lead
    assert dataclasses.replace(instrumental, has_lead=True) == vocal

    seconds = 30
    with_lead = samples(render_pcm(vocal, seconds))
    without = samples(render_pcm(instrumental, seconds))
    lead = [a - b for a, b in zip(with_lead, without, strict=True)]
    intro_end = next(i for i, v in enumerate(lead) if v)
    assert 1.0 < intro_end / SAMPLE_RATE < 6.0, "the lead line should enter after a short intro"
    line = lead[intro_end:]
    assert rms(line) > 800
    crossings = sum(1 for a, b in itertools.pairwise(line) if (a < 0) != (b < 0))
    crossings_per_second = crossings * SAMPLE_RATE / len(line)
    # A sung-register melody (roughly 200-800 Hz with overtones), not bass rumble and not hiss.
    assert 300 < crossings_per_second < 4000


def test_lead_line_adds_high_frequency_energy() -> None:
    vocal = dataclasses.replace(ALIGNED, has_lead=True)
    instrumental = dataclasses.replace(ALIGNED, has_lead=False)

    def brightness(style: MusicStyle) -> float:
        audio = samples(render_pcm(style, 20.0, start_s=10.0))
        return rms([b - a for a, b in itertools.pairwise(audio)])

    assert brightness(vocal) > 1.1 * brightness(instrumental)


def test_describe_reads_like_a_short_summary() -> None:
    style = MusicStyle(
        tempo_bpm=92, key="A", mode="minor", instruments=("piano", "bass", "drums"), has_lead=True, seed=1
    )
    assert style.describe() == "92 bpm, A minor, piano/bass/drums, lead line"
    assert dataclasses.replace(style, has_lead=False).describe().endswith("instrumental")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tempo_bpm", 10, "tempo_bpm must be between"),
        ("key", "H", "key must be a note name"),
        ("mode", "dorian", "mode must be"),
        ("instruments", ("kazoo",), "unknown instruments"),
    ],
)
def test_invalid_style_values_are_rejected(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(ALIGNED, **{field: value})


def test_a_style_with_only_drums_still_has_harmony_to_hear() -> None:
    drums_only = dataclasses.replace(ALIGNED, instruments=("drums",), has_lead=False)
    audio = samples(render_pcm(drums_only, 6.0))
    assert rms(audio[:SAMPLE_RATE]) > 500


def test_to_wav_rejects_half_a_sample() -> None:
    with pytest.raises(ValueError, match="even number of bytes"):
        to_wav(b"\x00\x00\x00")


def test_cover_is_a_valid_png_of_the_requested_size() -> None:
    png = render_cover_png(SONG, size=48)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    length, tag = struct.unpack(">I4s", png[8:16])
    assert (length, tag) == (13, b"IHDR")
    width, height, depth, colour_type = struct.unpack(">IIBB", png[16:26])
    assert (width, height, depth, colour_type) == (48, 48, 8, 2)
    assert struct.unpack(">I", png[29:33])[0] == zlib.crc32(png[12:29])

    idat_at = png.index(b"IDAT")
    idat_length = struct.unpack(">I", png[idat_at - 4 : idat_at])[0]
    pixels = zlib.decompress(png[idat_at + 4 : idat_at + 4 + idat_length])
    assert len(pixels) == 48 * (1 + 48 * 3)
    assert png.endswith(b"IEND\xaeB`\x82")


def test_cover_colours_follow_the_style() -> None:
    assert render_cover_png(SONG) != render_cover_png(style_from_request(tags="edm dance happy synth"))
    with pytest.raises(ValueError, match="size"):
        render_cover_png(SONG, size=0)
