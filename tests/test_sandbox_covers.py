"""Covers on the sandbox's clip API, over real loopback HTTP: the answer, the lifecycle, and the music.

A cover must sound like the same song in another style. The listening test renders both through
the sandbox's own audio URLs and compares them with the stdlib analysis in
``suno_mcp.sandbox.analysis``: same key signature, same chords and melody bar for bar, another
tempo and a brighter or darker sound.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from test_sandbox_server import (
    PAST_COMPLETE,
    VENDOR_BATCH_FIELDS,
    VENDOR_CLIP_FIELDS,
    VENDOR_METADATA_FIELDS,
    FakeClock,
    download,
    feed,
    generate,
    open_sandbox,
    pcm_of,
)

from suno_mcp.sandbox.analysis import (
    brightness,
    correlation,
    estimate_key,
    estimate_tempo,
    pitch_class_profile,
    samples_of,
    scale_of,
)
from suno_mcp.sandbox.audio import SAMPLE_RATE

LYRICS = "[Verse]\nWe kept the lights on late\n[Chorus]\nAnd sang it twice"


def cover_body(source_id: str, **overrides: Any) -> dict[str, Any]:
    """A cover request as the vendor's scenario 7 sends it."""
    body: dict[str, Any] = {
        "task": "cover",
        "cover_clip_id": source_id,
        "mv": "chirp-v3-5-tau",
        "prompt": LYRICS,
        "tags": "synthwave, strings, 132 bpm",
        "negative_tags": "",
        "title": "Late Lights (cover)",
        "generation_type": "TEXT",
        "continue_clip_id": None,
        "continue_at": None,
        "infill_start_s": None,
        "infill_end_s": None,
    }
    body.update(overrides)
    return body


