"""Latency profiles, per-model latency and each task's true timeline.

Distribution checks draw many tasks from a state on a fake clock (no HTTP, no waiting); what a
client can reach (switching the profile, reading a timeline) goes through the real HTTP app.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from test_sandbox_server import FakeClock, feed, fetch_items, generate, open_sandbox, submit_music

from suno_mcp.sandbox.profiles import MODEL_FACTORS, PROFILE_NAMES, model_factor
from suno_mcp.sandbox.state import Clip, MusicRequest, Phase, SandboxConfig, SandboxState
from suno_mcp.service.backends import SandboxOptions, sandbox_backend
from suno_mcp.settings import load_settings


def make_state(**config: object) -> tuple[SandboxState, FakeClock]:
    clock = FakeClock()
    return SandboxState(SandboxConfig(**config), clock=clock), clock  # type: ignore[arg-type]


def tasks(state: SandboxState, n: int, mv: str = "chirp-v3-5") -> list[list[Clip]]:
    """The clips of ``n`` task-API music submits."""
    return [
        state.create_music(MusicRequest(prompt=f"song {i}", mv=mv), endpoint="submit_music", body={})[1]
        for i in range(n)
    ]


def previews(batches: list[list[Clip]]) -> list[float]:
    return [min(c.preview_at_s for c in clips) for clips in batches]


def completes(batches: list[list[Clip]]) -> list[float]:
    return [max(c.complete_at_s for c in clips) for clips in batches]


# -- the profiles' shapes ----------------------------------------------------------------------


def test_the_default_profile_is_steady_and_keeps_the_configured_times_for_every_model() -> None:
    state, _ = make_state(preview_after_s=30, complete_after_s=120)
    assert state.profile.name == "steady"
    for mv in ("chirp-v5", "chirp-v3-0"):
        for clip in (c for batch in tasks(state, 20, mv) for c in batch):
            assert 27 <= clip.preview_at_s <= 33
            assert 108 <= clip.complete_at_s <= 132


def test_fast_previews_at_about_eight_seconds_and_finishes_at_about_twenty_five() -> None:
    state, _ = make_state(profile="fast")
    batches = tasks(state, 200)
    assert 7 <= statistics.median(previews(batches)) <= 9
    assert 22 <= statistics.median(completes(batches)) <= 28
    assert max(completes(batches)) < 45


def test_typical_centres_on_thirty_and_a_hundred_twenty_seconds_with_a_real_spread() -> None:
    state, _ = make_state(profile="typical")
    batches = tasks(state, 300)
    p, c = previews(batches), completes(batches)
    assert 27 <= statistics.median(p) <= 33
    assert 110 <= statistics.median(c) <= 130
    # Wider than steady's +-10%: the tasks really differ from one another.
    assert min(p) < 24
    assert max(p) > 38
    assert min(c) < 95
    assert max(c) > 150
    assert all(18 * 0.97 <= x <= 50 * 1.03 for x in p)
    assert all(80 * 0.97 <= x <= 200 * 1.03 for x in c)


def test_slow_previews_after_one_to_one_and_a_half_minutes_and_finishes_after_four_to_five() -> None:
    state, _ = make_state(profile="slow")
    batches = tasks(state, 200)
    assert all(60 * 0.97 <= x <= 90 * 1.03 for x in previews(batches))
    assert all(240 * 0.97 <= x <= 300 * 1.03 for x in completes(batches))


def test_heavy_tail_finishes_most_tasks_quickly_and_about_one_in_eight_after_five_to_ten_minutes() -> None:
    state, _ = make_state(profile="heavy-tail")
    c = completes(tasks(state, 600))
    tail = [x for x in c if x >= 300 * 0.97]
    assert 0.08 <= len(tail) / len(c) <= 0.18
    assert all(x <= 600 * 1.03 for x in tail)
    assert statistics.median(c) < 80
    assert not [x for x in c if 110 < x < 290]  # two clusters, nothing in between


def test_bimodal_splits_tasks_into_two_clusters_of_previews_and_finals() -> None:
    state, _ = make_state(profile="bimodal")
    batches = tasks(state, 400)
    p, c = previews(batches), completes(batches)
    quick = [x for x in p if x < 25]
    assert 0.35 <= len(quick) / len(p) <= 0.65
    assert all(12 * 0.97 <= x <= 19 * 1.03 or 37 * 0.97 <= x <= 55 * 1.03 for x in p)
    assert all(50 * 0.97 <= x <= 72 * 1.03 or 170 * 0.97 <= x <= 240 * 1.03 for x in c)


@pytest.mark.parametrize("profile", [p for p in PROFILE_NAMES if p != "steady"])
def test_both_clips_of_a_task_land_near_each_other(profile: str) -> None:
    state, _ = make_state(profile=profile)
    for first, second in tasks(state, 50):
        assert first.preview_at_s == pytest.approx(second.preview_at_s, rel=0.07)
        assert first.complete_at_s == pytest.approx(second.complete_at_s, rel=0.07)
        assert first.preview_at_s < first.complete_at_s


def test_newer_models_render_two_to_three_times_faster_and_v3_0_a_bit_slower() -> None:
    def median_complete(mv: str) -> float:
        state, _ = make_state(profile="typical", seed=11)
        return statistics.median(completes(tasks(state, 200, mv)))

    reference = median_complete("chirp-v3-5")
    for newer in ("chirp-v5", "chirp-v4-5"):
        assert 2.0 <= reference / median_complete(newer) <= 3.0, newer
    assert 1.05 <= median_complete("chirp-v3-0") / reference <= 1.4
    # Suffixes and unknown versions: an upload continuation renders like its base model.
    assert model_factor("chirp-v4-5-upload") == MODEL_FACTORS["chirp-v4-5"]
    assert model_factor("chirp-v3-5-tau") == 1.0
    assert model_factor("some-future-model") == 1.0


def test_lyrics_take_as_long_as_the_profile_says() -> None:
    def median_lyrics(profile: str) -> float:
        state, _ = make_state(profile=profile)
        return statistics.median(state.create_lyrics(f"rain {i}", body={}).ready_at_s for i in range(100))

    assert median_lyrics("fast") < median_lyrics("typical") < median_lyrics("slow")
    assert 4.5 <= median_lyrics("steady") <= 5.5


def test_profile_draws_repeat_with_the_seed_and_differ_between_seeds() -> None:
    def draw(seed: int) -> list[float]:
        state, _ = make_state(profile="heavy-tail", seed=seed)
        return [c.complete_at_s for batch in tasks(state, 30) for c in batch]

    assert draw(4) == draw(4)
    assert draw(4) != draw(5)


def test_the_profile_does_not_change_which_music_a_seed_makes() -> None:
    def styles(profile: str) -> list[int]:
        state, _ = make_state(profile=profile, seed=2)
        return [c.style.seed for batch in tasks(state, 5) for c in batch]

    assert styles("steady") == styles("slow") == styles("bimodal")


def test_profiles_scale_with_speed() -> None:
    state, clock = make_state(profile="fast", speed=10)
    [clip, _] = tasks(state, 1)[0]
    clock.now = 1000.0 + clip.preview_at_s / 10 - 0.01
    assert state.clip_phase(clip) is Phase.GENERATING
    clock.now = 1000.0 + clip.preview_at_s / 10 + 0.01
    assert state.clip_phase(clip) is Phase.STREAMING
    clock.now = 1000.0 + clip.complete_at_s / 10 + 0.01
    assert state.clip_phase(clip) is Phase.COMPLETE


def test_changing_the_profile_times_new_tasks_and_leaves_running_ones_alone() -> None:
    state, _ = make_state(profile="slow")
    [old] = tasks(state, 1)
    before = [c.complete_at_s for c in old]
    state.set_profile("fast")
    [new] = tasks(state, 1)
    assert [c.complete_at_s for c in old] == before
    assert max(c.complete_at_s for c in new) < 45 < min(before)
    assert state.timeline(old[0].batch_id).profile == "slow"
    assert state.timeline(new[0].batch_id).profile == "fast"
    with pytest.raises(ValueError, match="known: steady, fast, typical"):
        state.set_profile("glacial")


def test_an_unknown_profile_is_refused_at_configuration_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown latency profile 'glacial'; known: .*heavy-tail"):
        SandboxConfig(profile="glacial")
    with pytest.raises(ValueError, match="heavy-tail"):
        SandboxOptions(profile="glacial").check()


# -- over HTTP -----------------------------------------------------------------------------------


async def test_the_profile_can_be_read_and_switched_over_http_mid_run() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (_, client):
        current = await client.get("/_sandbox/profile")
        assert current.json() == {"profile": "steady", "profiles": list(PROFILE_NAMES)}
        before = await submit_music(client, prompt="before the switch")

        switched = await client.post("/_sandbox/profile", json={"profile": "fast"})
        assert switched.status_code == 200
        assert switched.json()["profile"] == "fast"
        after = await submit_music(client, prompt="after the switch")

        clock.advance(12.5)  # past any fast preview, before any steady one
        assert {i["status"] for i in await fetch_items(client, before)} == {"queued"}
        assert all(i["audio_url"] == "" for i in await fetch_items(client, before))
        assert all("/sandbox/preview/" in i["audio_url"] for i in await fetch_items(client, after))

        refused = await client.post("/_sandbox/profile", json={"profile": "glacial"})
        assert refused.status_code == 400
        assert "glacial" in refused.json()["error"]
        assert (await client.post("/_sandbox/profile", json={})).status_code == 400
        assert (await client.get("/_sandbox/profile")).json()["profile"] == "fast"


async def test_the_timeline_tells_exactly_when_a_task_became_playable_and_complete() -> None:
    clock = FakeClock()
    async with open_sandbox(clock, profile="typical", speed=2.0) as (sandbox, client):
        wall_before = time.time()
        task_id = await submit_music(client, prompt="timed", mv="chirp-v4-5")
        response = await client.get(f"/_sandbox/tasks/{task_id}/timeline")
        assert response.status_code == 200
        timeline = response.json()
        assert timeline["id"] == task_id
        assert (timeline["kind"], timeline["profile"], timeline["model"]) == (
            "music",
            "typical",
            "chirp-v4-5",
        )
        assert timeline["fault"] is None
        assert timeline["speed"] == 2.0
        assert wall_before - 1 <= timeline["submitted"]["wall"] <= time.time() + 1
        assert timeline["submitted"]["clock"] == clock.now

        clips = [sandbox.state.clips[c] for c in sandbox.state.tasks[task_id].clip_ids]
        playable, completed = timeline["first_playable"], timeline["completed"]
        assert playable["model_s"] == pytest.approx(min(c.preview_at_s for c in clips))
        assert completed["model_s"] == pytest.approx(max(c.complete_at_s for c in clips))
        assert playable["real_s"] == pytest.approx(playable["model_s"] / 2)
        assert playable["wall"] == pytest.approx(timeline["submitted"]["wall"] + playable["real_s"])
        assert (playable["reached"], completed["reached"]) == (False, False)
        assert timeline["failed"] is None
        assert [c["id"] for c in timeline["clips"]] == [c.id for c in clips]

        # The moments are the sandbox's own truth: a poll just before sees nothing playable,
        # one just after can play the preview.
        first = min(clips, key=lambda c: c.preview_at_s)
        clock.now = playable["clock"] - 0.01
        assert (await client.get(f"/sandbox/preview/{first.id}.wav")).status_code == 404
        clock.now = playable["clock"] + 0.01
        assert (await client.get(f"/sandbox/preview/{first.id}.wav")).status_code == 200
        assert (await client.get(f"/_sandbox/tasks/{task_id}/timeline")).json()["first_playable"]["reached"]

        clock.now = completed["clock"] + 0.01
        assert {i["status"] for i in await fetch_items(client, task_id)} == {"completed"}
        # Reached through a clip id it is the same task.
        by_clip = (await client.get(f"/_sandbox/tasks/{first.id}/timeline")).json()
        assert by_clip["id"] == task_id
        assert by_clip["completed"]["reached"] is True


async def test_the_timeline_covers_clip_api_batches_lyrics_failures_and_unknown_ids() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        response = await client.post("/suno/generate", json={"prompt": "batch"})
        batch_id = response.json()["id"]
        batch = (await client.get(f"/_sandbox/tasks/{batch_id}/timeline")).json()
        assert batch["kind"] == "music"
        assert len(batch["clips"]) == 2
        assert batch["model"] == "chirp-v3-5"

        lyrics = await client.post("/v1/suno/submit/lyrics", json={"prompt": "rain"})
        lyrics_line = sandbox.state.timeline(lyrics.json()["data"])
        assert lyrics_line.kind == "lyrics"
        assert lyrics_line.first_playable_s is None
        assert lyrics_line.completed_s == sandbox.state.tasks[lyrics.json()["data"]].ready_at_s

        sandbox.state.inject("clip_fail", "generate", count=2)
        [doomed, _] = await generate(client, prompt="doomed")
        failed = sandbox.state.timeline(doomed["id"])
        assert failed.first_playable_s is None
        assert failed.completed_s is None
        assert failed.failed_s == max(
            c.preview_at_s for c in sandbox.state.clips.values() if c.batch_id == failed.id
        )
        clock.advance((failed.failed_s or 0.0) + 0.01)
        assert {c["status"] for c in await feed(client, doomed["id"])} == {"error"}

        missing = await client.get("/_sandbox/tasks/no-such-task/timeline")
        assert missing.status_code == 404
        assert "no-such-task" in missing.json()["error"]
        with pytest.raises(KeyError):
            sandbox.state.timeline("no-such-task")


async def test_the_embedded_sandbox_runs_the_profile_and_rate_limit_it_was_given(tmp_path: Path) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path)
    backend = sandbox_backend(SandboxOptions(speed=50, profile="bimodal", rate_limit_rps=500))
    async with (
        backend(settings) as service,
        httpx.AsyncClient(base_url=str(service.settings.base_url)) as http,
    ):
        assert (await http.get("/_sandbox/profile")).json()["profile"] == "bimodal"
        limit = (await http.get("/_sandbox/rate_limit")).json()["rate_limit"]
        assert limit == {"rps": 500.0, "burst": 500, "per_key": False}


@pytest.mark.slow  # runs the command as a subprocess
@pytest.mark.parametrize(
    "argv",
    [
        ["sandbox", "--profile", "glacial", "--port", "0"],
        ["serve", "--sandbox", "--sandbox-profile", "glacial"],
    ],
    ids=["sandbox", "serve"],
)
def test_the_cli_refuses_an_unknown_profile_before_serving(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "suno_mcp", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith(("GPTPROTO_", "SUNO_MCP_"))},
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "unknown latency profile 'glacial'" in done.stderr
    assert "heavy-tail" in done.stderr
    assert done.stdout == ""
