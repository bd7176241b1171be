"""The Suno models the server accepts, with the text limits Suno applies to each.

The vendor documents ``chirp-v3-0`` and ``chirp-v3-5`` (``documented=True``); the newer
versions exist at Suno and are sold under the same ``mv`` field. Two suffixed names are
documented too, and only for v3.5, in the vendor's clip-API scenarios: ``chirp-v3-5-upload``
continues an uploaded (not generated) song, ``chirp-v3-5-tau`` makes a cover. Whether other
models have such variants is not documented, so only v3.5 lists them. Limits follow Suno's own: v3.x and v4
take 3,000 characters of lyrics and 200 of style; v4.5 and later 5,000 and 1,000.
A description (inspiration mode) is capped at 500 characters for every model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

DESCRIPTION_MAX = 500
TITLE_MAX = 80
LYRICS_PROMPT_MAX = 3000  # what the lyrics generator takes as its description


@dataclass(frozen=True)
class SunoModel:
    """One value the ``model`` argument (the wire's ``mv``) accepts."""

    name: str
    version: str
    lyrics_max: int
    tags_max: int
    good_for: str
    documented: bool
    # The mv to send to continue an uploaded song / to cover a clip, where documented.
    upload_variant: str | None = None
    cover_variant: str | None = None


MODELS: tuple[SunoModel, ...] = (
    SunoModel(
        "chirp-v3-0",
        "3.0",
        3000,
        200,
        "the vendor's stable default; quick sketches and tests",
        documented=True,
    ),
    SunoModel(
        "chirp-v3-5",
        "3.5",
        3000,
        200,
        "better quality and style adherence than v3.0; songs up to about 4 minutes",
        documented=True,
        upload_variant="chirp-v3-5-upload",
        cover_variant="chirp-v3-5-tau",
    ),
    SunoModel("chirp-v4", "4.0", 3000, 200, "cleaner vocals and mixing than v3.5", documented=False),
    SunoModel(
        "chirp-v4-5",
        "4.5",
        5000,
        1000,
        "long prompts and detailed style text; richer genre blending; songs up to about 8 minutes",
        documented=False,
    ),
    SunoModel(
        "chirp-v5",
        "5.0",
        5000,
        1000,
        "Suno's newest: the most natural vocals and production",
        documented=False,
    ),
)

DEFAULT_MODEL = "chirp-v3-5"
DOCUMENTED_MODELS: tuple[str, ...] = tuple(m.name for m in reversed(MODELS) if m.documented)
# Told to the user when the upstream refuses a request over its model.
DOCUMENTED_MODEL_HINT = f"try a documented model: {' or '.join(DOCUMENTED_MODELS)}"


@dataclass(frozen=True)
class Catalog:
    """The accepted models: the built-in ones plus any named in settings."""

    models: tuple[SunoModel, ...]

    @classmethod
    def with_extra(cls, extra_names: Iterable[str] = ()) -> Catalog:
        """The built-in models plus extra names (given the v4.5 limits, the newest known)."""
        known = {m.name for m in MODELS}
        extras = tuple(
            SunoModel(name, "custom", 5000, 1000, "added through SUNO_MCP_EXTRA_MODELS", documented=False)
            for name in dict.fromkeys(extra_names)
            if name and name not in known
        )
        return cls(MODELS + extras)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def get(self, name: str) -> SunoModel | None:
        """The model of that name, or None."""
        for model in self.models:
            if model.name == name:
                return model
        return None
