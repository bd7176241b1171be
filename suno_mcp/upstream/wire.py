"""The vendor's wire format: reading its answers and building its request bodies.

Pure functions, no I/O. The answers are read tolerantly, since gateways of the vendor's
shape differ in where they put things: each ``parse_*`` function turns one kind of answer
into a :class:`~suno_mcp.domain.models.Task` or :class:`~suno_mcp.domain.models.Clip`, or
raises :class:`~suno_mcp.domain.errors.MalformedResponseError` (an upload's answer:
:class:`~suno_mcp.domain.errors.UploadAnswerError`). An id read from an answer must pass
:func:`suno_mcp.domain.ids.is_id`.

Each family's submit body is built here from a :class:`~suno_mcp.domain.models.MusicRequest`
(:func:`task_api_body`, :func:`clip_api_body`): a request stays a model until the wire. The
bodies of one or two literal fields (lyrics, concat, upload) stay beside their endpoint in
:mod:`suno_mcp.upstream.families`. A cover's body is still
:meth:`~suno_mcp.domain.models.CoverRequest.wire_body`, which the service also fingerprints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from suno_mcp.domain.errors import MalformedResponseError, UploadAnswerError
from suno_mcp.domain.ids import is_id
from suno_mcp.domain.models import (
    Clip,
    MusicRequest,
    Status,
    Task,
    TaskKind,
    aggregate_status,
    failure_text,
    normalize_status,
)

# ---------------------------------------------------------------- answers


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):  # OverflowError: a JSON integer too large for a float
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _url(value: Any) -> str | None:
    text = _text(value)
    if text is None or not text.startswith(("http://", "https://")):
        return None
    return text


def parse_clip(obj: Any) -> Clip:
    """One clip from either family (task-API fetch item or clip-API clip object)."""
    if not isinstance(obj, Mapping):
        raise MalformedResponseError(f"expected a clip object, got {type(obj).__name__}")
    clip_id = _text(obj.get("id") or obj.get("clip_id"))
    if clip_id is None:
        raise MalformedResponseError("a clip in the answer has no id")
    if not is_id(clip_id):
        raise MalformedResponseError(f"a clip id in the answer is not an id: {clip_id[:40]!r}")
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    raw_status = _text(obj.get("status"))
    status = normalize_status(raw_status)
    url = _url(obj.get("audio_url"))
    error = _text(obj.get("error_message") or meta.get("error_message") or obj.get("fail_reason"))

    audio_url = preview_url = None
    if status is Status.COMPLETE:
        audio_url = url
    elif status is Status.FAILED:
        pass  # a failed clip's URL is junk (for example ".../None.mp3")
    elif url is not None:
        # Before completion any URL is the live preview stream, never the final file.
        preview_url = url
        status = Status.STREAMING
    if status is Status.COMPLETE and audio_url is None:
        status = Status.RUNNING  # "complete" without a file: not finished for us yet
    if status is Status.FAILED:
        error = failure_text(raw_status, error, "clip")

    return Clip(
        id=clip_id,
        status=status,
        raw_status=raw_status,
        title=_text(obj.get("title")),
        audio_url=audio_url,
        preview_url=preview_url,
        image_url=_url(obj.get("image_large_url")) or _url(obj.get("image_url")),
        video_url=_url(obj.get("video_url")),
        duration=_number(obj.get("duration")) or _number(meta.get("duration")),
        model=_text(obj.get("model_name") or obj.get("mv")),
        tags=_text(obj.get("tags") or meta.get("tags")),
        lyrics=_text(obj.get("prompt") or meta.get("prompt")),
        error=error,
        created_at=_text(obj.get("created_at")),
    )


def _items(data: Any) -> list[Any]:
    """The list of clip objects inside a fetch answer's ``data``, whatever its nesting."""
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping):
        for key in ("data", "clips", "items"):
            inner = data.get(key)
            if isinstance(inner, list):
                return inner
        if "id" in data or "clip_id" in data:
            return [data]
        return []
    if data is None:
        return []
    raise MalformedResponseError(f"expected a list of clips, got {type(data).__name__}")


