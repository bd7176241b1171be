"""End to end against the sandbox over real loopback sockets, in both API modes."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from suno_mcp.engine.poller import Timing
from suno_mcp.sandbox.runner import SandboxHandle, run_sandbox
from suno_mcp.sandbox.state import SandboxConfig
from suno_mcp.server.app import build_server
from suno_mcp.service.core import SunoService
from suno_mcp.service.wiring import open_service
from suno_mcp.settings import load_settings

SPEED = 1000.0  # a task completes in ~0.13 s: the sandbox's lifecycle is not what these tests time
CLIP_SECONDS = 8.0
BOUND_S = 30.0  # no single scenario may take longer than this


def _timing(config: SandboxConfig) -> Timing:
    return Timing(
        preview_s=config.preview_after_s, complete_s=config.complete_after_s, lyrics_s=config.lyrics_after_s
    ).scaled(config.speed)


@asynccontextmanager
async def sandboxed_client(
    tmp_path: Path, api: str, *, speed: float = SPEED, **overrides: Any
) -> AsyncIterator[tuple[Client, SandboxHandle, list[SunoService]]]:
    sandbox_config = SandboxConfig(speed=speed, clip_seconds=CLIP_SECONDS)
    # The default ceiling (10 requests/s) would space the polls of a 0.13 s task 100 ms apart.
    overrides.setdefault("max_requests_per_second", 1000.0)
    async with run_sandbox(sandbox_config) as sandbox:
        settings = load_settings(
            environ={},
            api_key="test-key",
            base_url=sandbox.url,
            data_dir=tmp_path / "data",
            api=api,
            **overrides,
        )
        services: list[SunoService] = []

        @asynccontextmanager
        async def backend(s: Any) -> AsyncIterator[SunoService]:
            async with open_service(s, timing=_timing(sandbox_config), sandbox=True) as service:
                services.append(service)
                yield service

        async with Client(build_server(settings, backend)) as client:
            yield client, sandbox, services


async def call(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    text = " ".join(getattr(c, "text", "") for c in result.content)
    assert not result.is_error, text
    assert result.structured_content is not None
    return result.structured_content


async def until_complete(client: Client, task: dict[str, Any]) -> dict[str, Any]:
    with anyio.fail_after(BOUND_S):
        while task["status"] not in ("complete", "failed"):
            task = await call(client, "get_task_status", {"task_id": task["task_id"], "wait_seconds": 5})
    assert task["status"] == "complete", task
    return task


def wav_info(path: str) -> tuple[float, int]:
    """Duration in seconds and peak absolute sample."""
    with wave.open(path, "rb") as w:
        frames = w.readframes(w.getnframes())
        duration = w.getnframes() / w.getframerate()
    samples = memoryview(frames).cast("h")
    return duration, max(abs(s) for s in samples)


@pytest.mark.parametrize("api", ["task", "clip"])
async def test_lyrics_generate_extend_complete_song_and_download_give_one_file_as_long_as_the_chain(
    tmp_path: Path, api: str
) -> None:
    async with sandboxed_client(tmp_path, api) as (client, sandbox, _):
        lyrics = await until_complete(
            client,
            await call(client, "generate_lyrics", {"description": "rain on a tin roof", "wait_seconds": 10}),
        )
        assert lyrics["lyrics"]
        assert lyrics["lyrics_title"]

        song = await call(
            client,
            "generate_music",
            {
                "lyrics": lyrics["lyrics"],
                "title": lyrics["lyrics_title"],
                "tags": "lo-fi, chill",
                "wait_seconds": 10,
            },
        )
        song = await until_complete(client, song)
        assert len(song["clips"]) == 2
        first = song["clips"][0]
        assert first["audio_url"]
        assert first["duration"] == pytest.approx(CLIP_SECONDS)

        cut = 5.0
        extension = await until_complete(
            client,
            await call(
                client, "extend_music", {"clip_id": first["id"], "continue_at": cut, "wait_seconds": 10}
            ),
        )
        last = extension["clips"][0]

        whole = await until_complete(
            client, await call(client, "get_complete_song", {"clip_id": last["id"], "wait_seconds": 10})
        )
        assert whole["kind"] == "concat"
        assert whole["clips"][0]["duration"] == pytest.approx(cut + CLIP_SECONDS)

        saved = await call(client, "download_audio", {"task_id": whole["task_id"]})
        assert len(saved["files"]) == 1
        duration, peak = wav_info(saved["files"][0]["path"])
        assert duration == pytest.approx(cut + CLIP_SECONDS, abs=0.01)
        assert peak > 1000  # audible, not silence
        assert sandbox.state.stats.requests  # the sandbox really was the upstream


async def test_twenty_concurrent_waiters_on_one_task_cost_one_upstream_fetch_per_tick(tmp_path: Path) -> None:
    # The settings' own request ceiling and a sandbox slow enough that twenty waiters meet while a
    # fetch is fresh: what is counted here is how they share the fetches a real schedule makes.
    async with sandboxed_client(tmp_path, "task", speed=200.0, max_requests_per_second=10.0) as (
        client,
        sandbox,
        services,
    ):
        task = await call(client, "generate_music", {"description": "a march", "wait_seconds": 0})
        poller = services[0].poller
        before = sandbox.state.stats.requests.get("fetch", 0)
        fetches_before = poller.fetches

        results: list[dict[str, Any]] = []

        async def waiter() -> None:
            results.append(
                await call(client, "get_task_status", {"task_id": task["task_id"], "wait_seconds": 20})
            )

        with anyio.fail_after(BOUND_S):
            async with anyio.create_task_group() as tg:
                for _ in range(20):
                    tg.start_soon(waiter)
        upstream_fetches = sandbox.state.stats.requests.get("fetch", 0) - before
        assert len(results) == 20
        assert all(r["status"] in ("streaming", "complete") for r in results)
        # Every fetch the poller made is one upstream request, shared by all twenty waiters:
        # far fewer than one per waiter per tick.
        assert upstream_fetches == poller.fetches - fetches_before
        assert upstream_fetches < 20


async def test_every_result_from_the_sandbox_says_so(tmp_path: Path) -> None:
    async with sandboxed_client(tmp_path, "task") as (client, _, _):
        result = await client.call_tool("generate_music", {"description": "a waltz", "wait_seconds": 5})
        assert result.structured_content is not None
        assert result.structured_content["sandbox"] is True
        assert "SANDBOX" in result.content[0].text  # type: ignore[union-attr]


async def test_a_content_policy_trigger_is_refused_with_advice_and_recorded_as_failed(tmp_path: Path) -> None:
    from suno_mcp.sandbox.state import CONTENT_POLICY_TRIGGER

    async with sandboxed_client(tmp_path, "clip") as (client, _, _):
        result = await client.call_tool(
            "generate_music", {"description": f"a song with {CONTENT_POLICY_TRIGGER}"}
        )
        assert result.is_error
        assert "content policy" in result.content[0].text  # type: ignore[union-attr]
        listed = await call(client, "list_tasks", {"status": "failed"})
        assert listed["count"] == 1


async def test_a_finished_status_carries_audio_resource_links_with_mime_types(tmp_path: Path) -> None:
    async with sandboxed_client(tmp_path, "task") as (client, _, _):
        task = await until_complete(client, await call(client, "generate_music", {"description": "links"}))
        result = await client.call_tool("get_task_status", {"task_id": task["task_id"]})
    links = [c for c in result.content if getattr(c, "type", None) == "resource_link"]
    assert len(links) == 2
    assert all(str(link.uri).endswith(".wav") for link in links)  # type: ignore[union-attr]
    assert all(link.mime_type == "audio/wav" for link in links)  # type: ignore[union-attr]


async def test_auto_download_saves_final_audio_without_being_asked(tmp_path: Path) -> None:
    async with sandboxed_client(tmp_path, "clip", auto_download=True) as (client, _, _):
        task = await until_complete(client, await call(client, "generate_music", {"description": "auto"}))
        with anyio.fail_after(BOUND_S):
            while sum(1 for c in task["clips"] if c.get("local_file")) < 2:
                task = await call(client, "get_task_status", {"task_id": task["task_id"]})
                await anyio.sleep(0.05)  # a polling interval inside a bounded wait
    assert all([await anyio.Path(c["local_file"]).is_file() for c in task["clips"]])


async def test_embedding_puts_small_downloaded_files_into_the_result_as_audio(tmp_path: Path) -> None:
    async with sandboxed_client(tmp_path, "task", embed_audio=True) as (client, _, _):
        task = await until_complete(client, await call(client, "generate_music", {"description": "embed"}))
        await call(client, "download_audio", {"task_id": task["task_id"]})
        result = await client.call_tool("get_task_status", {"task_id": task["task_id"]})
    audio = [c for c in result.content if getattr(c, "type", None) == "audio"]
    assert len(audio) == 2
    assert all(block.mime_type == "audio/wav" for block in audio)  # type: ignore[union-attr]


async def test_a_cancelled_wait_stops_cleanly_and_the_task_is_still_followed(tmp_path: Path) -> None:
    async with sandboxed_client(tmp_path, "task") as (client, _, services):
        task = await call(client, "generate_music", {"description": "cancel me", "wait_seconds": 0})
        service = services[0]  # opened by the first tool call
        waiting = anyio.Event()

        async def progress(*_: object) -> None:
            waiting.set()

        with anyio.fail_after(BOUND_S):
            async with anyio.create_task_group() as tg:

                async def wait_long() -> None:
                    await service.status(task["task_id"], wait_s=40, progress=progress)

                tg.start_soon(wait_long)
                await waiting.wait()
                tg.cancel_scope.cancel()
        # Nobody waits any more, nothing was lost, and the task can still be followed.
        assert all(w.waiters == 0 for w in service.poller._watches.values())
        done = await until_complete(client, task)
        assert done["task_id"] == task["task_id"]
