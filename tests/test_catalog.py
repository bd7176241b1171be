"""What the model catalog says about the vendor's documented models and their variants."""

from __future__ import annotations

from suno_mcp.domain.catalog import DOCUMENTED_MODEL_HINT, DOCUMENTED_MODELS, MODELS, Catalog


def test_only_the_models_the_vendor_documents_are_marked_documented() -> None:
    assert {m.name for m in MODELS if m.documented} == {"chirp-v3-0", "chirp-v3-5"}
    assert DOCUMENTED_MODELS == ("chirp-v3-5", "chirp-v3-0")
    assert DOCUMENTED_MODEL_HINT == "try a documented model: chirp-v3-5 or chirp-v3-0"


def test_only_v3_5_lists_the_upload_and_cover_variants_the_vendor_shows() -> None:
    v35 = Catalog.with_extra().get("chirp-v3-5")
    assert v35 is not None
    assert (v35.upload_variant, v35.cover_variant) == ("chirp-v3-5-upload", "chirp-v3-5-tau")
    others = [m for m in MODELS if m.name != "chirp-v3-5"]
    assert all(m.upload_variant is None and m.cover_variant is None for m in others)
