"""The sandbox's rough listening: key signature, tempo and brightness of synthesized music."""

from __future__ import annotations

import pytest

from suno_mcp.sandbox.analysis import (
    brightness,
    correlation,
    estimate_key,
    estimate_tempo,
    pitch_class_profile,
    samples_of,
    scale_of,
)
from suno_mcp.sandbox.audio import render_pcm, style_from_request

STYLES = [
    ("lofi piano", 3),
    ("punk rock", 4),
    ("synthwave", 5),
    ("gospel organ", 6),
    ("folk guitar", 7),
]


@pytest.mark.parametrize(("tags", "seed"), STYLES)
def test_key_signature_and_tempo_of_a_rendered_song_are_heard_correctly(tags: str, seed: int) -> None:
    style = style_from_request(tags=tags, seed=seed)
    samples = samples_of(render_pcm(style, 24.0))

    assert scale_of(*estimate_key(samples)) == scale_of(style.key, style.mode)
    # Tempo is folded into 80..160 bpm: half or double the tempo is the same pulse.
    expected = style.tempo_bpm * 2 if style.tempo_bpm < 80 else style.tempo_bpm
    expected = expected / 2 if expected >= 160 else expected
    assert estimate_tempo(samples) == pytest.approx(expected, rel=0.01)


def test_silence_has_no_pitch_no_tempo_and_no_brightness() -> None:
    silence = samples_of(bytes(2 * 22050 * 12))
    assert pitch_class_profile(silence) == [0.0] * 12
    assert estimate_tempo(silence) == 0.0
    assert brightness(silence) == 0.0


def test_audio_too_short_for_a_beat_has_no_tempo() -> None:
    style = style_from_request(tags="house", seed=1)
    assert estimate_tempo(samples_of(render_pcm(style, 2.0))) == 0.0


def test_pitch_class_profile_sums_to_one_and_peaks_in_the_scale() -> None:
    style = style_from_request(tags="ballad, in D major", seed=2)
    profile = pitch_class_profile(samples_of(render_pcm(style, 10.0)))
    assert sum(profile) == pytest.approx(1.0)
    top_seven = sorted(range(12), key=lambda pc: -profile[pc])[:7]
    assert set(top_seven) == scale_of("D", "major")


def test_scale_of_spells_major_and_relative_minor_alike() -> None:
    assert scale_of("C", "major") == scale_of("A", "minor") == frozenset({0, 2, 4, 5, 7, 9, 11})
    assert scale_of("Eb", "minor") == frozenset({3, 5, 6, 8, 10, 11, 1})


def test_correlation_of_flat_or_mismatched_sequences() -> None:
    assert correlation([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]) == pytest.approx(1.0)
    assert correlation([1.0, 1.0], [1.0, 2.0]) == 0.0
    with pytest.raises(ValueError, match="same length"):
        correlation([1.0], [1.0, 2.0])
