"""Offline music synthesis for the sandbox: real, listenable audio from a text prompt, stdlib only.

A style (tempo, key, mode, instruments, lead or not, seed) describes an endless piece: two intro bars,
then a 16-bar cycle of verse (8 bars) and chorus (8 bars) over a four-chord progression. Every bar is a
pure function of the style and its absolute index, so any stretch of the piece can be rendered on its
own and stretches join sample-exactly; that is what lets the sandbox extend songs and concatenate them.

Speed without numpy comes from two habits:

* Music repeats. Only ~18 distinct bars exist per style, and within them only a few dozen distinct notes.
  Each note and each bar is rendered once and cached; long audio is a join of cached bar bytes.
* Mixing happens on big integers. Every layer of a bar is encoded as 32-bit little-endian lanes holding
  ``sample + 65536``; adding the layers as Python ints adds every lane at C speed, lanes never carry into
  each other (all positive, far below 2**32), and the low 16 bits of each lane are exactly the 16-bit
  two's complement of the mixed sample because the biases sum to a multiple of 65536.

Clipping is impossible by construction: waveforms and envelopes are bounded by 1 and the layer gains of a
style are scaled so that their worst-case sum stays below full scale.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import json
import math
import random
import re
import struct
import sys
import zlib
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate, repeat
from operator import add, mul, sub

SAMPLE_RATE = 22050

INSTRUMENTS: tuple[str, ...] = (
    "piano",
    "guitar",
    "synth",
    "strings",
    "organ",
    "bells",
    "pad",
    "bass",
    "drums",
)
"""Every instrument name a :class:`MusicStyle` may use, in the order styles list them."""

_STEPS_PER_BAR = 16
_INTRO_BARS = 2
_CYCLE_BARS = 16
_BARS_PER_PHRASE = 4
_FULL_SCALE = 32767
# Leaves room for per-lane rounding (at most half a unit per layer) on top of the worst-case sum.
_HEADROOM = 0.97
_LANE_BIAS = 1 << 16
_SILENT_LANE = _LANE_BIAS.to_bytes(4, "little")
_ROUNDING_MAGIC = 1.5 * 2.0**52
_TWO_PI = 2.0 * math.pi
_NYQUIST_GUARD_HZ = 9500.0

_KEY_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_NATURAL_PITCH = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
}
# Scale degrees (0 = tonic). Diminished triads are left out because they sound wrong looped.
_PROGRESSIONS: dict[str, tuple[tuple[int, int, int, int], ...]] = {
    "major": ((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 5, 4)),
    "minor": ((0, 5, 2, 6), (0, 3, 5, 6), (0, 6, 5, 6), (0, 5, 3, 4)),
}

_SUSTAINED = ("pad", "strings", "organ")
_HARMONY = ("piano", "guitar", "synth", "strings", "organ", "bells", "pad")


@dataclass(frozen=True)
class _Voice:
    partials: tuple[float, ...]
    attack_s: float
    decay_s: float
    sustain: float
    release_s: float
    gain: float
    layers: int = 1
    formants: bool = False


_VOICES: dict[str, _Voice] = {
    "piano": _Voice((1.0, 0.45, 0.3, 0.15, 0.1, 0.05), 0.004, 0.4, 0.15, 0.06, 0.17),
    "guitar": _Voice((1.0, 0.7, 0.45, 0.3, 0.2, 0.12, 0.08), 0.003, 0.35, 0.12, 0.05, 0.08, layers=3),
    "synth": _Voice(tuple(1.0 / k for k in range(1, 11)), 0.005, 0.18, 0.35, 0.04, 0.13),
    "strings": _Voice(tuple(0.8 / k for k in range(1, 9)), 0.15, 0.0, 1.0, 0.1, 0.07, layers=3),
    "organ": _Voice((1.0, 0.8, 0.6, 0.5, 0.0, 0.3, 0.0, 0.25), 0.01, 0.0, 1.0, 0.05, 0.06, layers=3),
    "bells": _Voice((1.0, 0.0, 0.4, 0.2, 0.0, 0.15), 0.002, 0.9, 0.06, 0.1, 0.11),
    "pad": _Voice((1.0, 0.25, 0.1), 0.12, 0.0, 1.0, 0.1, 0.07, layers=3),
    "bass": _Voice((1.0, 0.5, 0.25, 0.1), 0.005, 0.25, 0.55, 0.03, 0.24),
    "lead": _Voice(
        (1.0, 0.55, 0.35, 0.22, 0.14, 0.09, 0.06, 0.04), 0.03, 0.2, 0.8, 0.06, 0.22, formants=True
    ),
}
_DRUM_GAINS = {"kick": 0.26, "snare": 0.16, "hat": 0.06}
_HARMONY_LOW_MIDI = {
    "piano": 57,
    "guitar": 52,
    "synth": 60,
    "strings": 55,
    "organ": 50,
    "bells": 72,
    "pad": 52,
}

# Patterns are (start step, length in steps, tone). Bass tones: R root, F fifth, O octave.
_BASS_VERSE: tuple[tuple[tuple[int, int, str], ...], ...] = (
    ((0, 6, "R"), (6, 2, "R"), (8, 6, "R"), (14, 2, "F")),
    ((0, 4, "R"), (4, 4, "O"), (8, 4, "R"), (12, 4, "F")),
    ((0, 3, "R"), (3, 3, "R"), (6, 2, "F"), (8, 3, "R"), (11, 3, "R"), (14, 2, "O")),
)
_BASS_CHORUS = (
    (0, 2, "R"),
    (2, 2, "R"),
    (4, 2, "O"),
    (6, 2, "R"),
    (8, 2, "R"),
    (10, 2, "F"),
    (12, 2, "O"),
    (14, 2, "F"),
)
_BASS_WHOLE = ((0, 16, "R"),)
_BASS_INTRO = ((0, 6, "R"), (6, 2, "R"), (8, 8, "F"))

# Chord-tone indices into (low, middle, high, low + octave), one per note of the figure.
_FIGURES: dict[str, dict[str, tuple[int, ...]]] = {
    "piano": {"intro": (0, 1, 2, 1), "verse": (0, 2, 1, 2, 3, 2, 1, 2), "chorus": (0, 1, 2, 3, 2, 3, 1, 2)},
    "synth": {"intro": (0, 1, 2, 3), "verse": (0, 1, 2, 3, 2, 1, 2, 3), "chorus": (0, 1, 2, 3) * 4},
    "bells": {"intro": (3, 2, 1, 2), "verse": (3, 2, 1, 2), "chorus": (3, 2, 1, 0, 1, 2, 3, 2)},
}
_STRUMS = {"intro": (0, 8), "verse": (0, 6, 8, 12), "chorus": (0, 3, 6, 8, 10, 12, 14)}
_STRUM_SPREAD_S = 0.012

_MELODY_RHYTHMS = (
    (4, 4, 4, 4),
    (2, 2, 4, 4, 4),
    (4, 2, 2, 8),
    (6, 2, 4, 4),
    (2, 2, 2, 2, 4, 4),
    (3, 3, 2, 4, 4),
    (8, 4, 4),
    (4, 4, 8),
)
# Phrase endings leave a short rest so the line breathes like a sung one.
_MELODY_CADENCES = ((4, 4, 6), (8, 6), (4, 2, 2, 6), (6, 2, 6))
_MELODY_STEPS = (-1, -1, 1, 1, -2, 2, 0)
_VERSE_RANGE = (-1, 6)
_CHORUS_RANGE = (2, 9)


@dataclass(frozen=True)
class MusicStyle:
    """Everything that determines a sandbox piece; equal styles render identical audio."""

    tempo_bpm: int
    key: str
    mode: str
    instruments: tuple[str, ...]
    has_lead: bool
    seed: int

    def __post_init__(self) -> None:
        if not 40 <= self.tempo_bpm <= 240:
            raise ValueError(f"tempo_bpm must be between 40 and 240, got {self.tempo_bpm}")
        _pitch_class(self.key)
        if self.mode not in _SCALES:
            raise ValueError(f"mode must be 'major' or 'minor', got {self.mode!r}")
        unknown = [name for name in self.instruments if name not in INSTRUMENTS]
        if unknown:
            raise ValueError(f"unknown instruments {unknown}; known: {', '.join(INSTRUMENTS)}")

    def describe(self) -> str:
        """Short human text, e.g. ``"92 bpm, A minor, piano/pad/bass/drums, lead line"``."""
        parts = "/".join(self.instruments) or "pad"
        line = "lead line" if self.has_lead else "instrumental"
        return f"{self.tempo_bpm} bpm, {self.key} {self.mode}, {parts}, {line}"


# --------------------------------------------------------------------------- style from text

_TEMPO_WORDS: tuple[tuple[tuple[str, ...], int, int], ...] = (
    (("ambient", "sleep", "meditation", "drone", "lullaby"), 60, 76),
    (("lofi", "lo fi", "chill", "chillhop", "calm", "relaxing", "relaxed", "downtempo", "ballad", "slow",
      "mellow"), 70, 88),
    (("hip hop", "hiphop", "rap", "boom bap", "trip hop", "rnb", "r b", "soul", "reggae"), 84, 98),
    (("jazz", "blues", "folk", "country", "acoustic", "indie"), 92, 118),
    (("pop", "rock", "funk", "synthwave", "disco", "upbeat"), 104, 124),
    (("edm", "house", "dance", "techno", "trance", "electro", "club", "rave"), 120, 132),
    (("fast", "energetic", "hyper", "intense"), 132, 160),
    (("punk", "metal", "drum and bass", "dnb", "hardcore", "thrash"), 160, 180),
)  # fmt: skip
_DEFAULT_TEMPO = (84, 124)
_MINOR_WORDS = (
    "sad", "dark", "melancholy", "melancholic", "moody", "gloomy", "somber", "sombre", "haunting", "eerie",
    "lonely", "heartbreak", "heartbroken", "tragic", "mysterious", "tense", "minor", "goth", "gothic",
    "metal", "darkwave", "blues",
)  # fmt: skip
_MAJOR_WORDS = (
    "happy", "upbeat", "bright", "cheerful", "joyful", "joy", "sunny", "uplifting", "fun", "playful",
    "hopeful", "major", "triumphant", "summer", "sweet", "celebration",
)  # fmt: skip
_INSTRUMENT_WORDS: dict[str, tuple[str, ...]] = {
    "piano": ("piano", "keys", "rhodes", "keyboard", "lofi", "lo fi", "jazz", "ballad"),
    "guitar": ("guitar", "guitars", "acoustic", "folk", "country", "rock", "punk", "metal", "indie", "blues"),
    "synth": ("synth", "synths", "synthesizer", "synthwave", "electronic", "edm", "house", "techno", "trance",
              "electro", "dance", "80s", "retro", "chiptune"),
    "strings": ("strings", "string", "violin", "cello", "orchestral", "orchestra", "cinematic", "epic",
                "classical"),
    "organ": ("organ", "gospel", "church"),
    "bells": ("bells", "bell", "music box", "glockenspiel", "celesta", "lullaby", "chimes", "christmas"),
    "pad": ("ambient", "pad", "pads", "atmospheric", "dreamy", "ethereal"),
}  # fmt: skip
_NO_DRUM_WORDS = (
    "ambient",
    "classical",
    "lullaby",
    "a cappella",
    "acapella",
    "no drums",
    "drone",
    "meditation",
)
_DEFAULT_HARMONY = ("piano", "guitar", "synth")
_MAX_HARMONY = 3
_BPM_PATTERN = re.compile(r"\b(\d{2,3})\s*bpm\b")
_KEY_PATTERN = re.compile(r"\b([a-g])\s*(#|♯|b|♭|sharp|flat)?\s*(major|minor|maj|min)\b")
_KEY_CONTEXT = re.compile(r"(?:^|[,;:(/\n]|\bin|\bof|\bkey)\s*$")


def style_from_request(
    *,
    tags: str = "",
    description: str = "",
    lyrics: str = "",
    title: str = "",
    instrumental: bool = False,
    seed: int = 0,
) -> MusicStyle:
    """Derive a deterministic style from a generation request.

    Tempo, mode, key and instruments come from words in ``tags``, ``description`` and ``title``
    ("lofi" is slow, "punk" fast, "sad" minor, "piano" adds a piano, "120 bpm" and "in D minor" are obeyed);
    whatever the words leave open is picked by a SHA-256 hash of the text fields and ``seed``.
    ``instrumental`` is deliberately not hashed: toggling it keeps the backing and only drops the lead line.
    """
    digest = hashlib.sha256(
        json.dumps(
            {"tags": tags, "description": description, "lyrics": lyrics, "title": title, "seed": seed},
            sort_keys=True,
        ).encode()
    ).digest()
    raw_text = f"{tags}\n{description}\n{title}".lower()
    text = " " + re.sub(r"[^a-z0-9#]+", " ", raw_text) + " "

    def has(word: str) -> bool:
        return f" {word} " in text

    def pick(offset: int, count: int) -> int:
        return int.from_bytes(digest[offset : offset + 4], "big") % count

    ranges = [(low, high) for words, low, high in _TEMPO_WORDS if any(map(has, words))]
    low, high = _DEFAULT_TEMPO
    if ranges:
        low = round(sum(r[0] for r in ranges) / len(ranges))
        high = round(sum(r[1] for r in ranges) / len(ranges))
    tempo = low + pick(4, high - low + 1)
    bpm_match = _BPM_PATTERN.search(text)
    if bpm_match:
        tempo = min(200, max(50, int(bpm_match.group(1))))

    mood = sum(map(has, _MAJOR_WORDS)) - sum(map(has, _MINOR_WORDS))
    mode = "major" if mood > 0 else "minor" if mood < 0 else ("major", "minor")[pick(8, 2)]
    pitch = pick(12, 12)
    key_match = _explicit_key(raw_text)
    if key_match:
        pitch = _pitch_class(key_match.group(1) + _accidental_sign(key_match.group(2)))
        mode = "major" if key_match.group(3).startswith("maj") else "minor"

    harmony = [name for name in _HARMONY if any(map(has, _INSTRUMENT_WORDS[name]))][:_MAX_HARMONY]
    if not harmony:
        harmony = [_DEFAULT_HARMONY[pick(16, len(_DEFAULT_HARMONY))]]
    if not any(name in _SUSTAINED for name in harmony):
        # A sustained bed keeps every second audible and glues plucked instruments together.
        harmony.append("pad")
    chosen = set(harmony)
    if not has("no bass"):
        chosen.add("bass")
    if not any(map(has, _NO_DRUM_WORDS)):
        chosen.add("drums")
    return MusicStyle(
        tempo_bpm=tempo,
        key=_KEY_NAMES[pitch],
        mode=mode,
        instruments=tuple(name for name in INSTRUMENTS if name in chosen),
        has_lead=not instrumental,
        seed=int.from_bytes(digest[:4], "big"),
    )


def _explicit_key(text: str) -> re.Match[str] | None:
    for match in _KEY_PATTERN.finditer(text):
        # "a minor setback" is English, not a key; a bare "a" counts only where a key name is expected.
        if match.group(1) != "a" or match.group(2) or _KEY_CONTEXT.search(text[: match.start()]):
            return match
    return None


def _accidental_sign(word: str | None) -> str:
    if word in ("#", "♯", "sharp"):
        return "#"
    if word in ("b", "♭", "flat"):
        return "b"
    return ""


def _pitch_class(key: str) -> int:
    match = re.fullmatch(r"\s*([A-Ga-g])\s*(#|♯|b|♭)?\s*", key)
    if match is None:
        raise ValueError(f"key must be a note name such as 'A', 'F#' or 'Bb', got {key!r}")
    pitch = _NATURAL_PITCH[match.group(1).lower()]
    accidental = match.group(2)
    if accidental in ("#", "♯"):
        pitch += 1
    elif accidental:
        pitch -= 1
    return pitch % 12


# --------------------------------------------------------------------------- public rendering


def render_pcm(style: MusicStyle, duration_s: float, *, start_s: float = 0.0) -> bytes:
    """Render 16-bit little-endian mono PCM of the piece for ``style``.

    Returns exactly ``round(duration_s * SAMPLE_RATE)`` samples starting at sample
    ``round(start_s * SAMPLE_RATE)`` of the endless piece, so pieces rendered back to back join
    sample-exactly whenever the split points fall on whole samples (for example tenths of a second).
    """
    if not (math.isfinite(duration_s) and duration_s >= 0):
        raise ValueError(f"duration_s must be a finite number >= 0, got {duration_s}")
    if not (math.isfinite(start_s) and start_s >= 0):
        raise ValueError(f"start_s must be a finite number >= 0, got {start_s}")
    count = round(duration_s * SAMPLE_RATE)
    if count == 0:
        return b""
    first = round(start_s * SAMPLE_RATE)
    piece = _piece(style)
    first_bar = first // piece.bar_samples
    last_bar = (first + count - 1) // piece.bar_samples
    joined = b"".join(piece.bar_pcm(index) for index in range(first_bar, last_bar + 1))
    offset = 2 * (first - first_bar * piece.bar_samples)
    return joined[offset : offset + 2 * count]


def to_wav(pcm: bytes) -> bytes:
    """Wrap PCM from :func:`render_pcm` in a RIFF/WAVE header (mono, 16-bit, ``SAMPLE_RATE``)."""
    if len(pcm) % 2:
        raise ValueError("16-bit PCM must have an even number of bytes")
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(pcm),
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        SAMPLE_RATE,
        SAMPLE_RATE * 2,
        2,
        16,
        b"data",
        len(pcm),
    )
    return header + pcm


def render_cover_png(style: MusicStyle, size: int = 64) -> bytes:
    """A deterministic ``size`` x ``size`` RGB PNG whose colours and rings follow the style."""
    if not 1 <= size <= 1024:
        raise ValueError(f"size must be between 1 and 1024, got {size}")
    rng = _rng(style.seed, "cover")
    hue = (_pitch_class(style.key) / 12 + rng.random() * 0.05) % 1.0
    major = style.mode == "major"
    light = 0.58 if major else 0.38
    inner = colorsys.hls_to_rgb(hue, light, 0.7)
    outer = colorsys.hls_to_rgb((hue + (0.12 if major else -0.12)) % 1.0, light * 0.45, 0.6)
    centre_x, centre_y = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7)
    rings = 2 + len(style.instruments) + style.tempo_bpm // 40
    span = max(size - 1, 1)
    rows = bytearray()
    for y in range(size):
        rows.append(0)  # PNG filter type "none" for this scanline
        for x in range(size):
            gradient = (x + y) / (2 * span)
            distance = math.hypot(x / span - centre_x, y / span - centre_y)
            ring = 0.5 + 0.5 * math.cos(distance * rings * _TWO_PI)
            blend = min(1.0, 0.65 * gradient + 0.35 * ring)
            rows.extend(round(255 * (a + (b - a) * blend)) for a, b in zip(inner, outer, strict=True))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


# --------------------------------------------------------------------------- lanes and helpers


def _rng(seed: int, label: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{label}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _to_lanes(samples: Iterable[float]) -> bytes:
    # Adding 1.5 * 2**52 makes the FPU round each value to an integer held in the low 32 bits of the
    # double, so taking every other 32-bit word is a C-speed float-to-lane conversion (much faster
    # than int() per sample). The lane bias rides along in the same addition.
    doubles = array("d", map(add, samples, repeat(_ROUNDING_MAGIC + _LANE_BIAS)))
    if sys.byteorder == "big":  # pragma: no cover - lanes are little-endian everywhere
        doubles.byteswap()
    words = array("I")
    if words.itemsize != 4:  # pragma: no cover - every mainstream platform has a 4-byte unsigned int
        raise RuntimeError("array('I') is not 32 bits wide on this platform")
    words.frombytes(doubles.tobytes())
    return words[0::2].tobytes()


def _tile(block: list[float], start: int, count: int) -> list[float]:
    offset = start % len(block)
    return (block * ((offset + count) // len(block) + 1))[offset : offset + count]


def _tile_bytes(block: bytes, start: int, count: int) -> bytes:
    lanes = len(block) // 4
    offset = start % lanes
    return (block * ((offset + count) // lanes + 1))[4 * offset : 4 * (offset + count)]


def _sequence(events: Iterable[tuple[int, bytes]], total: int) -> bytes:
    """Lay non-overlapping lane blocks at sample offsets, filling the gaps with silent lanes."""
    parts: list[bytes] = []
    position = 0
    for start, lanes in events:
        if start < position:
            raise AssertionError("overlapping notes in one layer")
        if start > position:
            parts.append(_SILENT_LANE * (start - position))
        parts.append(lanes)
        position = start + len(lanes) // 4
    if position > total:
        raise AssertionError("layer runs past the end of its bar")
    parts.append(_SILENT_LANE * (total - position))
    return b"".join(parts)


def _lanes_value(layers: Iterable[bytes]) -> int:
    return sum(int.from_bytes(layer, "little") for layer in layers)


def _lanes_to_pcm(value: int, count: int) -> bytes:
    raw = value.to_bytes(4 * count, "little")
    pcm = bytearray(2 * count)
    pcm[0::2] = raw[0::4]
    pcm[1::2] = raw[1::4]
    return bytes(pcm)


def _midi_hz(midi: int) -> float:
    return 440.0 * math.pow(2.0, (midi - 69) / 12)


def _nearest(candidates: Sequence[int], target: int, rng: random.Random) -> int:
    best = min(abs(c - target) for c in candidates)
    return rng.choice([c for c in candidates if abs(c - target) == best])


# --------------------------------------------------------------------------- the piece


@functools.lru_cache(maxsize=8)
def _piece(style: MusicStyle) -> _Piece:
    return _Piece(style)


class _Piece:
    """Caches of notes, layer groups and bars for one style; everything is derived from the style."""

    def __init__(self, style: MusicStyle) -> None:
        self.style = style
        self.tonic = _pitch_class(style.key)
        self.scale = _SCALES[style.mode]
        self.step = max(1, round(SAMPLE_RATE * 15 / style.tempo_bpm))
        self.bar_samples = _STEPS_PER_BAR * self.step
        arrangement = _rng(style.seed, "arrangement")
        self.progression = arrangement.choice(_PROGRESSIONS[style.mode])
        self.bass_verse = arrangement.choice(_BASS_VERSE)
        self.extra_kick = arrangement.choice((None, 7, 10, 14))
        names = set(style.instruments)
        # Without a harmony instrument some bars would be silent, so a pad stands in.
        self.harmony = [name for name in _HARMONY if name in names] or ["pad"]
        self.bass = "bass" in names
        self.drums = "drums" in names
        self.four_on_floor = "synth" in names and 115 <= style.tempo_bpm <= 140
        worst_case = sum(_VOICES[name].gain * _VOICES[name].layers for name in self.harmony)
        worst_case += _VOICES["bass"].gain if self.bass else 0.0
        worst_case += sum(_DRUM_GAINS.values()) if self.drums else 0.0
        # The lead is always budgeted so a style's backing is identical with and without vocals.
        worst_case += _VOICES["lead"].gain
        self.amp = _FULL_SCALE * _HEADROOM / worst_case
        self._bars: dict[int, bytes] = {}
        self._groups: dict[tuple[object, ...], int] = {}
        self._notes: dict[tuple[str, int, int, float], bytes] = {}
        self._heads: dict[tuple[str, int, float], bytes] = {}
        self._sustains: dict[tuple[str, int, float], bytes] = {}
        self._tails: dict[tuple[str, int, float], list[float]] = {}
        self._head_envelopes: dict[tuple[str, float], list[float]] = {}
        self._hits: dict[tuple[str, int, float], bytes] = {}
        self._melodies: dict[int, list[list[tuple[int, int, int]]]] = {}

    # -- bars

    def bar_pcm(self, index: int) -> bytes:
        # Intro bars are -2 and -1; every later bar is its position in the repeating cycle.
        slot = index - _INTRO_BARS if index < _INTRO_BARS else (index - _INTRO_BARS) % _CYCLE_BARS
        pcm = self._bars.get(slot)
        if pcm is None:
            pcm = self._bars[slot] = _lanes_to_pcm(self._bar_value(slot), self.bar_samples)
            if len(self._bars) == _INTRO_BARS + _CYCLE_BARS:
                # Every bar exists now; the building blocks are ten times their size and never used again.
                for cache in (
                    self._groups,
                    self._notes,
                    self._heads,
                    self._sustains,
                    self._tails,
                    self._hits,
                ):
                    cache.clear()
        return pcm

    def _bar_value(self, slot: int) -> int:
        if slot < 0:
            section = "intro"
            chord = self.progression[slot + _BARS_PER_PHRASE]
        else:
            phrase, position = divmod(slot, _BARS_PER_PHRASE)
            section = "verse" if phrase < 2 else "chorus"
            chord = self.progression[position]
        value = 0
        for name in self.harmony:
            value += self._group(
                ("harmony", name, chord, section), self._harmony_layers, name, chord, section
            )
        if self.bass:
            pattern = self._bass_pattern(slot, section)
            value += self._group(("bass", chord, pattern), self._bass_layers, chord, pattern)
        if self.drums:
            kit = self._drum_kit(slot, section)
            value += self._group(("drums", kit), self._drum_layers, kit)
        if self.style.has_lead and slot >= 0:
            value += _lanes_value([self._lead_layer(slot)])
        return value

    def _group(self, key: tuple[object, ...], build: Callable[..., list[bytes]], *args: object) -> int:
        """Pre-summed layers shared by many bars (the same chord, bass figure or drum bar recurs)."""
        value = self._groups.get(key)
        if value is None:
            value = self._groups[key] = _lanes_value(build(*args))
        return value

    # -- harmony

    def _chord_tones(self, degree: int, low: int) -> list[int]:
        pitches = [(self.tonic + self.scale[(degree + offset) % 7]) % 12 for offset in (0, 2, 4)]
        tones = sorted(low + (pitch - low) % 12 for pitch in pitches)
        return [*tones, tones[0] + 12]

    def _harmony_layers(self, name: str, chord: int, section: str) -> list[bytes]:
        tones = self._chord_tones(chord, _HARMONY_LOW_MIDI[name])
        bar = self.bar_samples
        if name in _SUSTAINED:
            return [_sequence([(0, self._note(name, tone, bar, 1.0))], bar) for tone in tones[:3]]
        if name == "guitar":
            strums = _STRUMS[section]
            spread = round(_STRUM_SPREAD_S * SAMPLE_RATE)
            layers = []
            for string, tone in enumerate(tones[:3]):
                events = []
                for i, step in enumerate(strums):
                    start = step * self.step + string * spread
                    end = strums[i + 1] * self.step + string * spread if i + 1 < len(strums) else bar
                    events.append((start, self._note(name, tone, end - start, 1.0)))
                layers.append(_sequence(events, bar))
            return layers
        figure = _FIGURES[name][section]
        length = _STEPS_PER_BAR // len(figure)
        events = []
        for i, tone_index in enumerate(figure):
            events.append(
                (i * length * self.step, self._note(name, tones[tone_index], length * self.step, 1.0))
            )
        return [_sequence(events, bar)]

    # -- bass

    def _bass_pattern(self, slot: int, section: str) -> tuple[tuple[int, int, str], ...]:
        if not self.drums or slot == -2:
            return _BASS_WHOLE
        if section == "intro":
            return _BASS_INTRO
        return _BASS_CHORUS if section == "chorus" else self.bass_verse

    def _bass_layers(self, chord: int, pattern: tuple[tuple[int, int, str], ...]) -> list[bytes]:
        root_pitch = (self.tonic + self.scale[chord % 7]) % 12
        fifth_pitch = (self.tonic + self.scale[(chord + 4) % 7]) % 12
        root = 36 + (root_pitch - 36) % 12
        tones = {"R": root, "F": root + (fifth_pitch - root_pitch) % 12, "O": root + 12}
        events = [
            (start * self.step, self._note("bass", tones[tone], length * self.step, 1.0))
            for start, length, tone in pattern
        ]
        return [_sequence(events, self.bar_samples)]

    # -- drums

    def _drum_kit(self, slot: int, section: str) -> tuple[tuple[str, tuple[tuple[int, float], ...]], ...]:
        if slot == -2:
            return ()
        eighths = tuple((step, 1.0) for step in range(0, 16, 2))
        if section == "intro":
            return (("hat", eighths),)
        chorus = section == "chorus"
        if self.four_on_floor:
            kick: tuple[int, ...] = (0, 4, 8, 12)
            hats = tuple((step, 1.0 if step % 4 == 2 else 0.5) for step in range(16)) if chorus else eighths
        else:
            kick = (0, 6, 8, 11) if chorus else (0, 8) if self.extra_kick is None else (0, 8, self.extra_kick)
            busy = chorus and self.style.tempo_bpm < 135
            hats = tuple((step, 1.0 if step % 2 == 0 else 0.55) for step in range(16)) if busy else eighths
        snare: tuple[tuple[int, float], ...] = ((4, 1.0), (12, 1.0))
        if slot == _CYCLE_BARS - 1:
            snare = ((4, 1.0), (10, 0.6), (12, 1.0), (13, 0.7), (14, 0.85), (15, 1.0))
        return (("kick", tuple((step, 1.0) for step in sorted(kick))), ("snare", snare), ("hat", hats))

    def _drum_layers(self, kit: tuple[tuple[str, tuple[tuple[int, float], ...]], ...]) -> list[bytes]:
        layers = []
        for drum, hits in kit:
            events = []
            natural = len(_drum_sample(drum))
            for i, (step, velocity) in enumerate(hits):
                start = step * self.step
                end = hits[i + 1][0] * self.step if i + 1 < len(hits) else self.bar_samples
                events.append((start, self._hit(drum, min(natural, end - start), velocity)))
            layers.append(_sequence(events, self.bar_samples))
        return layers

    def _hit(self, drum: str, count: int, velocity: float) -> bytes:
        key = (drum, count, velocity)
        lanes = self._hits.get(key)
        if lanes is None:
            wave = _drum_sample(drum)[:count]
            fade = min(round(0.005 * SAMPLE_RATE), count // 2)
            for i in range(fade):
                wave[count - 1 - i] *= math.sin(0.5 * math.pi * i / fade) ** 2
            amp = self.amp * _DRUM_GAINS[drum] * velocity
            lanes = self._hits[key] = _to_lanes(map(mul, wave, repeat(amp)))
        return lanes

    # -- lead melody

    def _lead_layer(self, slot: int) -> bytes:
        phrase, position = divmod(slot, _BARS_PER_PHRASE)
        events = [
            (start * self.step, self._note("lead", midi, length * self.step, 1.0 if start % 8 == 0 else 0.85))
            for start, length, midi in self._melody(phrase)[position]
        ]
        return _sequence(events, self.bar_samples)

    def _melody(self, phrase: int) -> list[list[tuple[int, int, int]]]:
        """Four bars of (start step, steps, midi); phrases 1 and 3 vary the ending of 0 and 2."""
        melody = self._melodies.get(phrase)
        if melody is not None:
            return melody
        chorus = phrase >= 2
        rng = _rng(self.style.seed, "melody:chorus" if chorus else "melody:verse")
        low, high = _CHORUS_RANGE if chorus else _VERSE_RANGE
        degrees = list(range(low, high + 1))
        # A tonic between G3 and F#4 puts verse and chorus where a singer would be.
        lead_tonic = 55 + (self.tonic - 55) % 12

        def midi(degree: int) -> int:
            return lead_tonic + 12 * (degree // 7) + self.scale[degree % 7]

        def bar(pitch: int, chord: int, final: bool) -> tuple[list[tuple[int, int, int]], int]:
            chord_degrees = [d for d in degrees if (d - chord) % 7 in (0, 2, 4)]
            rhythm = rng.choice(_MELODY_CADENCES if final else _MELODY_RHYTHMS)
            notes = []
            start = 0
            for i, length in enumerate(rhythm):
                if i == 0 or start % 8 == 0 or (final and i == len(rhythm) - 1):
                    pitch = _nearest(chord_degrees, pitch, rng)
                else:
                    pitch += rng.choice(_MELODY_STEPS)
                    if not low <= pitch <= high:
                        pitch = max(low, min(high, 2 * (low if pitch < low else high) - pitch))
                notes.append((start, length, midi(pitch)))
                start += length
            return notes, pitch

        pitch = (low + high) // 2
        bars = []
        for position in range(_BARS_PER_PHRASE - 1):
            notes, pitch = bar(pitch, self.progression[position], final=False)
            bars.append(notes)
        last_chord = self.progression[_BARS_PER_PHRASE - 1]
        ending, _ = bar(pitch, last_chord, final=True)
        variant, _ = bar(pitch, last_chord, final=True)
        first = phrase - (phrase % 2)
        self._melodies[first] = [*bars, ending]
        self._melodies[first + 1] = [*bars, variant]
        return self._melodies[phrase]

    # -- pitched notes

    def _note(self, name: str, midi: int, count: int, velocity: float) -> bytes:
        key = (name, midi, count, velocity)
        lanes = self._notes.get(key)
        if lanes is None:
            lanes = self._notes[key] = self._render_note(name, midi, count, velocity)
        return lanes

    def _render_note(self, name: str, midi: int, count: int, velocity: float) -> bytes:
        voice = _VOICES[name]
        attack, decay, release = _shape(voice)
        if attack + release > count:
            # Too short for the voice's envelope: squeeze it. Such notes are tiny, so per-sample is cheap.
            attack = count * attack // (attack + release)
            release = count - attack
            envelope = [
                _level(t, attack, decay, voice.sustain) * _fade_out(t - (count - release), release)
                for t in range(count)
            ]
            amp = self.amp * voice.gain * velocity
            return _to_lanes(
                map(mul, map(mul, _tile(_note_loop(name, midi), 0, count), envelope), repeat(amp))
            )
        # The attack/decay start is shared by every note of this pitch, the flat sustain is the loop
        # repeated as bytes, and only the release is computed per note length.
        head_end = min(count - release, max(attack, decay))
        tail_start = count - release
        head = self._head_lanes(name, midi, velocity)[: 4 * head_end]
        sustain = _tile_bytes(self._sustain_lanes(name, midi, velocity), head_end, tail_start - head_end)
        tail_shape = self._tail_envelope(name, tail_start, velocity)
        tail = _to_lanes(map(mul, _tile(_note_loop(name, midi), tail_start, release), tail_shape))
        return head + sustain + tail

    def _head_lanes(self, name: str, midi: int, velocity: float) -> bytes:
        key = (name, midi, velocity)
        lanes = self._heads.get(key)
        if lanes is None:
            envelope = self._scaled_head_envelope(name, velocity)
            wave = _tile(_note_loop(name, midi), 0, len(envelope))
            lanes = self._heads[key] = _to_lanes(map(mul, wave, envelope))
        return lanes

    def _scaled_head_envelope(self, name: str, velocity: float) -> list[float]:
        key = (name, velocity)
        envelope = self._head_envelopes.get(key)
        if envelope is None:
            voice = _VOICES[name]
            amp = self.amp * voice.gain * velocity
            envelope = self._head_envelopes[key] = list(map(mul, _head_envelope(voice), repeat(amp)))
        return envelope

    def _tail_envelope(self, name: str, tail_start: int, velocity: float) -> list[float]:
        voice = _VOICES[name]
        attack, decay, release = _shape(voice)
        # Once the decay is over every release starts from the same level, so those share one entry.
        key = (name, min(tail_start, max(attack, decay)), velocity)
        envelope = self._tails.get(key)
        if envelope is None:
            amp = self.amp * voice.gain * velocity
            envelope = self._tails[key] = [
                amp * _level(t, attack, decay, voice.sustain) * _fade_out(t - tail_start, release)
                for t in range(tail_start, tail_start + release)
            ]
        return envelope

    def _sustain_lanes(self, name: str, midi: int, velocity: float) -> bytes:
        key = (name, midi, velocity)
        lanes = self._sustains.get(key)
        if lanes is None:
            voice = _VOICES[name]
            level = self.amp * voice.gain * velocity * voice.sustain
            lanes = self._sustains[key] = _to_lanes(map(mul, _note_loop(name, midi), repeat(level)))
        return lanes


@functools.cache
def _note_loop(name: str, midi: int) -> list[float]:
    """One seamless loop of a voice's waveform at this pitch, normalised to peak 1."""
    voice = _VOICES[name]
    hz = _midi_hz(midi)
    period = SAMPLE_RATE / hz
    # Whole-sample loops of m periods keep the pitch within a few cents while letting a note be
    # built by repeating a list; zero phase at the loop seam means every loop starts at 0.
    best = (math.inf, 1, round(period))
    for cycles in range(1, 41):
        length = round(cycles * period)
        error = abs(length - cycles * period) / (cycles * period)
        if error < best[0]:
            best = (error, cycles, length)
        if error < 2e-4 and length >= 64:
            break
    _, cycles, length = best
    loop = [0.0] * length
    for harmonic, weight in enumerate(voice.partials, start=1):
        partial_hz = harmonic * hz
        if weight == 0.0 or partial_hz > _NYQUIST_GUARD_HZ:
            continue
        if voice.formants:
            # Two vowel-like resonances ("ah") make the lead read as a sung line over the keys.
            weight *= 1.0 + 2.0 * math.exp(-(((partial_hz - 750.0) / 250.0) ** 2))
            weight *= 1.0 + 1.2 * math.exp(-(((partial_hz - 1150.0) / 300.0) ** 2))
        omega = _TWO_PI * harmonic * cycles / length
        partial = map(math.sin, map(mul, range(length), repeat(omega)))
        loop = list(map(add, loop, map(mul, partial, repeat(weight))))
    peak = max(map(abs, loop))
    return [v / peak for v in loop]


