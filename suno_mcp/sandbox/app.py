"""The sandbox's HTTP face: gptproto's two Suno API families, a tiny CDN and a control page.

Routes (API routes need ``Authorization: Bearer <key>``; media and ``/_sandbox`` need none):

    POST /v1/suno/submit/music        task API    -> {"code":"success","data":"<task id>"}
    POST /v1/suno/submit/lyrics       task API
    GET  /v1/suno/fetch/{task_id}     task API    -> {"code":"success","data":[item, ...]}
    POST /suno/generate               clip API    -> {"id": batch, "clips": [clip, clip], ...}
    GET  /v1/suno/feed?ids=a,b        clip API    -> [clip, ...]
    POST /suno/generate/concat/v2     clip API    -> clip
    GET  /sandbox/audio/{clip}.wav    final audio (404 until complete)
    GET  /sandbox/preview/{clip}.wav  what has "streamed" so far
    GET  /sandbox/image/{clip}.png    cover art (``?size=`` 16..1024, default 64)
    POST /v1/suno/uploads/audio-url   clip API    -> {"status":"success","id":"m_<uuid>"} (uploads.py)
    GET  /_sandbox/stats              counters (per account and in total, fetches per task);
                                      POST/DELETE /_sandbox/faults: inject / clear
    GET/POST /_sandbox/profile        the latency profile new tasks get ({"profile": "fast"})
    GET/POST /_sandbox/rate_limit     the sandbox's own rate limit ({"rps": 5, "burst": 10})
    GET  /_sandbox/tasks/{id}/timeline  when a task truly became playable and complete

Every endpoint request is counted, then authenticated, then rate limited (when a limit is
set), then given its fault (if any), then answered. Media URLs are built from the request's
own base URL so they work on any port.

Each API key is an account (state.py): the API routes see only the caller's own tasks and
clips. Media URLs and ``/_sandbox`` need no key and see everything, as a CDN link works for
whoever holds it.
"""

from __future__ import annotations

import hmac
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from suno_mcp.sandbox import answers
from suno_mcp.sandbox.audio import SAMPLE_RATE, render_cover_png, render_pcm, to_wav
from suno_mcp.sandbox.covers import CoverRequest, check_cover_fields, cover_metadata, create_cover
from suno_mcp.sandbox.lyrics import keywords
from suno_mcp.sandbox.profiles import PROFILE_NAMES
from suno_mcp.sandbox.ratelimit import retry_after_header
from suno_mcp.sandbox.state import (
    Clip,
    MusicRequest,
    Phase,
    SandboxError,
    SandboxState,
    Segment,
    Task,
    account_of,
)
from suno_mcp.sandbox.timeline import epoch_of
from suno_mcp.sandbox.uploads import ANSWER_SHAPE_FAULTS, UploadPolicy, upload_answer, upload_from_url

Handler = Callable[[Request], Awaitable[Response]]

# Rendered audio is cached per clip up to this many bytes (least recently used goes first):
# a minute of audio is ~2.6 MB and a soak run may touch thousands of clips.
MEDIA_CACHE_BYTES = 256 * 1024 * 1024
_LOCK_STRIPES = 64
_BYTES_PER_SAMPLE = 2

SANDBOX_USER_ID = "00000000-0000-4000-8000-000000005a4d"

_FAMILY = {
    "submit_music": "task",
    "submit_lyrics": "task",
    "fetch": "task",
    "generate": "clip",
    "feed": "clip",
    "concat": "clip",
    "media": "media",
    "upload": "clip",
}

_CLIP_STATUS = {
    Phase.SUBMITTED: "submitted",
    Phase.QUEUED: "queued",
    Phase.GENERATING: "queued",
    Phase.STREAMING: "streaming",
    Phase.COMPLETE: "complete",
    Phase.FAILED: "error",
}
_TASK_STATUS = {
    Phase.SUBMITTED: "queued",
    Phase.QUEUED: "queued",
    Phase.GENERATING: "processing",
    Phase.STREAMING: "processing",
    Phase.COMPLETE: "completed",
    Phase.FAILED: "failed",
}

