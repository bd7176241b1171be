"""A small stateful fake of the gptproto Suno upstream, for tests through the MCP server.

It plays both endpoint families on ``httpx.MockTransport``: every submit starts a batch of
clips whose status moves one stage forward per status fetch, audio URLs on ``cdn.test``
answer with ``audio/mpeg`` bytes, and ``fail`` makes the next matching requests answer
with an error (a status and body, or a raised httpx exception) instead.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
from mcp import Client

from suno_mcp.engine.poller import Timing
from suno_mcp.server.app import SunoServer, build_server
from suno_mcp.service.wiring import open_service
from suno_mcp.settings import Settings, load_settings
from suno_mcp.upstream.retry import RetryPolicy

KEY = "k-secret"
BASE_URL = "https://upstream.test"
CDN = "https://cdn.test"
AUDIO_BYTES = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 64
CLIP_DURATION = 120.5

# What a clip looks like after each status fetch (the last stage repeats).
TASK_STAGES = ("queued", "processing", "streaming", "completed")
CLIP_STAGES = ("submitted", "queued", "streaming", "complete")

# The submit (paid) endpoints of both families.
SUBMIT_PATHS = frozenset(
    {"/v1/suno/submit/music", "/v1/suno/submit/lyrics", "/suno/generate", "/suno/generate/concat/v2"}
)

Failure = httpx.Response | Exception


@dataclass
class _Batch:
    task_id: str
    clip_ids: list[str]
    title: str | None
    kind: Literal["music", "lyrics", "concat"] = "music"
    fetches: int = 0


@dataclass
class FakeUpstream:
    """The vendor: counts requests per path, keeps submitted bodies, advances clips per fetch."""

    clips_per_task: int = 2
    task_stages: tuple[str, ...] = TASK_STAGES
    clip_stages: tuple[str, ...] = CLIP_STAGES
    title: str | None = "Rain on the Window"
    # While set, clips go no further than this stage (a name from the stages above).
    hold_at: str | None = None
    # What an upload answers (the vendor documents only {"status": "success"}); "{id}" is filled in.
    upload_answer: dict[str, Any] = field(default_factory=lambda: {"status": "success", "id": "{id}"})
    requests: list[httpx.Request] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    _batches: dict[str, _Batch] = field(default_factory=dict)
    _clip_owner: dict[str, str] = field(default_factory=dict)
    _failures: list[tuple[str, Failure, int]] = field(default_factory=list)
    _next: int = 0

    # ------------------------------------------------------------ what the tests read

    @property
    def counts(self) -> Counter[str]:
        """Requests per URL path (any host)."""
        return Counter(r.url.path for r in self.requests)

    @property
    def total(self) -> int:
        return len(self.requests)

    @property
    def submits(self) -> int:
        return sum(1 for r in self.requests if r.url.path in SUBMIT_PATHS)

    def fail(self, path_prefix: str, failure: Failure, times: int = 1_000_000) -> None:
        """Answer the next ``times`` requests whose path starts with ``path_prefix`` with ``failure``."""
        self._failures.append((path_prefix, failure, times))

    def _stage(self, stages: tuple[str, ...], index: int) -> str:
        index = min(index, len(stages) - 1)
        if self.hold_at in stages:
            index = min(index, stages.index(self.hold_at))
        return stages[index]

    def audio_url(self, clip_id: str) -> str:
        return f"{CDN}/audio/{clip_id}.mp3"

    def preview_url(self, clip_id: str) -> str:
        return f"{CDN}/stream/{clip_id}"

    # ------------------------------------------------------------ the vendor

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        for i, (prefix, failure, times) in enumerate(self._failures):
            if path.startswith(prefix) and times > 0:
                self._failures[i] = (prefix, failure, times - 1)
                if isinstance(failure, Exception):
                    raise failure
                return failure
        if request.url.host == "cdn.test":
            return httpx.Response(200, content=AUDIO_BYTES, headers={"content-type": "audio/mpeg"})
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return httpx.Response(401, json={"code": "error", "data": None, "message": "invalid api key"})
        body = json.loads(request.content) if request.content else {}
        if request.method == "POST":
            self.bodies.append(body)
        if path == "/v1/suno/submit/music":
            batch = self._start(self.title if body.get("title") is None else body["title"])
            return httpx.Response(200, json={"code": "success", "data": batch.task_id, "message": ""})
        if path == "/v1/suno/submit/lyrics":
            batch = self._start(None, kind="lyrics", clips=0)
            return httpx.Response(200, json={"code": "success", "data": batch.task_id, "message": ""})
        if path.startswith("/v1/suno/fetch/"):
            return self._fetch(path.rsplit("/", 1)[1])
        if path == "/suno/generate":
            batch = self._start(self.title if body.get("title") is None else body["title"], prefix="batch")
            clips = [self._clip_object(cid, "submitted", batch.title) for cid in batch.clip_ids]
            return httpx.Response(200, json={"id": batch.task_id, "clips": clips, "status": "submitted"})
        if path == "/suno/generate/concat/v2":
            batch = self._start(self.title, prefix="concat", clips=1, kind="concat")
            clip = self._clip_object(batch.clip_ids[0], "submitted", batch.title)
            return httpx.Response(200, json=clip)
        if path == "/v1/suno/uploads/audio-url":
            self._next += 1
            clip_id = f"m_upload-{self._next}"
            answer = json.loads(json.dumps(self.upload_answer).replace("{id}", clip_id))
            return httpx.Response(200, json=answer)
        if path == "/v1/suno/feed":
            return self._feed(request.url.params.get("ids", "").split(","))
        return httpx.Response(404, json={"error": {"message": f"no route {path}", "code": "not_found"}})

    def _start(
        self,
        title: str | None,
        *,
        prefix: str = "task",
        clips: int | None = None,
        kind: Literal["music", "lyrics", "concat"] = "music",
    ) -> _Batch:
        self._next += 1
        task_id = f"{prefix}-{self._next}"
        count = self.clips_per_task if clips is None else clips
        clip_ids = [f"clip-{self._next}-{i}" for i in range(count)]
        batch = _Batch(task_id=task_id, clip_ids=clip_ids, title=title, kind=kind)
        self._batches[task_id] = batch
        for cid in clip_ids:
            self._clip_owner[cid] = task_id
        return batch

    def _fetch(self, task_id: str) -> httpx.Response:
        batch = self._batches.get(task_id)
        if batch is None:
            return httpx.Response(404, json={"code": "error", "data": None, "message": "Task not found"})
        batch.fetches += 1
        stage = self._stage(self.task_stages, batch.fetches - 1)
        if batch.kind == "lyrics":
            done = stage == self.task_stages[-1]
            item = {
                "id": task_id,
                "status": "complete" if done else "processing",
                "title": "Rain Song" if done else None,
                "text": "[Verse]\nRain on the window\n[Chorus]\nStay inside" if done else None,
            }
            return httpx.Response(200, json={"code": "success", "data": [item]})
        items = []
        for cid in batch.clip_ids:
            item: dict[str, Any] = {"id": cid, "status": stage, "title": batch.title, "audio_url": ""}
            if stage == "streaming":
                # The task API says "processing" while a preview stream is already playable.
                item["status"] = "processing"
                item["audio_url"] = self.preview_url(cid)
            if stage in ("completed", "complete"):
                item["audio_url"] = self.audio_url(cid)
                item["duration"] = CLIP_DURATION
            items.append(item)
        return httpx.Response(200, json={"code": "success", "data": items})

    def _feed(self, ids: list[str]) -> httpx.Response:
        owners = {self._clip_owner[i] for i in ids if i in self._clip_owner}
        for task_id in owners:
            self._batches[task_id].fetches += 1
        out = []
        for cid in ids:
            owner = self._clip_owner.get(cid)
            if owner is None:
                continue
            batch = self._batches[owner]
            stage = self._stage(self.clip_stages, batch.fetches)
            out.append(self._clip_object(cid, stage, batch.title))
        return httpx.Response(200, json=out)

    def _clip_object(self, clip_id: str, status: str, title: str | None) -> dict[str, Any]:
        audio = ""
        metadata: dict[str, Any] = {"tags": "lofi", "prompt": "", "duration": None, "error_message": None}
        if status == "streaming":
            audio = self.preview_url(clip_id)
        elif status == "complete":
            audio = self.audio_url(clip_id)
            metadata["duration"] = CLIP_DURATION
        return {
            "id": clip_id,
            "status": status,
            "title": title,
            "audio_url": audio,
            "video_url": "",
            "model_name": "chirp-v3-5",
            "metadata": metadata,
        }


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test: a key and the fake's base URL unless overridden."""
    values: dict[str, Any] = {
        "api_key": KEY,
        "data_dir": tmp_path,
        "base_url": BASE_URL,
        # The real limit (5/s) would make every test wait 200 ms per poll.
        "max_requests_per_second": 1000.0,
    }
    values.update(overrides)
    return load_settings(environ={}, **{k: v for k, v in values.items() if v is not None})


# Retries stay on (they are part of what is tested) but take milliseconds, not seconds.
FAST_RETRY = RetryPolicy(base_delay=0.001, max_delay=0.002)


def make_server(settings: Settings, fake: Callable[[httpx.Request], httpx.Response]) -> SunoServer:
    """The real server over a fake upstream, with the poller's schedule 1000x faster."""
    return build_server(
        settings,
        lambda s: open_service(
            s, transport=httpx.MockTransport(fake), timing=Timing().scaled(1000), retry=FAST_RETRY
        ),
    )


def connect(
    tmp_path: Path, fake: FakeUpstream | None = None, **overrides: Any
) -> AbstractAsyncContextManager[Client]:
    """An in-memory MCP client to a server over ``fake`` (a new FakeUpstream when None)."""
    upstream = fake if fake is not None else FakeUpstream()

    @asynccontextmanager
    async def session() -> AsyncIterator[Client]:
        async with Client(make_server(make_settings(tmp_path, **overrides), upstream)) as client:
            yield client

    return session()
