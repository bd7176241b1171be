"""Uploads on the sandbox's clip API, over real loopback HTTP: upload, continue with -upload, concat.

The audio to upload comes from the sandbox itself (a finished clip's audio_url) or from a tiny
loopback file server in this module; nothing here reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import io
import math
import socket
import struct
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
from test_sandbox_server import (
    CLIP_S,
    PAST_COMPLETE,
    VENDOR_CLIP_FIELDS,
    VENDOR_METADATA_FIELDS,
    FakeClock,
    download,
    feed,
    fetch_items,
    generate,
    open_sandbox,
    pcm_of,
    seconds_of,
)

from suno_mcp.sandbox import SandboxState
from suno_mcp.sandbox.analysis import estimate_key, estimate_tempo, pitch_class_profile, samples_of, scale_of
from suno_mcp.sandbox.audio import SAMPLE_RATE
from suno_mcp.sandbox.state import SandboxError
from suno_mcp.sandbox.uploads import UploadPolicy, upload_from_url

UPLOAD = "/v1/suno/uploads/audio-url"
Route = tuple[int, dict[str, str], bytes]


@asynccontextmanager
async def file_server(routes: dict[str, Route]) -> AsyncIterator[str]:
    """A loopback HTTP/1.1 server answering each path from ``routes`` (404 for the rest)."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610 - anyio typed attribute, not Django

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            request = b""
            try:
                while b"\r\n\r\n" not in request:
                    request += await stream.receive()
            except anyio.EndOfStream:
                return
            path = request.split(b" ")[1].decode()
            status, headers, body = routes.get(path, (404, {}, b"not found"))
            lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            await stream.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield f"http://127.0.0.1:{port}"
        tg.cancel_scope.cancel()


def wav_file(frames: bytes, *, channels: int = 1, width: int = 2, rate: int = SAMPLE_RATE) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(frames)
    return out.getvalue()


async def upload(client: httpx.AsyncClient, url: str) -> str:
    response = await client.post(UPLOAD, json={"url": url})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"status", "id"}
    assert answer["status"] == "success"
    clip_id: str = answer["id"]
    return clip_id


async def finished_song(client: httpx.AsyncClient, clock: FakeClock, **body: Any) -> dict[str, Any]:
    [clip, _] = await generate(client, **body)
    clock.advance(PAST_COMPLETE)
    [done] = await feed(client, clip["id"])
    return done


async def test_an_uploaded_song_is_at_once_a_complete_clip_that_plays_the_file() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        song = await finished_song(client, clock, prompt="la la", tags="pop")
        clip_id = await upload(client, song["audio_url"])
        assert clip_id.startswith("m_")

        [uploaded] = await feed(client, clip_id)
        assert set(uploaded) == VENDOR_CLIP_FIELDS
        assert set(uploaded["metadata"]) == VENDOR_METADATA_FIELDS
        assert uploaded["status"] == "complete"
        assert uploaded["metadata"]["type"] == "upload"
        assert uploaded["metadata"]["duration"] == CLIP_S
        assert uploaded["model_name"] == "upload"
        assert uploaded["audio_url"].endswith(f"/sandbox/audio/{clip_id}.wav")
        assert await download(client, uploaded["audio_url"]) == await download(client, song["audio_url"])

        stats = sandbox.state.stats
        assert stats.requests["upload"] == 1
        assert stats.responses[("upload", 200)] == 1
        assert stats.created_by_endpoint == {"generate": 1, "upload": 1}
        assert stats.tasks_created == 1  # an upload is not a paid generation
        assert stats.clips_created == 3


