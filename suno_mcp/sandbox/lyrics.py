"""Deterministic stand-in lyrics: sectioned like Suno's, built from the words of the prompt.

They are not poetry; they only need the shape a client sees (a title and text with
``[Verse]``/``[Chorus]`` section tags) and to change with the prompt and the seed.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

# A word list reads better as prose than as a 40-line literal.
_STOPWORDS = frozenset(
    """a an and the of to in on for with about at by from into over under song music track tune
    make write compose create please some that this is are be my your our its it as or but""".split()  # noqa: SIM905
)

_IMAGES = (
    "city lights",
    "open road",
    "midnight rain",
    "silver moon",
    "empty streets",
    "morning sun",
    "ocean wind",
    "paper stars",
    "burning sky",
    "quiet room",
)
_VERBS = ("calling", "falling", "rising", "shining", "fading", "burning", "waiting", "dancing")
_HOOKS = ("all night long", "one more time", "here we are", "never let go", "till the morning", "hold on")


@dataclass(frozen=True)
class Lyrics:
    """A song's title and its lyrics with section tags."""

    title: str
    text: str


def keywords(prompt: str) -> list[str]:
    """The content words of a prompt, in order, without repeats."""
    seen: list[str] = []
    for word in re.findall(r"[a-zA-Z][a-zA-Z'-]*", prompt.lower()):
        if word not in _STOPWORDS and len(word) > 2 and word not in seen:
            seen.append(word)
    return seen


def make_title(prompt: str, *, seed: int) -> str:
    """A short title drawn from the prompt's words (or from stock images if it has none)."""
    rng = random.Random(f"{seed}:title:{prompt}")
    words = keywords(prompt)
    if not words:
        return rng.choice(_IMAGES).title()
    picked = words[:3] if len(words) <= 3 else sorted(rng.sample(words, 2), key=words.index)
    return " ".join(w.capitalize() for w in picked)


def write_lyrics(prompt: str, *, seed: int) -> Lyrics:
    """Lyrics with Verse/Chorus/Bridge sections about the prompt's words."""
    rng = random.Random(f"{seed}:lyrics:{prompt}")
    words = keywords(prompt) or [rng.choice(_IMAGES).split()[-1]]
    hook = rng.choice(_HOOKS)

    def line() -> str:
        return f"{rng.choice(words).capitalize()} {rng.choice(_VERBS)} through the {rng.choice(_IMAGES)}"

    def verse() -> str:
        return "\n".join(line() for _ in range(4))

    subject = words[0]
    chorus = "\n".join([f"Oh {subject}, {hook}", f"{subject.capitalize()} {rng.choice(_VERBS)}, {hook}"] * 2)
    sections = [
        ("Verse", verse()),
        ("Chorus", chorus),
        ("Verse 2", verse()),
        ("Chorus", chorus),
        ("Bridge", "\n".join(line() for _ in range(2))),
        ("Chorus", chorus),
    ]
    text = "\n\n".join(f"[{name}]\n{body}" for name, body in sections)
    return Lyrics(title=make_title(prompt, seed=seed), text=text)
