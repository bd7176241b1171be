"""Rough listening for the sandbox: key, tempo and brightness of 16-bit mono PCM, stdlib only.

The sandbox needs this in one place: an uploaded song has no style, so the continuation of an
upload is synthesized in the key and at the tempo heard here. Tests use the same functions to
check that a cover sounds like its source. The estimates are deliberately simple:

* Pitch classes: a windowed DFT evaluated at the frequency of every note from C3 to B6, on a
  signal decimated to a quarter of the sample rate (plenty for those notes), summed per class.
* Key: the seven-note major scale that holds the most of that energy gives the key signature;
  whether its tonic or its relative minor is the key is decided by the Krumhansl-Kessler
  profiles. The signature is reliable; major against relative minor is a guess for music that,
  like the sandbox's, never cadences on its tonic.
* Tempo: the autocorrelation of an onset envelope (rises in short-time energy), summed over one,
  two and four beats so that the beat's whole family of periods counts, then folded into
  80..160 bpm: half or double the tempo is the same pulse, and which of them a listener would
  tap is not something an autocorrelation can tell.
* Brightness: energy of the first difference over energy of the signal, which grows with the
  spectral centroid (``(2 sin(pi f / rate))**2`` for a pure tone of ``f`` Hz).

None of this is a music-information-retrieval library; it is enough for synthesized sandbox music
and for plain recordings with a clear beat and tonal centre.
"""

from __future__ import annotations

import functools
import itertools
import math
from array import array
from collections.abc import Callable, Sequence
from operator import mul, sub

from suno_mcp.sandbox.audio import KEY_NAMES, SAMPLE_RATE

_DECIMATE = 4
_CHROMA_RATE = SAMPLE_RATE / _DECIMATE
_FRAME = 2048  # ~0.37 s at the decimated rate: half a semitone of resolution at C3
_LOW_MIDI = 48
_HIGH_MIDI = 96
_DEFAULT_FRAMES = 32
_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)
_RELATIVE_MINOR = 9

# Krumhansl-Kessler key profiles, tonic first.
_MAJOR_PROFILE = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
_MINOR_PROFILE = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)

_ONSET_HOP = 128  # ~5.8 ms; the four-beat lag refines the period to well under 1%
_MIN_BPM = 80.0
_MAX_BPM = 160.0
_BEAT_MULTIPLES = (1, 2, 4)


def samples_of(pcm: bytes) -> array[int]:
    """16-bit little-endian mono PCM as an array of ints."""
    samples = array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    return samples