async def test_a_continued_upload_concatenates_into_the_uploaded_audio_then_the_continuation() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        song = await finished_song(client, clock, prompt="la la", tags="house")
        clip_id = await upload(client, song["audio_url"])

        clips = await generate(
            client, continue_clip_id=clip_id, continue_at=5.5, mv="chirp-v3-5-upload", prompt=""
        )
        for clip in clips:
            assert clip["model_name"] == "chirp-v3-5"
            assert clip["metadata"]["history"] == [
                {"id": clip_id, "continue_at": 5.5, "type": "upload", "source": "web", "infill": False}
            ]
            assert clip["metadata"]["is_audio_upload_tos_accepted"] is True
        clock.advance(PAST_COMPLETE)
        [continuation] = await feed(client, clips[0]["id"])
        assert continuation["status"] == "complete"

        response = await client.post(
            "/suno/generate/concat/v2", json={"clip_id": continuation["id"], "is_infill": False}
        )
        assert response.status_code == 200, response.text
        assert [h["id"] for h in response.json()["metadata"]["concat_history"]] == [
            clip_id,
            continuation["id"],
        ]
        clock.advance(PAST_COMPLETE)
        [whole] = await feed(client, response.json()["id"])
        assert whole["metadata"]["duration"] == pytest.approx(5.5 + CLIP_S)

        _, whole_pcm = pcm_of(await download(client, whole["audio_url"]))
        _, uploaded_pcm = pcm_of(await download(client, song["audio_url"]))
        _, continuation_pcm = pcm_of(await download(client, continuation["audio_url"]))
        cut = round(5.5 * SAMPLE_RATE) * 2
        assert whole_pcm == uploaded_pcm[:cut] + continuation_pcm
        assert seconds_of(whole_pcm) == pytest.approx(5.5 + CLIP_S)
        assert sandbox.state.stats.created_by_endpoint == {"generate": 2, "upload": 1, "concat": 1}


async def test_a_continuation_of_an_upload_is_in_the_key_and_tempo_heard_in_it() -> None:
    clock = FakeClock()
    async with open_sandbox(clock, clip_seconds=20.0) as (_, client):
        song = await finished_song(client, clock, prompt="la la", tags="funk, 112 bpm, in D major")
        clip_id = await upload(client, song["audio_url"])
        [clip, _] = await generate(client, continue_clip_id=clip_id, continue_at=20, mv="chirp-v3-5-upload")
        clock.advance(PAST_COMPLETE)
        [continuation] = await feed(client, clip["id"])
        samples = samples_of(pcm_of(await download(client, continuation["audio_url"]))[1])

    # The sandbox hears the key signature and the tempo; the instruments are its own guess.
    assert scale_of(*estimate_key(samples)) == scale_of("D", "major")
    assert estimate_tempo(samples) == pytest.approx(112, rel=0.02)


async def test_continuing_an_upload_without_the_upload_model_is_refused_on_both_families() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        song = await finished_song(client, clock, prompt="la la")
        clip_id = await upload(client, song["audio_url"])

        for mv in (None, "chirp-v3-5"):
            response = await client.post(
                "/suno/generate", json={"continue_clip_id": clip_id, "continue_at": 2, "mv": mv}
            )
            assert response.status_code == 400
            assert "-upload suffix" in response.json()["error"]["message"]
        task = await client.post(
            "/v1/suno/submit/music", json={"continue_clip_id": clip_id, "continue_at": 2}
        )
        assert task.status_code == 400
        assert task.json()["code"] == "error"
        assert "-upload suffix" in task.json()["message"]

        task_id = (
            await client.post(
                "/v1/suno/submit/music",
                json={"continue_clip_id": clip_id, "continue_at": 2, "mv": "chirp-v3-5-upload"},
            )
        ).json()["data"]
        clock.advance(PAST_COMPLETE)
        assert {i["status"] for i in await fetch_items(client, task_id)} == {"completed"}
        assert sandbox.state.stats.created_by_endpoint == {"generate": 1, "upload": 1, "submit_music": 1}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("upload_clip_id", lambda i: {"status": "success", "clip_id": i}),
        ("upload_data_id", lambda i: {"status": "success", "data": {"id": i}}),
        ("upload_no_id", lambda i: {"status": "success"}),
    ],
)
async def test_answer_shape_faults_move_or_drop_the_id_but_the_upload_still_happens(
    kind: str, expected: Any
) -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        song = await finished_song(client, clock, prompt="la la")
        sandbox.state.inject(kind, "upload")
        response = await client.post(UPLOAD, json={"url": song["audio_url"]})
        assert response.status_code == 200
        [uploaded] = [c for c in sandbox.state.clips.values() if c.kind == "upload"]
        assert response.json() == expected(uploaded.id)
        assert sandbox.state.stats.faults_fired[kind] == 1
        # The next upload answers in the default shape again.
        assert (await upload(client, song["audio_url"])).startswith("m_")


