"""The two Suno endpoint families gptproto sells.

- :class:`TaskApi`: the vendor's "official format". Submit returns a task id; the
  task is polled at ``GET /v1/suno/fetch/{task_id}``.
- :class:`ClipApi`: the Suno-native shape. Generate returns a batch id and its clips;
  clips are polled together at ``GET /v1/suno/feed?ids=a,b``.

Both offer :class:`MusicApi`, return :class:`~suno_mcp.domain.models.Task` and speak
through one :class:`~suno_mcp.upstream.transport.Upstream`. Ids are the upstream's and go
into URL paths only through :func:`suno_mcp.domain.ids.url_segment`. Saving audio files is
:mod:`suno_mcp.upstream.downloads`.

Adding an endpoint whose wire format becomes known is one method on the right class: build
the body, call ``self._up.post_answer(...)`` and parse the answer with
:func:`~suno_mcp.upstream.wire.parse_clip` / :func:`~suno_mcp.upstream.wire.parse_generate_response`,
as :meth:`ClipApi.cover` and :meth:`ClipApi.upload_audio` do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from pydantic import SecretStr

from suno_mcp.domain.errors import MalformedResponseError, NotFoundError, UploadAnswerError
from suno_mcp.domain.ids import check_id, url_segment
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
)
from suno_mcp.upstream.keys import KeyVerdict, check_key
from suno_mcp.upstream.transport import Upstream
from suno_mcp.upstream.wire import (
    clip_api_body,
    parse_feed,
    parse_fetch,
    parse_generate_response,
    parse_lyrics_answer,
    submitted_task_id,
    task_api_body,
    upload_title,
    uploaded_clip_id,
)


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

    async def key_verdict(self, key: SecretStr) -> KeyVerdict:
        """Whether the upstream accepts ``key`` (one free read; see :mod:`suno_mcp.upstream.keys`)."""
        return await check_key(self._up, key)

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
            body = await self._up.get_json(
                f"/v1/suno/fetch/{segment}", deadline=deadline, endpoint="/v1/suno/fetch/{id}"
            )
        except NotFoundError:
            if kind != "lyrics":
                raise
            body = await self._up.get_json(
                f"/v1/suno/generate/lyrics/{segment}",
                deadline=deadline,
                endpoint="/v1/suno/generate/lyrics/{id}",
            )
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