_CLIP_ERROR_CODES = {
    400: "invalid_request",
    401: "invalid_api_key",
    403: "insufficient_balance",
    404: "not_found",
    429: "rate_limit_exceeded",
    500: "internal_error",
    503: "service_unavailable",
}

_BAD_GATEWAY_HTML = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
# Cut off mid-object: a client must notice that this "success" is not JSON at all.
_MALFORMED_JSON = b'{"code":"success","data":[{"id":"'
_MALFORMED_MEDIA = b"<!DOCTYPE html><html><body><h1>Service temporarily unavailable</h1></body></html>"
_EXPIRED_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message></Error>"
)


# -- wire shapes ---------------------------------------------------------------------------


def task_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """The task API's error body, ``{"code":"error","data":null,"message":...}``."""
    return JSONResponse({"code": "error", "data": None, "message": message}, status, headers=headers)


def clip_error(
    status: int, message: str, error_type: str, headers: Mapping[str, str] | None = None
) -> Response:
    """The clip API's error body, ``{"error":{"message":...,"type":...,"code":...}}``."""
    code = _CLIP_ERROR_CODES.get(status, "error")
    body = {"error": {"message": message, "type": error_type, "code": code}}
    return JSONResponse(body, status, headers=headers)


def _error(
    family: str, status: int, message: str, error_type: str, headers: Mapping[str, str] | None = None
) -> Response:
    if family == "task":
        return task_error(status, message, headers)
    if family == "clip":
        return clip_error(status, message, error_type, headers)
    return Response(message + "\n", status, headers=headers, media_type="text/plain")