@functools.cache
def _drum_sample(drum: str) -> list[float]:
    """A one-shot drum sound normalised to peak 1; its noise has a fixed seed so every run agrees."""
    rng = _rng(0, f"drum:{drum}")
    if drum == "kick":
        count = round(0.32 * SAMPLE_RATE)
        # A falling pitch is what makes a sine read as a kick drum rather than a tone.
        hz = [48.0 + 110.0 * math.exp(-t / (0.035 * SAMPLE_RATE)) for t in range(count)]
        phase = accumulate(map(mul, hz, repeat(_TWO_PI / SAMPLE_RATE)))
        decay = [math.exp(-t / (0.16 * SAMPLE_RATE)) for t in range(count)]
        wave = list(map(mul, map(math.sin, phase), decay))
    elif drum == "snare":
        count = round(0.22 * SAMPLE_RATE)
        noise = _noise(rng, count + 1)
        bright = list(map(sub, noise[1:], noise[:-1]))
        tone = [math.sin(_TWO_PI * 185.0 * t / SAMPLE_RATE) for t in range(count)]
        wave = [
            0.55 * n * math.exp(-t / (0.06 * SAMPLE_RATE)) + 0.6 * s * math.exp(-t / (0.035 * SAMPLE_RATE))
            for t, (n, s) in enumerate(zip(bright, tone, strict=True))
        ]
    else:
        count = round(0.07 * SAMPLE_RATE)
        noise = _noise(rng, count + 2)
        # A second difference of white noise leaves mostly the top octave: a closed hi-hat.
        first = list(map(sub, noise[1:], noise[:-1]))
        second = map(sub, first[1:], first[:-1])
        wave = [v * math.exp(-t / (0.014 * SAMPLE_RATE)) for t, v in enumerate(second)]
    attack = round(0.001 * SAMPLE_RATE)
    for t in range(attack):
        wave[t] *= t / attack
    peak = max(map(abs, wave))
    return [v / peak for v in wave]


