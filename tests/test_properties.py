"""Properties of the parsers and the error mapping over arbitrary JSON: whatever the upstream
sends, the client answers with a model or a ``SunoError``, never with a stray exception.
"""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from suno_mcp.domain.errors import SunoError, UpstreamError, error_from_response, is_error_body
from suno_mcp.domain.models import Clip, Status, Task, TaskKind, normalize_status
from suno_mcp.upstream.wire import parse_clip, parse_feed, parse_fetch, parse_generate_response

FAST = settings(max_examples=200, deadline=None)

# Integers as json.loads can produce them, including ones too large for a float.
integers = st.integers() | st.integers(min_value=10**300, max_value=10**400)
scalars = st.none() | st.booleans() | integers | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=10,
)
# Field values: any scalar, or a small container (cheaper to draw than a whole JSON tree).
fields = scalars | st.lists(scalars, max_size=2) | st.dictionaries(st.text(max_size=5), scalars, max_size=2)

STATUS_WORDS = [
    "submitted",
    "queued",
    "processing",
    "streaming",
    "complete",
    "completed",
    "failed",
    "error",
    "COMPLETE",
    " queued ",
    "",
]
statuses = st.sampled_from(STATUS_WORDS) | st.text(max_size=12) | fields
urls = (
    st.sampled_from(["", "https://cdn1.suno.ai/a.mp3", "https://cdn1.suno.ai/None.mp3", "ftp://x"]) | fields
)
ids = st.sampled_from(["a", "clip-1", "", "   "]) | fields

metadata = st.fixed_dictionaries(
    {},
    optional={
        "duration": fields,
        "tags": fields,
        "prompt": fields,
        "error_message": fields,
    },
)
clip_like = st.fixed_dictionaries(
    {"id": ids, "status": statuses},
    optional={
        "clip_id": ids,
        "audio_url": urls,
        "video_url": urls,
        "image_url": urls,
        "image_large_url": urls,
        "title": fields,
        "tags": fields,
        "prompt": fields,
        "text": fields,
        "duration": fields,
        "model_name": fields,
        "created_at": fields,
        "error_message": fields,
        "fail_reason": fields,
        "metadata": metadata | fields,
    },
)
clips_or_junk = clip_like | fields
fetch_like = st.fixed_dictionaries(
    {"code": st.sampled_from(["success", "error"]) | fields},
    optional={
        "data": st.lists(clips_or_junk, max_size=3) | clips_or_junk | st.none(),
        "message": fields,
    },
)
generate_like = st.fixed_dictionaries(
    {},
    optional={
        "id": ids,
        "status": statuses,
        "clips": st.lists(clips_or_junk, max_size=3) | fields,
        "metadata": fields,
        "batch_size": fields,
    },
)
feed_like = st.lists(clips_or_junk, max_size=4) | st.fixed_dictionaries(
    {}, optional={"clips": st.lists(clips_or_junk, max_size=3), "data": st.lists(clips_or_junk, max_size=3)}
)
kinds = st.sampled_from(["music", "lyrics", "concat"])
bodies = json_values | st.text(max_size=60)


def _model_or_suno_error(parse: Any, *args: Any) -> Any:
    try:
        return parse(*args)
    except SunoError:
        return None


@FAST
@given(body=fetch_like | json_values, kind=kinds)
@example(
    body={"code": "success", "data": [{"id": "a", "status": "complete", "duration": 10**400}]}, kind="music"
)
def test_parse_fetch_answers_a_task_or_a_suno_error(body: Any, kind: TaskKind) -> None:
    task = _model_or_suno_error(parse_fetch, "task-1", body, kind)

    assert task is None or (isinstance(task, Task) and task.task_id == "task-1")


@FAST
@given(body=feed_like | json_values)
def test_parse_feed_answers_clips_or_a_suno_error(body: Any) -> None:
    clips = _model_or_suno_error(parse_feed, body)

    assert clips is None or all(isinstance(c, Clip) for c in clips)


@FAST
@given(body=generate_like | json_values, kind=kinds)
def test_parse_generate_response_answers_a_task_or_a_suno_error(body: Any, kind: TaskKind) -> None:
    task = _model_or_suno_error(parse_generate_response, body, kind)

    assert task is None or (isinstance(task, Task) and task.clips)


@FAST
@given(obj=clip_like | json_values)
@example(obj={"id": "a", "status": "complete", "audio_url": "https://x.test/a.mp3", "duration": float("inf")})
def test_parse_clip_answers_a_sane_clip_or_a_suno_error(obj: Any) -> None:
    clip = _model_or_suno_error(parse_clip, obj)

    if clip is None:
        return
    assert isinstance(clip, Clip)
    assert clip.id
    # Only a complete clip has final audio; a preview only exists before completion.
    assert clip.audio_url is None or clip.status is Status.COMPLETE
    assert clip.preview_url is None or clip.status is Status.STREAMING
    assert clip.duration is None or 0 <= clip.duration < float("inf")


@FAST
@given(
    status_code=st.integers(min_value=100, max_value=599),
    body=bodies,
    retry_after=st.none() | st.text(max_size=12) | st.integers(-5, 10**6).map(str),
)
def test_error_from_response_always_gives_an_upstream_error(
    status_code: int, body: Any, retry_after: str | None
) -> None:
    headers = {} if retry_after is None else {"retry-after": retry_after}

    error = error_from_response(status_code, body, headers)

    assert isinstance(error, UpstreamError)
    assert error.message
    assert error.status_code == status_code


@FAST
@given(body=bodies)
def test_is_error_body_never_raises(body: Any) -> None:
    assert isinstance(is_error_body(body), bool)


@FAST
@given(raw=json_values | st.text())
def test_normalize_status_never_raises(raw: Any) -> None:
    assert isinstance(normalize_status(raw), Status)


@FAST
@given(word=st.sampled_from(STATUS_WORDS[:-1]), pad=st.text(alphabet=" \t", max_size=3))
def test_normalize_status_ignores_case_and_surrounding_space(word: str, pad: str) -> None:
    assert normalize_status(pad + word.upper() + pad) is normalize_status(word.strip().lower())