def parse_fetch(task_id: str, body: Any, kind: TaskKind = "music") -> Task:
    """A task-API fetch answer (``{"code": "success", "data": [...]}``) as a Task."""
    if not isinstance(body, Mapping):
        raise MalformedResponseError("the fetch answer is not a JSON object")
    data = body.get("data")
    if kind == "lyrics":
        return _parse_lyrics(task_id, data)
    clips = [parse_clip(item) for item in _items(data)]
    raw = _text(data.get("status")) if isinstance(data, Mapping) else None
    status = aggregate_status(clips)
    error = None
    if raw is not None and normalize_status(raw) is Status.FAILED:
        # A gateway's task-level verdict ({"status": "FAILURE", "fail_reason": ...}) ends
        # the task even while its clips still say queued: they will never move.
        assert isinstance(data, Mapping)
        status = Status.FAILED
        error = failure_text(raw, _task_reason(data))
    elif not clips and raw is not None:
        status = normalize_status(raw)
        if status is Status.COMPLETE:
            status = Status.RUNNING  # "success" with no clip to hear: not finished for us yet
    else:
        failed = [c.error for c in clips if c.status is Status.FAILED and c.error]
        error = "; ".join(dict.fromkeys(failed)) if status is Status.FAILED and failed else None
    return Task(
        task_id=task_id,
        api="task",
        kind=kind,
        status=status,
        raw_status=raw or (clips[0].raw_status if clips else None),
        clips=clips,
        error=error,
    )


def _task_reason(data: Mapping[str, Any]) -> str | None:
    return _text(
        data.get("fail_reason") or data.get("error_message") or data.get("error") or data.get("reason")
    )


_LYRICS_KEYS = ("text", "lyrics", "lyric")


def parse_lyrics_answer(task_id: str, body: Any) -> Task:
    """An answer of ``GET /v1/suno/generate/lyrics/{id}``, whose shape is not documented.

    Read tolerantly: wrapped in ``{"code", "data"}`` or bare, one object or a list, with or
    without an id or a status word.
    """
    data = body.get("data") if isinstance(body, Mapping) and ("data" in body or "code" in body) else body
    if isinstance(data, str):
        data = {"text": data}  # the lyrics themselves
    if isinstance(data, Mapping) and not _items(data):
        data = [data] if any(k in data for k in (*_LYRICS_KEYS, "status", "title")) else []
    return _parse_lyrics(task_id, data)


def _parse_lyrics(task_id: str, data: Any) -> Task:
    items = _items(data)
    item = items[0] if items else {}
    if not isinstance(item, Mapping):
        raise MalformedResponseError("the lyrics answer is not an object")
    raw = _text(item.get("status"))
    text = _text(next((item[k] for k in _LYRICS_KEYS if item.get(k)), None))
    if not item:
        status = Status.PENDING
    elif raw is None and text is not None:
        status = Status.COMPLETE  # lyrics and no status word: nothing left to wait for
    else:
        status = normalize_status(raw)
    if status is Status.COMPLETE and text is None:
        status = Status.RUNNING
    error = _text(item.get("error_message") or item.get("fail_reason"))
    if status is Status.FAILED:
        error = failure_text(raw, error, "lyrics task")
    return Task(
        task_id=task_id,
        api="task",
        kind="lyrics",
        status=status,
        raw_status=raw,
        error=error if status is Status.FAILED else None,
        lyrics_title=_text(item.get("title")),
        lyrics_text=text,
    )


def parse_generate_response(body: Any, kind: TaskKind = "music") -> Task:
    """A clip-API generate answer: a batch id and its clips (bare, or wrapped in ``data``)."""
    if not isinstance(body, Mapping):
        raise MalformedResponseError("the generate answer is not a JSON object")
    wrapped = body.get("data")
    if "clips" not in body and isinstance(wrapped, Mapping):
        body = wrapped  # {"code": "success", "data": {...the batch...}}
    elif "clips" not in body and isinstance(wrapped, list):
        body = {"clips": wrapped}
    clips_raw = body.get("clips")
    if isinstance(clips_raw, list) and clips_raw:
        clips = [parse_clip(c) for c in clips_raw]
        batch_id = _text(body.get("id")) or clips[0].id
        if not is_id(batch_id):
            raise MalformedResponseError(f"the batch id in the answer is not an id: {batch_id[:40]!r}")
    elif "id" in body and "status" in body:
        # concat answers with the one new clip itself
        clips = [parse_clip(body)]
        batch_id = clips[0].id
    else:
        raise MalformedResponseError("the generate answer has no clips")
    return Task(
        task_id=batch_id,
        api="clip",
        kind=kind,
        status=aggregate_status(clips),
        raw_status=clips[0].raw_status,
        clips=clips,
    )


