"""Paths where money or a paid task could be lost: each pinned by a test."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

from suno_mcp.domain.errors import SubmitOutcomeUnknownError, SunoError
from suno_mcp.domain.models import ApiFamily, MusicRequest, Status, Task, TaskRef
from suno_mcp.engine.poller import Poller, Timing
from suno_mcp.service.wiring import open_service
from suno_mcp.settings import load_settings
from suno_mcp.upstream.families import ClipApi
from suno_mcp.upstream.retry import RetryPolicy
from suno_mcp.upstream.transport import Upstream

BASE = "https://upstream.test"
REQUEST = MusicRequest(gpt_description_prompt="a safe song", prompt="", mv="chirp-v3-5")
FAST = Timing().scaled(1000)
NO_RETRY = RetryPolicy(max_attempts=1)


def _settings(tmp_path: Path, **overrides: Any) -> Any:
    return load_settings(
        environ={}, api_key="k", base_url=BASE, data_dir=tmp_path, max_requests_per_second=1000, **overrides
    )


def _fetch_answer(task_id: str, status: str = "processing") -> httpx.Response:
    items = [{"id": f"{task_id}-c{i}", "status": status} for i in range(2)]
    return httpx.Response(200, json={"code": "success", "data": items})


async def test_an_identical_request_during_a_submit_waits_for_it_and_reuses_its_task(tmp_path: Path) -> None:
    release, sending = anyio.Event(), anyio.Event()
    submits: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/suno/submit/music":
            submits.append(1)
            sending.set()
            await release.wait()
            return httpx.Response(200, json={"code": "success", "data": "task-1", "message": ""})
        return _fetch_answer("task-1")

    async with open_service(
        _settings(tmp_path), transport=httpx.MockTransport(handler), timing=FAST
    ) as service:
        outcomes: list[Any] = []

        async def submit() -> None:
            outcomes.append(await service.submit_music(REQUEST, wait_s=0))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(submit)
                await sending.wait()  # the first submit is at the upstream, unanswered
                tg.start_soon(submit)
                # Every task is now parked: the first on the upstream's answer, the second on the
                # submit in flight (had it sent a request of its own, that would be parked too).
                await anyio.wait_all_tasks_blocked()
                assert outcomes == []
                release.set()
    assert len(submits) == 1
    assert {o.record.task_id for o in outcomes} == {"task-1"}
    assert sorted(o.deduplicated for o in outcomes) == [False, True]


async def test_a_clip_id_that_can_never_be_an_id_makes_the_submit_unknown_not_lost(
    tmp_path: Path,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        clips = [{"id": "clip 1", "status": "submitted"}, {"id": "clip-2", "status": "submitted"}]
        return httpx.Response(200, json={"id": "batch-1", "clips": clips})

    settings = _settings(tmp_path, api="clip")
    async with open_service(settings, transport=httpx.MockTransport(handler), timing=FAST) as service:
        with pytest.raises(SubmitOutcomeUnknownError):
            await service.submit_music(REQUEST, wait_s=0)
        rows = await service.list_tasks()
    assert [r.status for r in rows] == [Status.UNKNOWN]


async def test_a_clip_id_with_url_characters_is_recorded_and_followed(tmp_path: Path) -> None:
    clips = [{"id": "clip.1/a", "status": "submitted"}, {"id": "clip:2", "status": "submitted"}]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/suno/generate":
            return httpx.Response(200, json={"id": "batch-1", "clips": clips})
        return httpx.Response(200, json=[{**c, "status": "queued"} for c in clips])

    settings = _settings(tmp_path, api="clip")
    async with open_service(settings, transport=httpx.MockTransport(handler), timing=FAST) as service:
        outcome = await service.submit_music(REQUEST, wait_s=0)
        rows = await service.list_tasks()
    assert outcome.record.task_id == "batch-1"
    assert [(r.task_id, list(r.clip_ids)) for r in rows] == [("batch-1", ["clip.1/a", "clip:2"])]


async def test_two_status_reads_of_a_task_made_elsewhere_adopt_it_once(tmp_path: Path) -> None:
    release = anyio.Event()
    fetches: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        fetches.append(1)
        await release.wait()  # held until both reads have started
        return _fetch_answer("made-elsewhere")

    async with open_service(
        _settings(tmp_path), transport=httpx.MockTransport(handler), timing=FAST
    ) as service:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for _ in range(2):
                    tg.start_soon(lambda: service.status("made-elsewhere"))
                # Both reads are now parked (at the upstream or on each other), neither has
                # adopted the task yet: only then does the upstream answer.
                await anyio.wait_all_tasks_blocked()
                assert fetches
                release.set()
        rows = await service.list_tasks()
    assert [(r.task_id, r.status) for r in rows] == [("made-elsewhere", Status.RUNNING)]


async def test_a_feed_that_leaves_out_one_clip_does_not_finish_the_task() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json=[{"id": "c1", "status": "complete", "audio_url": "https://cdn.test/c1.mp3"}]
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        api = ClipApi(Upstream(http, base_url=BASE, api_key="k", retry=NO_RETRY))
        tasks = await api.fetch([TaskRef("b1", "clip", clip_ids=("c1", "c2"))])
    assert tasks["b1"].status is Status.STREAMING


class _Api:
    """One task answers at once; another hangs until released; a third raises a non-Suno error."""

    def __init__(self) -> None:
        self.family: ApiFamily = "task"
        self.fetched: list[str] = []
        self.release = anyio.Event()

    async def submit_music(self, request: object) -> Task:
        raise AssertionError("not used")

    async def fetch(self, refs: Sequence[TaskRef], *, deadline: float | None = None) -> dict[str, Task]:
        (ref,) = refs
        self.fetched.append(ref.task_id)
        if ref.task_id == "hangs":
            await self.release.wait()
        if ref.task_id == "breaks":
            raise ValueError("a bug, or an answer nobody expected")
        return {ref.task_id: Task(task_id=ref.task_id, api="task", status=Status.RUNNING)}


async def test_one_hanging_fetch_and_one_crashing_fetch_do_not_stop_other_tasks_being_polled() -> None:
    api = _Api()
    poller = Poller(
        {"task": api, "clip": api},
        timing=Timing(first_poll_s=0.01, min_gap_s=0.01, max_gap_s=0.02, idle_max_gap_s=0.02),
        max_requests_per_second=1000,  # the rate limit is not what this test is about
    )
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(poller.run)
            for name in ("hangs", "breaks", "fast"):
                poller.watch(TaskRef(name, "task"))
            while api.fetched.count("fast") < 5 or api.fetched.count("breaks") < 2:  # noqa: ASYNC110
                await anyio.sleep(0.01)  # a polling interval inside a bounded wait
            api.release.set()
            tg.cancel_scope.cancel()
    error = poller.last_error("breaks")
    assert isinstance(error, SunoError)
    assert "unexpectedly" in error.message
    assert api.fetched.count("hangs") == 1
