"""The one id rule and the one way an id goes into a URL or a file name."""

from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from suno_mcp.domain.ids import ID_MAX, is_id, url_segment
from suno_mcp.domain.inputs import ClipId, OptionalTaskId
from suno_mcp.domain.media import safe_stem

ids = st.text(min_size=1, max_size=ID_MAX).filter(is_id)


@given(ids)
def test_an_id_stays_one_segment_under_its_prefix_in_a_url(value: str) -> None:
    url = httpx.URL("https://upstream.test/v1/suno/fetch/" + url_segment(value))

    prefix, _, last = url.raw_path.decode("ascii").rpartition("/")
    assert prefix == "/v1/suno/fetch"
    assert last not in ("", ".", "..")
    assert url.path == "/v1/suno/fetch/" + value


@given(ids, st.one_of(st.none(), st.text(max_size=100)))
def test_an_id_never_puts_a_path_separator_into_a_file_name(value: str, title: str | None) -> None:
    stem = safe_stem(title, value)

    for flavour in (PurePosixPath, PureWindowsPath):
        assert flavour(stem).name == stem
    assert stem not in ("", ".", "..")


def test_two_ids_that_differ_only_in_odd_characters_get_different_file_names() -> None:
    assert safe_stem("Song", "a/b") != safe_stem("Song", "a:b")
    assert safe_stem("Song", "plain-id_1") == "song-plain-id_1"


@pytest.mark.parametrize("value", ["a/b", "..", "m_2e584f32:1.2+3", "é", "x" * ID_MAX])
def test_tool_arguments_take_the_odd_ids_the_upstream_hands_out(value: str) -> None:
    assert TypeAdapter(ClipId).validate_python(value) == value
    assert TypeAdapter(OptionalTaskId).validate_python(value) == value


@pytest.mark.parametrize("value", ["", "a b", "x" * (ID_MAX + 1), "a\nb", "a\x00", "a\u200bb", "\u00a0"])
def test_tool_arguments_refuse_what_can_never_be_an_id(value: str) -> None:
    assert not is_id(value)
    with pytest.raises(ValidationError):
        TypeAdapter(ClipId).validate_python(value)