def _noise(rng: random.Random, count: int) -> list[float]:
    return list(map(mul, map(sub, rng.randbytes(count), repeat(127.5)), repeat(1 / 127.5)))


def _shape(voice: _Voice) -> tuple[int, int, int]:
    """Attack, decay and release of a voice in samples (no decay for voices that simply sustain)."""
    decay = round(voice.decay_s * SAMPLE_RATE) if voice.sustain < 1.0 else 0
    return round(voice.attack_s * SAMPLE_RATE), decay, round(voice.release_s * SAMPLE_RATE)


@functools.cache
def _head_envelope(voice: _Voice) -> list[float]:
    """The attack and decay of a voice up to where it settles on its sustain level."""
    attack, decay, _ = _shape(voice)
    return [_level(t, attack, decay, voice.sustain) for t in range(max(attack, decay))]


def _fade_out(t: int, release: int) -> float:
    """cos² release ramp: 1 before it starts, exactly 0 on the note's last sample."""
    if t < 0:
        return 1.0
    return math.cos(0.5 * math.pi * (t + 1) / release) ** 2


def _level(t: int, attack: int, decay: int, sustain: float) -> float:
    """Envelope before release: a sin² fade-in times a cubic fall to the sustain level (no kinks at the joins)."""
    rise = math.sin(0.5 * math.pi * t / attack) ** 2 if t < attack else 1.0
    fall = sustain + (1.0 - sustain) * (1.0 - t / decay) ** 3 if t < decay else sustain
    return rise * fall


# --------------------------------------------------------------------------- helpers for covers

KEY_NAMES: tuple[str, ...] = _KEY_NAMES
"""The twelve key names a style may carry, C first (sharps and flats as the sandbox spells them)."""

_NAMED_INSTRUMENT_WORDS: dict[str, tuple[str, ...]] = {
    **_INSTRUMENT_WORDS,
    "bass": ("bass", "bassline", "sub bass"),
    "drums": ("drums", "drum", "percussion", "beat", "beats"),
}


def bar_seconds(style: MusicStyle) -> float:
    """How long one bar of the style's piece lasts, exactly as the renderer lays bars out."""
    return _STEPS_PER_BAR * max(1, round(SAMPLE_RATE * 15 / style.tempo_bpm)) / SAMPLE_RATE


def instruments_named(text: str) -> frozenset[str]:
    """The instruments that words in ``text`` call for (``"no guitars, drums"`` names guitar and drums)."""
    padded = " " + re.sub(r"[^a-z0-9#]+", " ", text.lower()) + " "
    return frozenset(
        name
        for name, words in _NAMED_INSTRUMENT_WORDS.items()
        if any(f" {word} " in padded for word in words)
    )