def pitch_class_profile(
    samples: Sequence[int], start: int = 0, end: int | None = None, *, frames: int = _DEFAULT_FRAMES
) -> list[float]:
    """Energy per pitch class (C first) of ``samples[start:end]``, normalised to sum 1.

    At most ``frames`` analysis frames are spread evenly over the stretch; a stretch shorter
    than one frame is analysed as one zero-padded frame. Silence gives twelve zeros.
    """
    stop = len(samples) if end is None else min(end, len(samples))
    low = _decimated(samples, max(0, start), stop)
    if not low:
        return [0.0] * 12
    if len(low) < _FRAME:
        low = [*low, *([0.0] * (_FRAME - len(low)))]
    count = max(1, min(frames, len(low) // _FRAME))
    span = len(low) - _FRAME
    offsets = [round(span * i / max(1, count - 1)) for i in range(count)] if count > 1 else [span // 2]
    profile = [0.0] * 12
    for offset in offsets:
        frame = low[offset : offset + _FRAME]
        for midi, (cos_table, sin_table) in _note_tables().items():
            re = sum(map(mul, frame, cos_table))
            im = sum(map(mul, frame, sin_table))
            profile[midi % 12] += math.sqrt(re * re + im * im)
    total = sum(profile)
    return [p / total for p in profile] if total > 0 else profile


def estimate_key(samples: Sequence[int]) -> tuple[str, str]:
    """The most likely key of the audio as ``(name, mode)``, e.g. ``("F#", "minor")``."""
    profile = pitch_class_profile(samples)
    tonic = max(range(12), key=lambda t: sum(profile[(t + d) % 12] for d in _MAJOR_SCALE))
    relative = (tonic + _RELATIVE_MINOR) % 12
    major = correlation(profile, [_MAJOR_PROFILE[(pc - tonic) % 12] for pc in range(12)])
    minor = correlation(profile, [_MINOR_PROFILE[(pc - relative) % 12] for pc in range(12)])
    return (KEY_NAMES[tonic], "major") if major >= minor else (KEY_NAMES[relative], "minor")


def scale_of(key: str, mode: str) -> frozenset[int]:
    """The pitch classes (C = 0) of a natural major or minor scale: a key's signature."""
    tonic = KEY_NAMES.index(key)
    steps = _MAJOR_SCALE if mode == "major" else _MINOR_SCALE
    return frozenset((tonic + step) % 12 for step in steps)


def estimate_tempo(samples: Sequence[int]) -> float:
    """The tempo in beats per minute, folded into 80..160; 0.0 for audio too short or without a beat."""
    rate = SAMPLE_RATE / _ONSET_HOP
    envelope = _onset_envelope(samples)
    longest = math.ceil(60.0 * rate / _MIN_BPM)
    top = max(_BEAT_MULTIPLES)
    if len(envelope) < 2 * top * longest:
        return 0.0
    mean = sum(envelope) / len(envelope)
    centred = [v - mean for v in envelope]
    cache: dict[int, float] = {}

    def autocorrelation(lag: int) -> float:
        value = cache.get(lag)
        if value is None:
            value = cache[lag] = sum(map(mul, centred[lag:], centred)) / (len(centred) - lag)
        return value

    def family(lag: int) -> float:
        # The best of three neighbouring lags, because a beat rarely falls on a whole hop.
        return sum(max(map(autocorrelation, (k * lag - 1, k * lag, k * lag + 1))) for k in _BEAT_MULTIPLES)

    shortest = math.floor(60.0 * rate / _MAX_BPM)
    beat = max(range(shortest, longest + 1), key=family)
    if family(beat) <= 0:
        return 0.0
    # The peak near four beats pins the period down four times as finely as the beat's own.
    span = range(top * beat - top, top * beat + top + 1)
    period = _refine(autocorrelation, max(span, key=autocorrelation)) / top
    bpm = 60.0 * rate / period
    while bpm < _MIN_BPM:
        bpm *= 2
    while bpm >= _MAX_BPM:
        bpm /= 2
    return bpm


def brightness(samples: Sequence[int]) -> float:
    """Energy of the first difference over the signal's energy: higher means a brighter sound."""
    energy = sum(map(mul, samples, samples))
    if energy == 0:
        return 0.0
    diff = list(map(sub, samples[1:], samples[:-1]))
    return float(sum(map(mul, diff, diff))) / float(energy)


def correlation(a: Sequence[float], b: Sequence[float]) -> float:
    """Pearson correlation of two equally long sequences (0.0 when either is flat)."""
    if len(a) != len(b) or not a:
        raise ValueError("correlation needs two non-empty sequences of the same length")
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    da = [x - mean_a for x in a]
    db = [y - mean_b for y in b]
    norm = math.sqrt(sum(map(mul, da, da)) * sum(map(mul, db, db)))
    return sum(map(mul, da, db)) / norm if norm > 0 else 0.0


def _decimated(samples: Sequence[int], start: int, stop: int) -> list[float]:
    # A four-sample mean is a crude low-pass, but what it lets alias is noise (drums), not notes.
    stop -= (stop - start) % _DECIMATE
    if stop <= start:
        return []
    parts = [samples[start + i : stop : _DECIMATE] for i in range(_DECIMATE)]
    return [sum(group) / (_DECIMATE * 32768.0) for group in zip(*parts, strict=True)]


@functools.cache
def _note_tables() -> dict[int, tuple[list[float], list[float]]]:
    hann = [0.5 - 0.5 * math.cos(2 * math.pi * n / (_FRAME - 1)) for n in range(_FRAME)]
    tables = {}
    for midi in range(_LOW_MIDI, _HIGH_MIDI):
        omega = 2 * math.pi * 440.0 * 2 ** ((midi - 69) / 12) / _CHROMA_RATE
        cos_table = [w * math.cos(omega * n) for n, w in enumerate(hann)]
        sin_table = [w * math.sin(omega * n) for n, w in enumerate(hann)]
        tables[midi] = (cos_table, sin_table)
    return tables


def _onset_envelope(samples: Sequence[int]) -> list[float]:
    energies = []
    for start in range(0, len(samples) - _ONSET_HOP + 1, _ONSET_HOP):
        block = samples[start : start + _ONSET_HOP]
        energies.append(sum(map(mul, block, block)) / _ONSET_HOP)
    # Only rises matter: a beat is where energy arrives, not where a note fades. A light
    # smoothing keeps a beat that straddles two hops from splitting its peak.
    rises = [max(0.0, b - a) for a, b in itertools.pairwise(energies)]
    return [(a + 2 * b + c) / 4 for a, b, c in zip(rises, rises[1:], rises[2:], strict=False)]


def _refine(score: Callable[[int], float], lag: int) -> float:
    """A fractional lag from the parabola through the peak and its neighbours."""
    left, centre, right = score(lag - 1), score(lag), score(lag + 1)
    denominator = left - 2 * centre + right
    if denominator >= 0:
        return float(lag)
    return lag + 0.5 * (left - right) / denominator