async def test_answer_shape_faults_can_be_set_over_http_and_only_on_uploads() -> None:
    async with open_sandbox() as (_, client):
        ok = await client.post("/_sandbox/faults", json={"kind": "upload_no_id", "endpoint": "upload"})
        assert ok.status_code == 200
        wrong = await client.post("/_sandbox/faults", json={"kind": "upload_no_id", "endpoint": "generate"})
        assert wrong.status_code == 400


async def test_an_http_fault_on_upload_answers_in_the_clip_apis_shape_and_uploads_nothing() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        song = await finished_song(client, clock, prompt="la la")
        sandbox.state.inject("429", "upload")
        response = await client.post(UPLOAD, json={"url": song["audio_url"]})
        assert response.status_code == 429
        assert set(response.json()["error"]) == {"message", "type", "code"}
        assert "upload" not in sandbox.state.stats.created_by_endpoint


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


MP3_FRAME = b"\xff\xfb\x90\x64" + bytes(413)
ROUTES: dict[str, Route] = {
    "/song.mp3": (200, {"Content-Type": "audio/mpeg"}, b"ID3\x04\x00\x00\x00\x00\x00\x00" + MP3_FRAME),
    "/bare.mp3": (200, {"Content-Type": "audio/mpeg"}, MP3_FRAME),
    "/song.flac": (200, {}, b"fLaC" + bytes(100)),
    "/page.html": (200, {"Content-Type": "text/html"}, b"<html><body>not audio</body></html>"),
    "/cut.wav": (200, {}, wav_file(bytes(4000))[:30]),
    "/empty.wav": (200, {}, wav_file(b"")),
    "/away": (302, {"Location": "http://example.com/song.wav"}, b""),
    "/loop": (302, {"Location": "/loop"}, b""),
}


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", "url is required"),
        ("not a url", "must be an http:// or https:// URL"),
        ("ftp://127.0.0.1/song.wav", "must be an http:// or https:// URL"),
        ("https://example.com/song.mp3", "fetches only loopback URLs"),
        ("http://10.0.0.8/song.wav", "fetches only loopback URLs"),
        # The port is picked when the test runs: an id built from it would differ between
        # pytest-xdist workers, which must collect identical tests.
        ("http://127.0.0.1:{closed}/song.wav", "is unreachable"),
        ("{files}/missing.wav", "answered HTTP 404"),
        ("{files}/song.mp3", "the file is MP3"),
        ("{files}/bare.mp3", "the file is MP3"),
        ("{files}/song.flac", "the file is FLAC"),
        ("{files}/page.html", "expected a PCM WAV file"),
        ("{files}/cut.wav", "cannot be read"),
        ("{files}/empty.wav", "holds no audio"),
        ("{files}/away", "not a loopback host"),
        ("{files}/loop", "redirects more than 3 times"),
        ("{sandbox}/sandbox/audio/no-such-clip.wav", "answered HTTP 404"),
        ("{sandbox}/sandbox/image/{clip}.png", "expected a PCM WAV file"),
    ],
)
async def test_an_upload_that_cannot_be_fetched_or_decoded_is_a_400_naming_why(url: str, words: str) -> None:
    clock = FakeClock()
    async with file_server(ROUTES) as files, open_sandbox(clock) as (sandbox, client):
        song = await finished_song(client, clock, prompt="la la")
        url = url.format(files=files, sandbox=sandbox.url, clip=song["id"], closed=closed_port())
        response = await client.post(UPLOAD, json={"url": url})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["code"] == "invalid_request"
        assert words in error["message"]
        assert "upload" not in sandbox.state.stats.created_by_endpoint