class DroppedResponse(Response):
    """Starts ``inner`` with a Content-Length it never honours, then abandons the connection.

    Returning without finishing the body makes uvicorn close the socket, so the client sees
    a protocol or read error after the headers, like a connection reset mid-download.
    """

    def __init__(self, inner: Response) -> None:
        super().__init__(bytes(inner.body), inner.status_code)
        self.raw_headers = [(k, v) for k, v in inner.raw_headers if k != b"content-length"]
        self.raw_headers.append((b"content-length", str(len(self.body) + 4096).encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send(
            {"type": "http.response.body", "body": bytes(self.body[: len(self.body) // 2]), "more_body": True}
        )


# -- request bodies --------------------------------------------------------------------------


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError:
        raise SandboxError(
            400, "Invalid request body: expected a JSON object", "invalid_request_error"
        ) from None
    if not isinstance(body, dict):
        raise SandboxError(400, "Invalid request body: expected a JSON object", "invalid_request_error")
    return body


def _invalid(key: str, expected: str) -> SandboxError:
    return SandboxError(400, f"Invalid field {key}: expected {expected}", "invalid_request_error")


def _opt_str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _invalid(key, "a string")


def _opt_bool(body: Mapping[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise _invalid(key, "true or false")


def _opt_number(body: Mapping[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
        return float(value)
    raise _invalid(key, "a number")


def parse_music_request(body: Mapping[str, Any]) -> MusicRequest:
    """Type-check a music submit body (unknown fields are ignored)."""
    return MusicRequest(
        prompt=_opt_str(body, "prompt") or "",
        gpt_description_prompt=_opt_str(body, "gpt_description_prompt") or "",
        make_instrumental=_opt_bool(body, "make_instrumental"),
        mv=_opt_str(body, "mv") or None,
        tags=_opt_str(body, "tags") or "",
        title=_opt_str(body, "title") or "",
        continue_clip_id=_opt_str(body, "continue_clip_id") or None,
        continue_at=_opt_number(body, "continue_at"),
        task_id=_opt_str(body, "task_id"),
        infill_start_s=_opt_number(body, "infill_start_s"),
        infill_end_s=_opt_number(body, "infill_end_s"),
    )


def parse_cover_request(body: Mapping[str, Any]) -> CoverRequest | None:
    """The cover fields of a generate body, or None when it does not ask for a cover."""
    _opt_str(body, "generation_type")
    cover_clip_id = _opt_str(body, "cover_clip_id")
    if not check_cover_fields(_opt_str(body, "task"), cover_clip_id):
        return None
    assert cover_clip_id is not None  # check_cover_fields refuses a cover without one
    return CoverRequest(cover_clip_id=cover_clip_id, negative_tags=_opt_str(body, "negative_tags") or "")


def _feed_ids(request: Request) -> list[str]:
    return [i.strip() for i in request.query_params.get("ids", "").split(",") if i.strip()]


# -- media -----------------------------------------------------------------------------------


def _samples(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)


def total_samples(segments: tuple[Segment, ...]) -> int:
    """How many samples a clip's audio has (each segment rounded on its own)."""
    return sum(_samples(s.duration_s) for s in segments)


def render_range(segments: tuple[Segment, ...], lo: int, hi: int) -> bytes:
    """PCM for samples ``[lo, hi)`` of a clip made of ``segments``."""
    out = bytearray()
    pos = 0
    for seg in segments:
        n = _samples(seg.duration_s)
        a, b = max(lo, pos), min(hi, pos + n)
        if a < b:
            start = _samples(seg.start_s) + (a - pos)
            if seg.pcm is not None:
                pcm = seg.pcm[start * _BYTES_PER_SAMPLE : (start + b - a) * _BYTES_PER_SAMPLE]
            else:
                pcm = render_pcm(seg.style, (b - a) / SAMPLE_RATE, start_s=start / SAMPLE_RATE)
            want = (b - a) * _BYTES_PER_SAMPLE
            # Guard against off-by-one rounding in the renderer so segments always line up.
            out += pcm[:want].ljust(want, b"\x00")
        pos += n
        if pos >= hi:
            break
    return bytes(out)


class MediaCache:
    """Rendered audio and covers per clip, bounded by bytes, rendered off the event loop."""

    def __init__(self, budget_bytes: int = MEDIA_CACHE_BYTES) -> None:
        self._budget = budget_bytes
        self._items: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._size = 0
        self._locks: list[anyio.Lock] = []

    def _get(self, key: tuple[str, str]) -> bytes | None:
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
        return data

    def _put(self, key: tuple[str, str], data: bytes) -> None:
        self._drop(key)
        self._items[key] = data
        self._size += len(data)
        while self._size > self._budget and len(self._items) > 1:
            _, evicted = self._items.popitem(last=False)
            self._size -= len(evicted)

    def _drop(self, key: tuple[str, str]) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self._size -= len(old)

    def _lock(self, clip_id: str) -> anyio.Lock:
        # Striped locks: two requests for one clip render it once, without a lock per clip.
        if not self._locks:
            self._locks = [anyio.Lock() for _ in range(_LOCK_STRIPES)]
        return self._locks[hash(clip_id) % _LOCK_STRIPES]

    async def _pcm(self, clip: Clip, samples: int) -> bytes:
        have = self._get(("pcm", clip.id)) or b""
        rendered = len(have) // _BYTES_PER_SAMPLE
        if rendered < samples:
            # Render only the missing tail: the renderer joins [0,a) + [a,b) seamlessly.
            more = await anyio.to_thread.run_sync(render_range, clip.segments, rendered, samples)
            have += more
            self._put(("pcm", clip.id), have)
        return have[: samples * _BYTES_PER_SAMPLE]

    async def final_wav(self, clip: Clip) -> bytes:
        """The whole clip as a WAV file."""
        async with self._lock(clip.id):
            cached = self._get(("wav", clip.id))
            if cached is not None:
                return cached
            pcm = await self._pcm(clip, total_samples(clip.segments))
            wav = to_wav(pcm)
            self._drop(("pcm", clip.id))
            self._put(("wav", clip.id), wav)
            return wav

    async def preview_wav(self, clip: Clip, seconds: float) -> bytes:
        """The first ``seconds`` of the clip as a WAV file."""
        async with self._lock(clip.id):
            return to_wav(await self._pcm(clip, _samples(seconds)))

    async def cover_png(self, clip: Clip, size: int) -> bytes:
        """The clip's cover art."""
        key = ("png", f"{clip.id}:{size}")
        cached = self._get(key)
        if cached is None:
            cached = await anyio.to_thread.run_sync(lambda: render_cover_png(clip.style, size))
            self._put(key, cached)
        return cached


# -- the application --------------------------------------------------------------------------


class SandboxApp:
    """Request handlers over one :class:`SandboxState`."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.media = MediaCache()
        self.uploads = UploadPolicy()
        self._closing: anyio.Event | None = None

    def _closing_event(self) -> anyio.Event:
        # Created on first use so that it belongs to the serving event loop.
        if self._closing is None:
            self._closing = anyio.Event()
        return self._closing

    def close(self) -> None:
        """Cut short any ``slow`` delays in flight, so a shutdown does not wait them out."""
        self._closing_event().set()

    # -- plumbing

    def endpoint(self, name: str, handler: Handler) -> Handler:
        """Wrap a handler with counting, auth, faults and error rendering."""
        family = _FAMILY[name]

        async def wrapped(request: Request) -> Response:
            self.state.stats.requests[name] += 1
            response = await self._answer(name, family, handler, request)
            self.state.stats.responses[(name, response.status_code)] += 1
            return response

        return wrapped

    def _authorized(self, request: Request) -> str | None:
        """The caller's account, or None when the request brings no acceptable key."""
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return None
        expected = self.state.config.api_key
        if expected is not None and not hmac.compare_digest(key.encode(), expected.encode()):
            return None
        return account_of(key)

    def _count_read(self, name: str, request: Request, account: str) -> None:
        """Count a fetch or feed request against its account and each task it names."""
        if name == "fetch":
            task = self.state.task_for(request.path_params["task_id"], account)
            named = [] if task is None else [task.id]
        elif name == "feed":
            clips = (self.state.clip_for(i, account) for i in _feed_ids(request))
            # A concat clip is a job of its own; its batch id is the clip it joined.
            named = list(dict.fromkeys(c.id if c.kind == "concat" else c.batch_id for c in clips if c))
        else:
            return
        self.state.stats.fetches_by_account[account] += 1
        self.state.stats.fetches_by_task.update(named)

    async def _answer(self, name: str, family: str, handler: Handler, request: Request) -> Response:
        if family != "media":
            account = self._authorized(request)
            if account is None:
                return _error(
                    family, 401, "Invalid API key: send Authorization: Bearer <key>", "authentication_error"
                )
            request.state.account = account
            self._count_read(name, request, account)
        limited = self._rate_limited(name, family, request)
        if limited is not None:
            return limited
        fault = self.state.faults.draw_http(name)
        if fault is not None:
            self.state.stats.faults_fired[fault] += 1
        if fault == "slow":
            with anyio.move_on_after(self.state.config.slow_delay_s):
                await self._closing_event().wait()
        elif (
            fault is not None
            and fault != "drop"
            and not answers.is_reshape(fault)
            and fault not in ANSWER_SHAPE_FAULTS
        ):
            return self._fault_response(fault, family)
        request.state.fault = fault  # an answer-shape fault is the handler's to apply
        try:
            response = await handler(request)
        except SandboxError as err:
            response = _error(family, err.status, err.message, err.error_type)
        if fault is not None and answers.is_reshape(fault):
            return answers.reshape(fault, response, self._rename_odd)
        # A dropped submit has already created its task: the client cannot tell whether it
        # was taken, which is the case that tempts a client into paying twice.
        return DroppedResponse(response) if fault == "drop" else response

    def _rate_limited(self, name: str, family: str, request: Request) -> Response | None:
        if family == "media":
            return None
        _, _, key = request.headers.get("authorization", "").partition(" ")
        wait = self.state.admit(key.strip())
        if wait is None:
            return None
        self.state.stats.rate_limited[name] += 1
        headers = {"Retry-After": retry_after_header(wait)}
        return _error(family, 429, "Rate limit exceeded: too many requests", "rate_limit_error", headers)

    def _rename_odd(self, task_id: str) -> str:
        new_id = answers.odd_task_id()
        self.state.rename_task(task_id, new_id)
        return new_id

    def _fault_response(self, fault: str, family: str) -> Response:
        if fault in answers.VENDOR_ERRORS:
            return answers.vendor_error(fault, family)
        if fault == "invalid_prompt_200":
            return answers.invalid_prompt_200()
        if fault == "429":
            headers = {"Retry-After": str(self.state.config.retry_after_s)}
            return _error(family, 429, "Rate limit exceeded: too many requests", "rate_limit_error", headers)
        if fault == "500":
            return _error(family, 500, "Internal server error", "server_error")
        if fault == "502":
            return Response(_BAD_GATEWAY_HTML, 502, media_type="text/html")
        if fault == "503":
            return _error(family, 503, "Service temporarily unavailable, please retry later", "server_error")
        if fault == "malformed":
            if family == "media":
                return Response(_MALFORMED_MEDIA, 200, media_type="text/html")
            return Response(_MALFORMED_JSON, 200, media_type="application/json")
        if fault == "code_error":
            message = "Upstream generation service error, please retry later"
            if family == "task":
                return JSONResponse({"code": "error", "data": None, "message": message}, 200)
            return clip_error(500, message, "server_error")
        if fault == "expired":
            return Response(_EXPIRED_XML, 403, media_type="application/xml")
        raise AssertionError(f"unhandled fault {fault}")

    @staticmethod
    def _base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    # -- JSON views of clips and tasks

    def clip_json(self, clip: Clip, base: str) -> dict[str, Any]:
        """A clip in the clip API's shape (the vendor's generate example, field for field)."""
        phase = self.state.clip_phase(clip)
        audio_url, image_url, image_large_url, duration = self._urls(clip, phase, base)
        error_type, error_message = clip.failure if phase is Phase.FAILED and clip.failure else (None, None)
        history = None
        if clip.parent_id is not None:
            history = [
                {
                    "id": clip.parent_id,
                    "continue_at": clip.continue_at,
                    "type": clip.history_type,
                    "source": "web",
                    "infill": False,
                }
            ]
        concat_history = None
        if clip.concat_history is not None and clip.concat_cuts is not None:
            concat_history = [
                {"id": cid, "continue_at": cut, "type": "gen", "source": "web", "infill": False}
                for cid, cut in zip(clip.concat_history, clip.concat_cuts, strict=True)
            ]
        metadata = {
            "tags": clip.tags,
            "prompt": clip.prompt,
            "gpt_description_prompt": clip.gpt_description_prompt,
            "audio_prompt_id": None,
            "history": history,
            "concat_history": concat_history,
            "type": clip.kind,
            "duration": duration,
            "refund_credits": True if phase is Phase.FAILED else None,
            "stream": True,
            "infill": clip.infill,
            "has_vocal": not clip.instrumental,
            "is_audio_upload_tos_accepted": clip.history_type == "upload",
            "error_type": error_type,
            "error_message": error_message,
            **cover_metadata(clip),
        }
        return {
            "id": clip.id,
            "video_url": "",
            "audio_url": audio_url,
            "image_url": image_url,
            "image_large_url": image_large_url,
            "is_video_pending": False,
            "major_model_version": clip.major_model_version,
            "model_name": clip.model_name,
            "metadata": metadata,
            "is_liked": False,
            "user_id": SANDBOX_USER_ID,
            "display_name": "SandboxMusician",
            "handle": "sandboxmusician",
            "is_handle_updated": False,
            "avatar_image_url": None,
            "is_trashed": False,
            "reaction": None,
            "created_at": clip.created_at,
            "status": self.state.status_word(clip) or _CLIP_STATUS[phase],
            "title": clip.title,
            "play_count": 0,
            "upvote_count": 0,
            "is_public": False,
        }

    def _urls(self, clip: Clip, phase: Phase, base: str) -> tuple[str, str | None, str | None, float | None]:
        if phase is Phase.STREAMING:
            return f"{base}/sandbox/preview/{clip.id}.wav", None, None, None
        if phase is Phase.COMPLETE:
            image = f"{base}/sandbox/image/{clip.id}.png"
            return (
                f"{base}/sandbox/audio/{clip.id}.wav",
                image,
                f"{image}?size=256",
                float(round(clip.duration_s, 3)),
            )
        if phase is Phase.FAILED:
            # What Suno hands out for a clip that never got audio.
            return f"{base}/sandbox/audio/None.mp3", None, None, None
        return "", None, None, None

    def task_item_json(self, task: Task, clip: Clip, base: str) -> dict[str, Any]:
        """One clip of a music task in the task API's fetch shape."""
        phase = self.state.clip_phase(clip)
        audio_url, image_url, _, duration = self._urls(clip, phase, base)
        return {
            "id": clip.id,
            "status": self.state.status_word(clip) or _TASK_STATUS[phase],
            "audio_url": "" if phase is Phase.FAILED else audio_url,
            "video_url": "",
            "image_url": image_url,
            "title": clip.title,
            "tags": clip.tags,
            "prompt": clip.prompt,
            "duration": duration,
            "created_at": clip.created_at,
            "model_name": clip.model_name,
            "error_message": clip.failure[1] if phase is Phase.FAILED and clip.failure else None,
            "task_id": task.id,
            "progress": f"{int(self.state.progress(clip) * 100)}%",
        }

    def lyrics_item_json(self, task: Task) -> dict[str, Any]:
        """A lyrics task in the task API's fetch shape: one item whose id is the task id."""
        phase = self.state.lyrics_phase(task)
        done = phase is Phase.COMPLETE and task.lyrics is not None
        return {
            "id": task.id,
            "status": self.state.lyrics_status_word(task) or _TASK_STATUS[phase],
            "title": task.lyrics.title if done and task.lyrics else "",
            "text": task.lyrics.text if done and task.lyrics else "",
            "tags": ", ".join(keywords(task.prompt)[:3]),
            "created_at": task.created_at,
            "error_message": task.failure[1] if phase is Phase.FAILED and task.failure else None,
        }

    # -- task API

    async def submit_music(self, request: Request) -> Response:
        body = await _json_object(request)
        task_id, _ = self.state.create_music(
            parse_music_request(body), endpoint="submit_music", body=body, account=request.state.account
        )
        return JSONResponse({"code": "success", "data": task_id, "message": ""})

    async def submit_lyrics(self, request: Request) -> Response:
        body = await _json_object(request)
        task = self.state.create_lyrics(
            _opt_str(body, "prompt") or "", body=body, account=request.state.account
        )
        return JSONResponse({"code": "success", "data": task.id, "message": ""})

    async def fetch(self, request: Request) -> Response:
        # Another account's task answers exactly as an id nobody made.
        task = self.state.task_for(request.path_params["task_id"], request.state.account)
        if task is None:
            return task_error(404, "Task not found")
        if task.kind == "lyrics":
            items = [self.lyrics_item_json(task)]
        else:
            base = self._base(request)
            items = [self.task_item_json(task, self.state.clips[cid], base) for cid in task.clip_ids]
        failed_at = self.state.task_failed_at_s(task)
        if failed_at is not None:
            return JSONResponse({"code": "success", "data": self._task_object(task, items, failed_at)})
        return JSONResponse({"code": "success", "data": items, "message": ""})

    def _task_object(self, task: Task, items: list[dict[str, Any]], failed_at: float) -> dict[str, Any]:
        elapsed = self.state.elapsed(task.submitted_at)
        progress = f"{int(min(1.0, elapsed / failed_at) * 100) if failed_at > 0 else 100}%"
        submit_time = int(epoch_of(task.created_at))
        return answers.task_object(task.id, task.kind, elapsed >= failed_at, progress, submit_time, items)

    # -- clip API

    async def generate(self, request: Request) -> Response:
        body = await _json_object(request)
        music, cover = parse_music_request(body), parse_cover_request(body)
        account = request.state.account
        if cover is None:
            batch_id, clips = self.state.create_music(music, endpoint="generate", body=body, account=account)
        else:
            batch_id, clips = create_cover(self.state, music, cover, body=body, account=account)
        base = self._base(request)
        views = [self.clip_json(c, base) for c in clips]
        return JSONResponse(
            {
                "id": batch_id,
                "clips": views,
                "metadata": views[0]["metadata"],
                "major_model_version": clips[0].major_model_version,
                "status": "complete",
                "created_at": clips[0].created_at,
                "batch_size": 1,
            }
        )

    async def feed(self, request: Request) -> Response:
        base = self._base(request)
        # Another account's clips are left out, as unknown ids are.
        clips = (self.state.clip_for(i, request.state.account) for i in dict.fromkeys(_feed_ids(request)))
        return JSONResponse([self.clip_json(c, base) for c in clips if c is not None])

    async def concat(self, request: Request) -> Response:
        body = await _json_object(request)
        clip_id = _opt_str(body, "clip_id")
        _opt_bool(body, "is_infill")
        if not clip_id:
            raise SandboxError(400, "Invalid request: clip_id is required", "invalid_request_error")
        clip = self.state.create_concat(clip_id, request.state.account)
        return JSONResponse(self.clip_json(clip, self._base(request)))

    async def upload(self, request: Request) -> Response:
        body = await _json_object(request)
        url = _opt_str(body, "url")
        if not url:
            raise SandboxError(
                400,
                "Invalid request: url is required, the URL of the audio file to upload",
                "invalid_request_error",
            )
        clip = await upload_from_url(self.state, url, self.uploads, request.state.account)
        return JSONResponse(upload_answer(clip.id, request.state.fault))

    # -- media

    def _media_clip(self, request: Request) -> tuple[Clip, Phase]:
        clip = self.state.clips.get(request.path_params["clip_id"])
        if clip is None:
            raise SandboxError(404, "Not Found", "not_found_error")
        return clip, self.state.clip_phase(clip)

    async def audio(self, request: Request) -> Response:
        clip, phase = self._media_clip(request)
        if phase is not Phase.COMPLETE:
            raise SandboxError(404, "Not Found", "not_found_error")
        return Response(await self.media.final_wav(clip), media_type="audio/wav")

    async def preview(self, request: Request) -> Response:
        clip, phase = self._media_clip(request)
        if phase is Phase.COMPLETE:
            return Response(await self.media.final_wav(clip), media_type="audio/wav")
        if phase is not Phase.STREAMING:
            raise SandboxError(404, "Not Found", "not_found_error")
        wav = await self.media.preview_wav(clip, self.state.streamed_s(clip))
        return Response(wav, media_type="audio/wav")

    async def image(self, request: Request) -> Response:
        clip, phase = self._media_clip(request)
        if phase is Phase.FAILED:
            raise SandboxError(404, "Not Found", "not_found_error")
        try:
            size = int(request.query_params.get("size", "64"))
        except ValueError:
            size = 0
        if not 16 <= size <= 1024:
            raise SandboxError(400, "size must be an integer within 16..1024", "invalid_request_error")
        return Response(await self.media.cover_png(clip, size), media_type="image/png")

    # -- control

    async def stats(self, request: Request) -> Response:
        data = self.state.stats.as_json()
        data["pending_faults"] = self.state.faults.pending()
        data["tasks"] = len(self.state.tasks)
        data["clips"] = len(self.state.clips)
        return JSONResponse(data)

    async def add_faults(self, request: Request) -> Response:
        try:
            body = await _json_object(request)
            spec = _opt_str(body, "spec")
            if spec is not None:
                self.state.set_faults(spec)
            if body.get("kind") is not None:
                count = body.get("count", 1)
                if not isinstance(count, int) or isinstance(count, bool):
                    raise ValueError("count must be an integer")
                self.state.inject(str(body["kind"]), _opt_str(body, "endpoint"), count)
        except (SandboxError, ValueError) as err:
            return JSONResponse({"error": str(err)}, 400)
        return JSONResponse({"pending": self.state.faults.pending()})

    async def clear_faults(self, request: Request) -> Response:
        self.state.clear_faults()
        return JSONResponse({"pending": []})

    def _profile_json(self) -> JSONResponse:
        return JSONResponse({"profile": self.state.profile.name, "profiles": list(PROFILE_NAMES)})

    async def get_profile(self, request: Request) -> Response:
        return self._profile_json()

    async def set_profile(self, request: Request) -> Response:
        try:
            body = await _json_object(request)
            name = body.get("profile")
            if not isinstance(name, str):
                raise ValueError('send {"profile": "<name>"}')
            self.state.set_profile(name)
        except (SandboxError, ValueError) as err:
            return JSONResponse({"error": str(err), "profiles": list(PROFILE_NAMES)}, 400)
        return self._profile_json()

    def _rate_limit_json(self) -> JSONResponse:
        limiter = self.state.rate_limiter
        return JSONResponse({"rate_limit": None if limiter is None else limiter.describe()})

    async def get_rate_limit(self, request: Request) -> Response:
        return self._rate_limit_json()

    async def set_rate_limit(self, request: Request) -> Response:
        try:
            body = await _json_object(request)
            rps, burst, per_key = body.get("rps"), body.get("burst"), body.get("per_key", False)
            if rps is not None and (not isinstance(rps, int | float) or isinstance(rps, bool)):
                raise ValueError("rps must be a number of requests per second, or null to lift the limit")
            if burst is not None and (not isinstance(burst, int) or isinstance(burst, bool)):
                raise ValueError("burst must be an integer")
            if not isinstance(per_key, bool):
                raise ValueError("per_key must be true or false")
            self.state.set_rate_limit(None if rps is None else float(rps), burst, per_key=per_key)
        except (SandboxError, ValueError) as err:
            return JSONResponse({"error": str(err)}, 400)
        return self._rate_limit_json()

    async def timeline(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        try:
            timeline = self.state.timeline(task_id)
        except KeyError:
            return JSONResponse({"error": f"no task, batch or clip with id {task_id!r}"}, 404)
        return JSONResponse(timeline.as_json())

    def asgi(self) -> Starlette:
        """The ASGI application with every route."""
        ep = self.endpoint
        routes = [
            Route("/v1/suno/submit/music", ep("submit_music", self.submit_music), methods=["POST"]),
            Route("/v1/suno/submit/lyrics", ep("submit_lyrics", self.submit_lyrics), methods=["POST"]),
            # ``path``: an odd task id (the ``odd_id`` fault) may hold a percent-encoded slash.
            Route("/v1/suno/fetch/{task_id:path}", ep("fetch", self.fetch), methods=["GET"]),
            Route("/suno/generate", ep("generate", self.generate), methods=["POST"]),
            Route("/v1/suno/feed", ep("feed", self.feed), methods=["GET"]),
            Route("/suno/generate/concat/v2", ep("concat", self.concat), methods=["POST"]),
            Route("/v1/suno/uploads/audio-url", ep("upload", self.upload), methods=["POST"]),
            Route("/sandbox/audio/{clip_id}.wav", ep("media", self.audio), methods=["GET"]),
            Route("/sandbox/preview/{clip_id}.wav", ep("media", self.preview), methods=["GET"]),
            Route("/sandbox/image/{clip_id}.png", ep("media", self.image), methods=["GET"]),
            Route("/_sandbox/stats", self.stats, methods=["GET"]),
            Route("/_sandbox/faults", self.add_faults, methods=["POST"]),
            Route("/_sandbox/faults", self.clear_faults, methods=["DELETE"]),
            Route("/_sandbox/profile", self.get_profile, methods=["GET"]),
            Route("/_sandbox/profile", self.set_profile, methods=["POST"]),
            Route("/_sandbox/rate_limit", self.get_rate_limit, methods=["GET"]),
            Route("/_sandbox/rate_limit", self.set_rate_limit, methods=["POST"]),
            Route("/_sandbox/tasks/{task_id:path}/timeline", self.timeline, methods=["GET"]),
        ]
        return Starlette(routes=routes)


def build_app(state: SandboxState) -> Starlette:
    """The ASGI application serving ``state``."""
    return SandboxApp(state).asgi()


__all__ = ["DroppedResponse", "MediaCache", "SandboxApp", "build_app", "clip_error", "task_error"]