def submitted_task_id(answer: Any) -> str | None:
    """The task id in a task-API submit answer, wherever a gateway of this shape puts it.

    The vendor documents ``{"code": "success", "data": "<task id>"}``; gateways of the same
    shape also answer with ``data`` as an object holding ``task_id``, ``id`` or ``taskId``,
    or with the id at the top level. A paid submit's id must not be thrown away over that.
    """
    if not isinstance(answer, Mapping):
        return None
    data = answer.get("data")
    inner = data if isinstance(data, Mapping) else {}
    for value in (
        data,
        inner.get("task_id"),
        inner.get("id"),
        inner.get("taskId"),
        answer.get("task_id"),
        answer.get("id"),
        answer.get("taskId"),
    ):
        if isinstance(value, bool) or not isinstance(value, str | int):
            continue
        text = _text(value)
        if text is not None and is_id(text):
            return text
    return None


# Where an upload's answer may carry the new clip's id: the vendor's example answer is only
# {"status": "success"}, so every place a gateway of this kind uses is looked at, in order.
_UPLOAD_ID_PLACES = (("id",), ("clip_id",), ("data", "id"), ("data", "clip_id"))
_KEYS_SHOWN = 12


def _keys_of(body: Mapping[str, Any]) -> str:
    keys = [str(k)[:40] for k in body]
    data = body.get("data")
    if isinstance(data, Mapping):
        keys += [f"data.{str(k)[:40]}" for k in data]
    shown = ", ".join(keys[:_KEYS_SHOWN]) + (", …" if len(keys) > _KEYS_SHOWN else "")
    return shown or "none"


def uploaded_clip_id(body: Any) -> str:
    """The id of the clip an upload made: ``id``, ``clip_id``, or either under ``data``.

    Raises :class:`UploadAnswerError` naming the keys received when none holds an id.
    """
    if not isinstance(body, Mapping):
        raise UploadAnswerError(f"the upload's answer is not a JSON object (got {type(body).__name__})")
    for place in _UPLOAD_ID_PLACES:
        value: Any = body
        for key in place:
            value = value.get(key) if isinstance(value, Mapping) else None
        if isinstance(value, bool) or not isinstance(value, str | int):
            continue
        text = _text(value)
        if text is not None and is_id(text):
            return text
    raise UploadAnswerError(
        "the upload's answer carries no clip id (looked in 'id', 'clip_id', 'data.id' and "
        f"'data.clip_id'; the keys received: {_keys_of(body)})"
    )


def upload_title(url: str) -> str:
    """A title for uploaded audio: its file name without the extension."""
    stem = PurePosixPath(unquote(urlsplit(url).path)).stem.strip()
    return stem[:80] or "Uploaded audio"


def parse_feed(body: Any) -> list[Clip]:
    """A clip-API feed answer: a list of clips (bare, or under ``clips``/``data``)."""
    return [parse_clip(item) for item in _items(body)]


# ---------------------------------------------------------------- request bodies


def task_api_body(request: MusicRequest) -> dict[str, Any]:
    """The task API's submit body for ``request``.

    ``prompt`` carries lyrics (or a custom-mode description). Without lyrics it is left out,
    as the vendor's inspiration-mode and extension examples leave it out, except in custom
    mode with ``make_instrumental``, where the vendor's instrumental scenario sends it empty.
    ``task_id`` (a follow-up of an earlier task) is sent whenever it is set.
    """
    body = request.wire_body()
    lyrics = body.pop("prompt", None) or None  # "" and None both mean: no lyrics
    custom_instrumental = (
        request.make_instrumental and not request.gpt_description_prompt and not request.continue_clip_id
    )
    if lyrics is not None:
        body["prompt"] = lyrics
    elif custom_instrumental:
        body["prompt"] = ""
    return body


def clip_api_body(request: MusicRequest) -> dict[str, Any]:
    """The clip API's generate body for ``request``: ``prompt`` is always sent, empty without lyrics.

    The vendor's clip-API scenarios send ``"prompt": ""`` in inspiration mode and for
    instrumentals, so an empty prompt is the family's "no lyrics".
    """
    body = request.wire_body()
    body["prompt"] = request.prompt or ""
    return body