def sine(hz: float, seconds: float, rate: int) -> list[float]:
    return [math.sin(2 * math.pi * hz * n / rate) for n in range(round(seconds * rate))]


async def test_stereo_24_bit_44k_wav_is_made_mono_at_the_sandbox_rate() -> None:
    left = sine(440.0, 2.0, 44100)
    frames = b"".join(
        struct.pack("<i", round(v * 0.5 * 2**31))[1:] * 2  # 24-bit: the top three bytes, both channels
        for v in left
    )
    routes: dict[str, Route] = {"/a440.wav": (200, {}, wav_file(frames, channels=2, width=3, rate=44100))}
    async with file_server(routes) as files, open_sandbox() as (_, client):
        clip_id = await upload(client, f"{files}/a440.wav")
        [uploaded] = await feed(client, clip_id)
        assert uploaded["metadata"]["duration"] == pytest.approx(2.0, abs=0.001)
        assert uploaded["title"] == "a440"
        rate, pcm = pcm_of(await download(client, uploaded["audio_url"]))
    assert rate == SAMPLE_RATE
    profile = pitch_class_profile(samples_of(pcm))
    assert max(range(12), key=lambda pc: profile[pc]) == 9  # A
    assert max(abs(s) for s in samples_of(pcm)) == pytest.approx(0.5 * 32767, rel=0.01)


async def test_8_bit_wav_is_read_as_unsigned() -> None:
    frames = bytes(128 + round(100 * v) for v in sine(220.0, 1.0, 8000))
    routes: dict[str, Route] = {"/low.wav": (200, {}, wav_file(frames, width=1, rate=8000))}
    async with file_server(routes) as files, open_sandbox() as (_, client):
        [uploaded] = await feed(client, await upload(client, f"{files}/low.wav"))
        _, pcm = pcm_of(await download(client, uploaded["audio_url"]))
    samples = samples_of(pcm)
    assert abs(sum(samples) / len(samples)) < 200  # centred on zero, not on 128 * 256
    assert max(samples) == pytest.approx(100 * 256, rel=0.02)


async def test_a_file_larger_than_the_policy_allows_is_refused_while_it_downloads() -> None:
    routes: dict[str, Route] = {"/big.wav": (200, {}, wav_file(bytes(20_000)))}
    async with file_server(routes) as files:
        state = SandboxState()
        with pytest.raises(SandboxError, match="larger than the sandbox accepts") as caught:
            await upload_from_url(state, f"{files}/big.wav", UploadPolicy(max_bytes=10_000))
        assert caught.value.status == 400
        assert not state.clips


async def test_an_uploaded_song_can_be_covered_in_the_style_heard_in_it() -> None:
    clock = FakeClock()
    async with open_sandbox(clock, clip_seconds=16.0) as (_, client):
        song = await finished_song(client, clock, prompt="la la", tags="soul, 96 bpm, in F major")
        clip_id = await upload(client, song["audio_url"])
        body = {"task": "cover", "cover_clip_id": clip_id, "mv": "chirp-v3-5-tau", "tags": "rock, 128 bpm"}
        response = await client.post("/suno/generate", json=body)
        assert response.status_code == 200, response.text
        [covered, _] = response.json()["clips"]
        assert covered["metadata"]["cover_clip_id"] == clip_id
        clock.advance(PAST_COMPLETE)
        [covered] = await feed(client, covered["id"])
        assert covered["metadata"]["duration"] == pytest.approx(16.0 * 96 / 128, rel=0.01)
        samples = samples_of(pcm_of(await download(client, covered["audio_url"]))[1])
    assert scale_of(*estimate_key(samples)) == scale_of("F", "major")
