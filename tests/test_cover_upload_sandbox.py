"""Covers and uploads end to end: the MCP server against the sandbox over loopback, in both API modes.

Each step must cost exactly one request on the sandbox's own counters (created_by_endpoint), and
the audio that comes out is real: the files are as long as the sandbox says and not silent.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest
from test_integration_sandbox import CLIP_SECONDS, call, sandboxed_client, until_complete, wav_info
from test_sandbox_uploads import file_server, wav_file

from suno_mcp.sandbox.audio import SAMPLE_RATE

# On the task API a generation is a submit; on the clip API, a generate.
GENERATE_ENDPOINT = {"task": "submit_music", "clip": "generate"}
UPLOAD_SECONDS = 6.0


def a_tune(seconds: float) -> bytes:
    """A WAV of a plucked A-minor arpeggio at 120 bpm: something the sandbox can hear a key in."""
    notes = (220.0, 261.63, 329.63, 440.0)
    beat = SAMPLE_RATE // 2
    frames = bytearray()
    for i in range(int(seconds * SAMPLE_RATE)):
        freq = notes[(i // beat) % len(notes)]
        decay = math.exp(-3.0 * (i % beat) / beat)
        frames += struct.pack("<h", int(12000 * decay * math.sin(2 * math.pi * freq * i / SAMPLE_RATE)))
    return wav_file(bytes(frames))


@pytest.mark.parametrize("api", ["task", "clip"])
async def test_upload_then_extend_the_upload_then_complete_song_costs_one_request_a_step(
    tmp_path: Path, api: str
) -> None:
    routes = {"/tunes/arpeggio.wav": (200, {"content-type": "audio/wav"}, a_tune(UPLOAD_SECONDS))}
    async with file_server(routes) as files, sandboxed_client(tmp_path, api) as (client, sandbox, _):
        created = sandbox.state.stats.created_by_endpoint

        upload = await call(client, "upload_audio", {"url": f"{files}/tunes/arpeggio.wav"})
        assert (upload["kind"], upload["status"]) == ("upload", "complete")
        assert dict(created) == {"upload": 1}
        (uploaded,) = upload["clips"]
        assert uploaded["title"] == "arpeggio"

        cut = 4.0
        extension = await until_complete(
            client,
            await call(
                client, "extend_music", {"clip_id": uploaded["id"], "continue_at": cut, "wait_seconds": 10}
            ),
        )
        assert dict(created) == {"upload": 1, GENERATE_ENDPOINT[api]: 1}
        assert extension["clips"][0]["model"].startswith("chirp-v3-5")

        whole = await until_complete(
            client,
            await call(
                client, "get_complete_song", {"clip_id": extension["clips"][0]["id"], "wait_seconds": 10}
            ),
        )
        assert dict(created) == {"upload": 1, GENERATE_ENDPOINT[api]: 1, "concat": 1}
        assert whole["clips"][0]["duration"] == pytest.approx(cut + CLIP_SECONDS)

        saved = await call(client, "download_audio", {"task_id": whole["task_id"]})
        duration, peak = wav_info(saved["files"][0]["path"])
        assert duration == pytest.approx(cut + CLIP_SECONDS, abs=0.01)
        assert peak > 1000


@pytest.mark.parametrize("api", ["task", "clip"])
async def test_generate_then_cover_with_new_tags_then_download_costs_one_request_a_step(
    tmp_path: Path, api: str
) -> None:
    async with sandboxed_client(tmp_path, api) as (client, sandbox, _):
        created = sandbox.state.stats.created_by_endpoint
        song = await until_complete(
            client,
            await call(
                client,
                "generate_music",
                {"lyrics": "[Verse]\nRain on a tin roof", "tags": "lo-fi, chill", "wait_seconds": 10},
            ),
        )
        assert dict(created) == {GENERATE_ENDPOINT[api]: 1}
        source = song["clips"][0]

        cover = await until_complete(
            client,
            await call(
                client,
                "cover_music",
                {
                    "clip_id": source["id"],
                    "tags": "fast jazz, brass",
                    "negative_tags": "piano",
                    "wait_seconds": 10,
                },
            ),
        )
        assert dict(created) == {GENERATE_ENDPOINT[api]: 1, "cover": 1}
        assert (cover["kind"], cover["api"]) == ("cover", "clip")
        assert len(cover["clips"]) == 2
        assert all(c["tags"] == "fast jazz, brass" for c in cover["clips"])

        saved = await call(client, "download_audio", {"task_id": cover["task_id"]})
        assert len(saved["files"]) == 2
        for file in saved["files"]:
            duration, peak = wav_info(file["path"])
            assert duration > 1
            assert peak > 1000
        assert dict(created) == {GENERATE_ENDPOINT[api]: 1, "cover": 1}  # downloading is not a request to pay
