"""The sandbox's lifecycle, faults and config as plain objects, driven by a fake clock."""

from __future__ import annotations

import pytest

from suno_mcp.sandbox.faults import FaultPlan, FaultRule, parse_fault_spec
from suno_mcp.sandbox.lyrics import write_lyrics
from suno_mcp.sandbox.state import (
    MIN_PREVIEW_S,
    Clip,
    MusicRequest,
    Phase,
    SandboxConfig,
    SandboxError,
    SandboxState,
    fingerprint,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_state(**config: object) -> tuple[SandboxState, FakeClock]:
    clock = FakeClock()
    return SandboxState(SandboxConfig(**config), clock=clock), clock  # type: ignore[arg-type]


def generate(state: SandboxState, **fields: object) -> list[Clip]:
    """The two clips of one clip-API generate."""
    return state.create_music(MusicRequest(**fields), endpoint="generate", body={})[1]  # type: ignore[arg-type]


def test_clip_phases_follow_the_configured_timings_within_ten_percent_jitter() -> None:
    state, clock = make_state(preview_after_s=30, complete_after_s=120)
    clips = [c for _ in range(20) for c in generate(state, prompt="x")]
    for clip in clips:
        assert 27 <= clip.preview_at_s <= 33
        assert 108 <= clip.complete_at_s <= 132
    expected = [
        (0, Phase.SUBMITTED),
        (5, Phase.QUEUED),
        (17, Phase.GENERATING),
        (34, Phase.STREAMING),
        (107, Phase.STREAMING),
        (133, Phase.COMPLETE),
    ]
    for at, phase in expected:
        clock.now = at
        assert {state.clip_phase(c) for c in clips} == {phase}, at


def test_speed_scales_model_time() -> None:
    state, clock = make_state(speed=100)
    [clip, _] = generate(state, prompt="x")
    clock.now = 0.34
    assert state.clip_phase(clip) is Phase.STREAMING
    clock.now = 1.33
    assert state.clip_phase(clip) is Phase.COMPLETE


def test_a_failing_clip_turns_failed_when_its_preview_would_have_started() -> None:
    state, clock = make_state()
    state.inject("clip_fail", "generate", count=2)
    clips = generate(state, prompt="x")
    clock.now = 20
    assert {state.clip_phase(c) for c in clips} == {Phase.GENERATING}
    clock.now = 34
    assert {state.clip_phase(c) for c in clips} == {Phase.FAILED}
    assert all(c.failure is not None for c in clips)


def test_preview_holds_at_least_a_few_seconds_and_never_more_than_the_clip() -> None:
    state, clock = make_state(clip_seconds=60)
    [clip, _] = generate(state, prompt="x")
    clock.now = clip.preview_at_s
    assert state.streamed_s(clip) == MIN_PREVIEW_S
    clock.now = (clip.preview_at_s + clip.complete_at_s) / 2
    assert 29 <= state.streamed_s(clip) <= 30  # whole seconds, half of the clip
    clock.now = clip.complete_at_s + 100
    assert state.streamed_s(clip) == 60


def test_lyrics_task_is_queued_then_processing_then_complete() -> None:
    state, clock = make_state(lyrics_after_s=5)
    task = state.create_lyrics("rain", body={"prompt": "rain"})
    assert state.lyrics_phase(task) is Phase.QUEUED
    clock.now = 2
    assert state.lyrics_phase(task) is Phase.GENERATING
    clock.now = 5.6
    assert state.lyrics_phase(task) is Phase.COMPLETE


def test_a_concat_clip_starts_queued_and_a_chain_of_one_is_its_own_song() -> None:
    state, clock = make_state(clip_seconds=10)
    [clip, _] = generate(state, prompt="x")
    clock.now = 200
    concat = state.create_concat(clip.id)
    assert state.clip_phase(concat) is Phase.QUEUED
    assert concat.duration_s == 10
    assert concat.concat_history == (clip.id,)


def test_extending_or_concatenating_an_unfinished_clip_is_refused() -> None:
    state, _ = make_state()
    [clip, _] = generate(state, prompt="x")
    with pytest.raises(SandboxError) as extend:
        state.create_music(
            MusicRequest(continue_clip_id=clip.id, continue_at=1), endpoint="generate", body={}
        )
    assert extend.value.status == 400
    with pytest.raises(SandboxError) as concat:
        state.create_concat(clip.id)
    assert concat.value.status == 400


def test_extension_without_continue_at_continues_from_the_parents_end() -> None:
    state, clock = make_state(clip_seconds=10)
    [parent, _] = generate(state, prompt="x")
    clock.now = 200
    [ext, _] = generate(state, continue_clip_id=parent.id)
    assert ext.continue_at == 10
    assert ext.segments[0].start_s == 10
    assert ext.style == parent.style


def test_config_rejects_nonsense_and_hides_the_api_key() -> None:
    for bad in ({"speed": 0}, {"preview_after_s": 200}, {"clip_seconds": 0}, {"faults": "teapot:0.5"}):
        with pytest.raises(ValueError, match=r"."):
            SandboxConfig(**bad)
    assert "s3cret" not in repr(SandboxConfig(api_key="s3cret"))


def test_fault_spec_parses_probabilities_and_endpoint_restrictions() -> None:
    assert parse_fault_spec(" 429:0.1, drop:0.02@submit_music ,") == (
        FaultRule("429", 0.1),
        FaultRule("drop", 0.02, "submit_music"),
    )
    for bad in ("429", "429:x", "429:1.5", "nope:0.1", "429:0.1@nowhere", "expired:0.1@fetch"):
        with pytest.raises(ValueError, match=r"."):
            parse_fault_spec(bad)


def test_injected_faults_fire_before_draws_and_only_where_they_can_happen() -> None:
    plan = FaultPlan("500:1.0@feed", seed=1)
    plan.inject("expired")
    plan.inject("429", "feed", count=2)
    assert plan.draw_http("fetch") is None
    assert [plan.draw_http("feed") for _ in range(3)] == ["429", "429", "500"]
    assert plan.draw_http("media") == "expired"
    assert plan.pending() == []
    plan.clear()
    assert plan.draw_http("feed") is None


def test_fault_draws_are_reproducible_per_seed() -> None:
    def run(seed: int) -> list[str | None]:
        plan = FaultPlan("429:0.3,500:0.3,clip_fail:0.5", seed=seed)
        return [plan.draw_http("fetch") for _ in range(50)] + [
            str(plan.draw_render("generate")) for _ in range(20)
        ]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_fingerprint_ignores_key_order_but_not_the_endpoint() -> None:
    assert fingerprint("submit_music", {"a": 1, "b": 2}) == fingerprint("submit_music", {"b": 2, "a": 1})
    assert fingerprint("submit_music", {"prompt": "x"}) != fingerprint("submit_lyrics", {"prompt": "x"})


def test_lyrics_have_sections_and_follow_the_seed() -> None:
    lyrics = write_lyrics("neon harbour nights", seed=4)
    assert lyrics == write_lyrics("neon harbour nights", seed=4)
    assert lyrics.text.startswith("[Verse]\n")
    assert "[Chorus]" in lyrics.text
    assert "[Bridge]" in lyrics.text
    assert lyrics.title
