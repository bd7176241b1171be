"""HTTP client for the two Suno endpoint families gptproto sells.

- :class:`TaskApi`: the vendor's "official format". Submit returns a task id; the
  task is polled at ``GET /v1/suno/fetch/{task_id}``.
- :class:`ClipApi`: the Suno-native shape. Generate returns a batch id and its clips;
  clips are polled together at ``GET /v1/suno/feed?ids=a,b``.

Both return :class:`~suno_mcp.domain.models.Task` and speak through one :class:`Upstream`,
which owns authentication, error mapping and the retry policy. The
``httpx.AsyncClient`` is injected; this module never builds one per request. Saving
audio files is :mod:`suno_mcp.upstream.downloads`.

Each family builds its own submit body from a :class:`~suno_mcp.domain.models.MusicRequest`
(:func:`task_api_body`, :func:`clip_api_body`). Ids are the upstream's and go into URL
paths only through :func:`suno_mcp.domain.ids.url_segment`. A submit keeps the start of its
answer as received on ``Task.raw_answer`` (or ``MalformedResponseError.raw_answer``).

Adding an endpoint whose wire format becomes known is one method on the right class: build
the body, call ``self._up.post_answer(...)`` and parse the answer with :func:`parse_clip` /
:func:`parse_generate_response`, as :meth:`ClipApi.cover` and :meth:`ClipApi.upload_audio` do.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import httpx
from pydantic import SecretStr

from suno_mcp.domain.errors import (
    ConfigurationError,
    MalformedResponseError,
    NotFoundError,
    SunoError,
    UploadAnswerError,
    UpstreamConnectionError,
    UpstreamTimeoutError,
    decode_json,
    error_from_response,
    is_error_body,
)
from suno_mcp.domain.ids import check_id, is_id, url_segment
from suno_mcp.domain.models import (
    ApiFamily,
    Clip,
    CoverRequest,
    MusicRequest,
    Status,
    Task,
    TaskKind,
    TaskRef,
    aggregate_status,
    failure_text,
    normalize_status,
)
from suno_mcp.upstream.retry import RetryPolicy, call_with_retry

log = logging.getLogger(__name__)

SUBMIT_READ_TIMEOUT_S = 60.0
# How much of a submit's answer is kept as received, for the ledger and for a person to read.
RAW_ANSWER_MAX = 2048

NO_KEY_MESSAGE = (
    "No API key is set. Set GPTPROTO_API_KEY to your gptproto key in this server's environment "
    "(the 'env' block of your MCP client's config), then restart the server; or start it with "
    "`suno-mcp serve --sandbox` to try it offline with synthesized audio."
)


@dataclass(frozen=True)
class Answer:
    """A decoded answer and, when asked for, the start of its body as received (key scrubbed)."""

    body: Any
    raw: str | None = None


class Upstream:
    """Authenticated JSON requests to the vendor, with typed errors and retries."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str | SecretStr | None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        submit_read_timeout: float = SUBMIT_READ_TIMEOUT_S,
    ) -> None:
        self._http = http
        self._submit_read_timeout = submit_read_timeout
        self._base_url = base_url.rstrip("/")
        # Kept as SecretStr so that vars(), reprs and tracebacks with locals never show it.
        self.__key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        self._retry = retry or RetryPolicy()
        self._clock = clock

    def __repr__(self) -> str:
        return f"Upstream(base_url={self._base_url!r}, api_key={'***' if self.__key else None})"

    def with_key(self, api_key: SecretStr | None) -> Upstream:
        """The same upstream (one HTTP client, one retry policy) speaking with another key:
        team mode's per-caller keys."""
        return Upstream(
            self._http,
            base_url=self._base_url,
            api_key=api_key,
            retry=self._retry,
            clock=self._clock,
            submit_read_timeout=self._submit_read_timeout,
        )

    @property
    def base_url(self) -> str:
        return self._base_url

    def _headers(self) -> dict[str, str]:
        if not self.__key:
            raise ConfigurationError(NO_KEY_MESSAGE)
        return {"Authorization": f"Bearer {self.__key.get_secret_value()}", "Accept": "application/json"}

    async def get_json(
        self, path: str, *, params: Mapping[str, str] | None = None, deadline: float | None = None
    ) -> Any:
        """GET a JSON document; retried on transient failures (reads are safe to repeat)."""
        answer = await call_with_retry(
            lambda: self._once("GET", path, params=params),
            policy=self._retry,
            idempotent=True,
            deadline=deadline,
            clock=self._clock,
        )
        return answer.body

    async def post_json(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST a submit. Repeated only if an attempt failed before anything was sent."""
        return (await self.post_answer(path, body)).body

    async def post_answer(self, path: str, body: Mapping[str, Any]) -> Answer:
        """POST a submit and keep the start of its answer as received (see :data:`RAW_ANSWER_MAX`)."""
        return await call_with_retry(
            lambda: self._once(
                "POST", path, json=body, read_timeout=self._submit_read_timeout, keep_raw=True
            ),
            policy=self._retry,
            idempotent=False,
            clock=self._clock,
        )

    async def _once(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
        read_timeout: float | None = None,
        keep_raw: bool = False,
    ) -> Answer:
        headers = self._headers()
        url = self._base_url + path
        extensions = {}
        if read_timeout is not None:
            timeout = self._http.timeout
            extensions["timeout"] = httpx.Timeout(
                connect=timeout.connect,
                read=read_timeout,
                write=timeout.write,
                pool=timeout.pool,
            ).as_dict()
        try:
            response = await self._http.request(
                method, url, params=params, json=json, headers=headers, extensions=extensions
            )
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as err:
            raise UpstreamTimeoutError(
                f"could not connect to {self._base_url} in time", request_sent=False
            ) from err
        except httpx.TimeoutException as err:
            raise UpstreamTimeoutError(f"{self._base_url} did not answer in time", request_sent=True) from err
        except httpx.ConnectError as err:
            raise UpstreamConnectionError(
                f"could not connect to {self._base_url}", request_sent=False
            ) from err
        except httpx.TransportError as err:
            raise UpstreamConnectionError(
                f"the connection to {self._base_url} failed mid-request ({type(err).__name__})",
                request_sent=True,
            ) from err
        log.debug("%s %s -> %s", method, path, response.status_code)
        try:
            body = self._decode(response)
        except SunoError as err:
            # An upstream that quotes the request back must not put the key into our errors.
            scrubbed = self._scrub(err.message)
            if scrubbed != err.message:
                err.message = scrubbed
                err.args = (err.message,)
            if isinstance(err, MalformedResponseError) and err.raw_answer is None:
                err.raw_answer = self._raw(response)
            raise
        return Answer(body, self._raw(response) if keep_raw else None)

    def _scrub(self, text: str) -> str:
        secret = self.__key.get_secret_value() if self.__key else ""
        return text.replace(secret, "***") if secret else text

    def _raw(self, response: httpx.Response) -> str:
        # Scrubbed before it is cut, so a key split by the cut cannot leave half of itself.
        text = self._scrub(response.content.decode("utf-8", "replace"))
        return text if len(text) <= RAW_ANSWER_MAX else text[: RAW_ANSWER_MAX - 1] + "…"

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        raw = response.content
        try:
            body: Any = decode_json(raw)
        except MalformedResponseError:
            if response.is_success:
                raise
            body = raw.decode("utf-8", "replace")
        if not response.is_success or is_error_body(body):
            raise error_from_response(response.status_code, body, response.headers)
        return body


# ---------------------------------------------------------------- parsing


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


# ---------------------------------------------------------------- the two families


class MusicApi(Protocol):
    """What both endpoint families offer for music."""

    family: ApiFamily

    def with_key(self, api_key: SecretStr | None) -> MusicApi:
        """This family speaking with another key (team mode: the caller's own)."""
        ...

    async def submit_music(self, request: MusicRequest) -> Task:
        """Send one generation (or extension) request; costs money."""
        ...

    async def fetch(self, refs: Sequence[TaskRef], *, deadline: float | None = None) -> dict[str, Task]:
        """The current state of each task the upstream knows, keyed by task id.

        A task the upstream does not know is left out of the answer, so one bad id
        cannot spoil a batch.
        """
        ...


class TaskApi:
    """The task API: ``/v1/suno/submit/*`` and ``/v1/suno/fetch/{id}``."""

    family: ApiFamily = "task"

    def __init__(self, upstream: Upstream) -> None:
        self._up = upstream

    def with_key(self, api_key: SecretStr | None) -> TaskApi:
        """This family speaking with another key (team mode: the caller's own)."""
        return TaskApi(self._up.with_key(api_key))

    async def submit_music(self, request: MusicRequest) -> Task:
        return await self._submit("/v1/suno/submit/music", task_api_body(request), "music")

    async def submit_lyrics(self, prompt: str) -> Task:
        """Ask for lyrics written from a description."""
        return await self._submit("/v1/suno/submit/lyrics", {"prompt": prompt}, "lyrics")

    async def _submit(self, path: str, body: Mapping[str, Any], kind: TaskKind) -> Task:
        answer = await self._up.post_answer(path, body)
        task_id = submitted_task_id(answer.body)
        if task_id is None:
            # Only an answer with no id at all: the upstream may still have taken it.
            raise MalformedResponseError(
                "the submit answer has no task id (looked in 'data', 'data.task_id', 'data.id', "
                "'data.taskId', 'task_id' and 'id')",
                raw_answer=answer.raw,
            )
        return Task(task_id=task_id, api="task", kind=kind, status=Status.PENDING, raw_answer=answer.raw)

    async def fetch_one(
        self, task_id: str, kind: TaskKind = "music", *, deadline: float | None = None
    ) -> Task:
        """One task's state.

        A lyrics task the fetch endpoint does not know is looked up at the vendor's other
        documented path, ``GET /v1/suno/generate/lyrics/{id}``.
        """
        check_id(task_id, "task_id")
        segment = url_segment(task_id)
        try:
            body = await self._up.get_json(f"/v1/suno/fetch/{segment}", deadline=deadline)
        except NotFoundError:
            if kind != "lyrics":
                raise
            body = await self._up.get_json(f"/v1/suno/generate/lyrics/{segment}", deadline=deadline)
            return parse_lyrics_answer(task_id, body)
        return parse_fetch(task_id, body, kind)

    async def fetch(self, refs: Sequence[TaskRef], *, deadline: float | None = None) -> dict[str, Task]:
        # The task API has no batch fetch: one request per task.
        tasks: dict[str, Task] = {}
        for ref in refs:
            try:
                tasks[ref.task_id] = await self.fetch_one(ref.task_id, ref.kind, deadline=deadline)
            except NotFoundError:
                continue
        return tasks


class ClipApi:
    """The clip API: ``/suno/generate``, ``/v1/suno/feed`` and ``/suno/generate/concat/v2``."""

    family: ApiFamily = "clip"
    MAX_IDS_PER_FEED = 40  # keeps the query string short

    def __init__(self, upstream: Upstream) -> None:
        self._up = upstream

    def with_key(self, api_key: SecretStr | None) -> ClipApi:
        """This family speaking with another key (team mode: the caller's own)."""
        return ClipApi(self._up.with_key(api_key))

    async def submit_music(self, request: MusicRequest) -> Task:
        return await self._generate("/suno/generate", clip_api_body(request), "music")

    async def concat(self, clip_id: str) -> Task:
        """Ask for the whole song ending with ``clip_id`` (after extensions) as one clip."""
        check_id(clip_id, "clip_id")
        return await self._generate(
            "/suno/generate/concat/v2", {"clip_id": clip_id, "is_infill": False}, "concat"
        )

    async def cover(self, request: CoverRequest) -> Task:
        """A new version of ``request.cover_clip_id`` in another style (costs credits; two clips)."""
        check_id(request.cover_clip_id, "cover_clip_id")
        return await self._generate("/suno/generate", request.wire_body(), "cover")

    async def upload_audio(self, url: str) -> Task:
        """Bring the song at ``url`` in as a clip, complete at once, that an upload model continues."""
        answer = await self._up.post_answer("/v1/suno/uploads/audio-url", {"url": url})
        try:
            clip_id = uploaded_clip_id(answer.body)
        except UploadAnswerError as err:
            err.raw_answer = answer.raw
            raise
        clip = Clip(id=clip_id, status=Status.COMPLETE, title=upload_title(url))
        return Task(
            task_id=clip_id,
            api="clip",
            kind="upload",
            status=Status.COMPLETE,
            clips=[clip],
            raw_answer=answer.raw,
        )

    async def _generate(self, path: str, body: Mapping[str, Any], kind: TaskKind) -> Task:
        answer = await self._up.post_answer(path, body)
        try:
            task = parse_generate_response(answer.body, kind=kind)
        except MalformedResponseError as err:
            err.raw_answer = err.raw_answer or answer.raw
            raise
        return task.model_copy(update={"raw_answer": answer.raw})

    async def feed(self, clip_ids: Sequence[str], *, deadline: float | None = None) -> dict[str, Clip]:
        """The clips the upstream knows among ``clip_ids``, keyed by id."""
        found: dict[str, Clip] = {}
        ids = list(dict.fromkeys(clip_ids))
        for start in range(0, len(ids), self.MAX_IDS_PER_FEED):
            chunk = [check_id(i, "clip_id") for i in ids[start : start + self.MAX_IDS_PER_FEED]]
            body = await self._up.get_json(
                "/v1/suno/feed", params={"ids": ",".join(chunk)}, deadline=deadline
            )
            found.update((clip.id, clip) for clip in parse_feed(body))
        return found

    async def fetch(self, refs: Sequence[TaskRef], *, deadline: float | None = None) -> dict[str, Task]:
        # One feed request covers every task's clips: that is the point of batching.
        wanted = [cid for ref in refs for cid in (ref.clip_ids or (ref.task_id,))]
        clips = await self.feed(wanted, deadline=deadline)
        tasks: dict[str, Task] = {}
        for ref in refs:
            ids = ref.clip_ids or (ref.task_id,)
            mine = [clips[i] for i in ids if i in clips]
            if not mine:
                continue
            status = aggregate_status(mine)
            if len(mine) < len(ids) and status.finished:
                # A clip the feed left out is not finished as far as we know.
                status = Status.STREAMING if any(c.status.playable for c in mine) else Status.RUNNING
            failed = [c.error for c in mine if c.status is Status.FAILED and c.error]
            tasks[ref.task_id] = Task(
                task_id=ref.task_id,
                api="clip",
                kind=ref.kind,
                status=status,
                raw_status=mine[0].raw_status,
                clips=mine,
                error="; ".join(dict.fromkeys(failed)) if status is Status.FAILED and failed else None,
            )
        return tasks