async def cover(client: httpx.AsyncClient, source_id: str, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/suno/generate", json=cover_body(source_id, **overrides))
    assert response.status_code == 200, response.text
    batch: dict[str, Any] = response.json()
    return batch


async def completed_source(client: httpx.AsyncClient, clock: FakeClock, **body: Any) -> str:
    clip_id: str = (await generate(client, **body))[0]["id"]
    clock.advance(PAST_COMPLETE)
    return clip_id


async def test_cover_answers_a_generate_batch_of_cover_clips_that_complete_like_any_clip() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        source_id = await completed_source(client, clock, prompt=LYRICS, tags="lofi piano, 90 bpm")

        batch = await cover(client, source_id)
        assert set(batch) == VENDOR_BATCH_FIELDS
        assert len(batch["clips"]) == 2
        for clip in batch["clips"]:
            assert set(clip) == VENDOR_CLIP_FIELDS
            assert set(clip["metadata"]) == VENDOR_METADATA_FIELDS | {"task", "cover_clip_id"}
            assert clip["status"] == "submitted"
            assert clip["model_name"] == "chirp-v3-5-tau"
            assert clip["title"] == "Late Lights (cover)"
            assert clip["metadata"]["task"] == "cover"
            assert clip["metadata"]["cover_clip_id"] == source_id
            assert clip["metadata"]["history"] is None
            assert clip["metadata"]["tags"] == "synthwave, strings, 132 bpm"
            assert clip["metadata"]["prompt"] == LYRICS

        clock.advance(PAST_COMPLETE)
        ids = [c["id"] for c in batch["clips"]]
        done = await feed(client, *ids)
        assert {c["status"] for c in done} == {"complete"}
        # The cover keeps the source's bars: at 132 bpm instead of 90 the song is shorter.
        [source] = await feed(client, source_id)
        for clip in done:
            assert clip["metadata"]["duration"] == pytest.approx(
                source["metadata"]["duration"] * 90 / 132, rel=0.01
            )
            _, pcm = pcm_of(await download(client, clip["audio_url"]))
            assert len(pcm) / 2 / SAMPLE_RATE == pytest.approx(clip["metadata"]["duration"], abs=0.001)

        stats = sandbox.state.stats
        assert stats.requests["generate"] == 2
        assert stats.created_by_endpoint == {"generate": 1, "cover": 1}
        assert stats.tasks_created == 2
        assert stats.clips_created == 4


def bar_profiles(pcm: bytes, bpm: int, bars: range) -> list[list[float]]:
    samples = samples_of(pcm)
    bar = 16 * round(SAMPLE_RATE * 15 / bpm)  # the renderer's bar: sixteen whole-sample steps
    return [pitch_class_profile(samples, i * bar, (i + 1) * bar, frames=4) for i in bars]


def mean_similarity(a: list[list[float]], b: list[list[float]]) -> float:
    return sum(correlation(x, y) for x, y in zip(a, b, strict=True)) / len(a)


async def test_a_cover_keeps_key_chords_and_melody_and_changes_tempo_and_sound() -> None:
    clock = FakeClock()
    async with open_sandbox(clock, clip_seconds=24.0) as (_, client):
        tags = "lofi piano, 90 bpm, in A minor"
        [source, other] = await generate(client, prompt=LYRICS, tags=tags)  # two songs, one style
        clock.advance(PAST_COMPLETE)
        covered = (await cover(client, source["id"]))["clips"][0]
        clock.advance(PAST_COMPLETE)
        [source, other, covered] = await feed(client, source["id"], other["id"], covered["id"])
        source_pcm = pcm_of(await download(client, source["audio_url"]))[1]
        other_pcm = pcm_of(await download(client, other["audio_url"]))[1]
        cover_pcm = pcm_of(await download(client, covered["audio_url"]))[1]

    # Same key: both hold the A minor scale.
    assert scale_of(*estimate_key(samples_of(source_pcm))) == scale_of("A", "minor")
    assert scale_of(*estimate_key(samples_of(cover_pcm))) == scale_of("A", "minor")

    # Same song: bar for bar (after the two intro bars) the cover plays the source's chords and
    # melody, far more alike than another song in the same key and style.
    bars = range(2, 8)
    source_bars = bar_profiles(source_pcm, 90, bars)
    cover_likeness = mean_similarity(source_bars, bar_profiles(cover_pcm, 132, bars))
    other_likeness = mean_similarity(source_bars, bar_profiles(other_pcm, 90, bars))
    assert cover_likeness > 0.9
    assert cover_likeness > other_likeness + 0.2

    # Another performance: the cover's tempo, and its synth and strings instead of piano.
    assert estimate_tempo(samples_of(source_pcm)) == pytest.approx(90, rel=0.01)
    assert estimate_tempo(samples_of(cover_pcm)) == pytest.approx(132, rel=0.01)
    assert brightness(samples_of(cover_pcm)) > 1.4 * brightness(samples_of(source_pcm))


async def test_negative_tags_keep_their_instruments_out_of_the_cover() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        source_id = await completed_source(client, clock, prompt=LYRICS, tags="folk")
        batch = await cover(client, source_id, tags="rock, guitar, organ", negative_tags="organ, drums")
        for clip in batch["clips"]:
            style = sandbox.state.clips[clip["id"]].style
            assert "guitar" in style.instruments
            assert not {"organ", "drums"} & set(style.instruments)


async def test_a_cover_without_lyrics_sings_the_sources_and_of_an_instrumental_is_instrumental() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (_, client):
        sung = await completed_source(client, clock, prompt=LYRICS, tags="pop")
        played = await completed_source(client, clock, gpt_description_prompt="calm", make_instrumental=True)

        [sung_cover, _] = (await cover(client, sung, prompt=""))["clips"]
        assert sung_cover["metadata"]["prompt"] == LYRICS
        assert sung_cover["metadata"]["has_vocal"] is True
        [played_cover, _] = (await cover(client, played, prompt="", title=""))["clips"]
        assert played_cover["metadata"]["has_vocal"] is False
        [source] = await feed(client, played)
        assert played_cover["title"] == source["title"]


async def test_a_cover_without_a_model_uses_the_cover_model() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (_, client):
        source_id = await completed_source(client, clock, prompt=LYRICS)
        batch = await cover(client, source_id, mv=None)
        assert {c["model_name"] for c in batch["clips"]} == {"chirp-v3-5-tau"}


@pytest.mark.parametrize(
    ("overrides", "status", "words"),
    [
        ({"cover_clip_id": "no-such-clip"}, 404, "Clip not found: no-such-clip"),
        ({"mv": "chirp-v3-5"}, 400, "-tau suffix"),
        ({"mv": "chirp-v3-5-upload"}, 400, "-tau suffix"),
        ({"cover_clip_id": None}, 400, "needs cover_clip_id"),
        ({"task": None}, 400, 'only read with task: "cover"'),
        ({"continue_at": 3}, 400, "continues nothing"),
        ({"infill_start_s": 1, "infill_end_s": 2}, 400, "no infill"),
        ({"negative_tags": 5}, 400, "negative_tags"),
        ({"generation_type": ["TEXT"]}, 400, "generation_type"),
        ({"negative_tags": "forbidden-word"}, 503, "content policy"),
    ],
)
async def test_a_bad_cover_request_is_refused_in_the_clip_apis_error_shape_and_costs_nothing(
    overrides: dict[str, Any], status: int, words: str
) -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        source_id = await completed_source(client, clock, prompt=LYRICS)
        response = await client.post("/suno/generate", json=cover_body(source_id, **overrides))
        assert response.status_code == status
        error = response.json()["error"]
        assert set(error) == {"message", "type", "code"}
        assert words in error["message"]
        assert sandbox.state.stats.created_by_endpoint == {"generate": 1}


async def test_covering_an_unfinished_or_failed_clip_is_refused() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        [pending, _] = await generate(client, prompt=LYRICS)
        response = await client.post("/suno/generate", json=cover_body(pending["id"]))
        assert response.status_code == 400
        assert "not complete yet" in response.json()["error"]["message"]

        sandbox.state.inject("clip_fail", "generate", count=2)
        [failed, _] = await generate(client, prompt=LYRICS)
        clock.advance(PAST_COMPLETE)
        response = await client.post("/suno/generate", json=cover_body(failed["id"]))
        assert response.status_code == 400
        assert "failed" in response.json()["error"]["message"]
        assert "cover" not in sandbox.state.stats.created_by_endpoint


async def test_faults_on_generate_hit_covers_too() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        source_id = await completed_source(client, clock, prompt=LYRICS)
        sandbox.state.inject("429", "generate")
        response = await client.post("/suno/generate", json=cover_body(source_id))
        assert response.status_code == 429
        assert "cover" not in sandbox.state.stats.created_by_endpoint

        sandbox.state.inject("clip_fail", "generate")
        batch = await cover(client, source_id)
        clock.advance(PAST_COMPLETE)
        statuses = sorted(c["status"] for c in await feed(client, *(c["id"] for c in batch["clips"])))
        assert statuses == ["complete", "error"]
        assert sandbox.state.stats.created_by_endpoint["cover"] == 1


async def test_a_cover_of_a_concatenated_song_covers_every_stretch_of_it() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (_, client):
        root = await completed_source(client, clock, prompt=LYRICS, tags="blues, 100 bpm")
        [ext, _] = await generate(client, continue_clip_id=root, continue_at=4, tags="jazz, 100 bpm")
        clock.advance(PAST_COMPLETE)
        whole = (
            await client.post("/suno/generate/concat/v2", json={"clip_id": ext["id"], "is_infill": False})
        ).json()
        clock.advance(PAST_COMPLETE)
        [whole] = await feed(client, whole["id"])

        [covered, _] = (await cover(client, whole["id"], tags="house, 125 bpm"))["clips"]
        clock.advance(PAST_COMPLETE)
        [covered] = await feed(client, covered["id"])
        assert covered["metadata"]["duration"] == pytest.approx(
            whole["metadata"]["duration"] * 100 / 125, rel=0.01
        )
