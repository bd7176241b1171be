"""Every documented vendor answer, and the odd shapes of gateways, on demand over real HTTP.

Each fault is injected the way a test on the client side would: through the admin endpoint
(``POST /_sandbox/faults``), through ``state.inject`` or through the fault spec. Bodies are
asserted literally.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from test_sandbox_server import (
    PAST_COMPLETE,
    VENDOR_BATCH_FIELDS,
    VENDOR_CLIP_FIELDS,
    FakeClock,
    feed,
    fetch_items,
    open_sandbox,
    submit_music,
)

from suno_mcp.sandbox.faults import FaultRule, parse_fault_spec

SUBMITS = {"task": ("/v1/suno/submit/music", "submit_music"), "clip": ("/suno/generate", "generate")}
# Past the moment any steady clip (preview ~30 s +-10%) shows a task fault (half of its preview).
PAST_HELD = 17.0


async def inject(client: httpx.AsyncClient, kind: str, endpoint: str, count: int = 1) -> None:
    """Queue a fault through the admin endpoint, as a client-side test would."""
    response = await client.post(
        "/_sandbox/faults", json={"kind": kind, "endpoint": endpoint, "count": count}
    )
    assert response.status_code == 200, response.text


# -- the vendor's documented refusals ------------------------------------------------------------


VENDOR_REFUSALS = [
    (
        "policy_503",
        503,
        "Input may not meet the guidelines. Please adjust and try again.",
        "content_policy_violation",
    ),
    ("invalid_token", 403, "Invalid Token", "invalid_token"),
    ("invalid_signature", 401, "Invalid signature", "authentication_error"),
    ("balance", 403, "Insufficient balance", "insufficient_balance"),
    ("invalid_prompt", 400, "Invalid prompt: prompt cannot be empty", "invalid_request_error"),
]
CLIP_CODES = {400: "invalid_request", 401: "invalid_api_key", 403: "forbidden", 503: "service_unavailable"}


@pytest.mark.parametrize("family", ["task", "clip"])
@pytest.mark.parametrize(
    ("kind", "status", "message", "error_type"), VENDOR_REFUSALS, ids=[r[0] for r in VENDOR_REFUSALS]
)
async def test_a_vendor_refusal_answers_the_vendors_literal_status_and_body_and_creates_nothing(
    family: str, kind: str, status: int, message: str, error_type: str
) -> None:
    path, endpoint = SUBMITS[family]
    async with open_sandbox() as (sandbox, client):
        await inject(client, kind, endpoint)
        response = await client.post(path, json={"prompt": "a fine song"})
        assert response.status_code == status
        expected: dict[str, Any] = {"message": message, "type": error_type}
        if family == "clip":
            expected["code"] = CLIP_CODES[status]
        assert response.json() == {"error": expected}
        assert sandbox.state.stats.tasks_created == 0
        assert sandbox.state.stats.faults_fired[kind] == 1
        # Only the one request: the next submit is taken.
        assert (await client.post(path, json={"prompt": "a fine song"})).status_code == 200


async def test_the_policy_refusal_also_comes_from_the_fault_spec() -> None:
    async with open_sandbox(faults="policy_503:1.0@submit_lyrics") as (sandbox, client):
        lyrics = await client.post("/v1/suno/submit/lyrics", json={"prompt": "rain"})
        assert lyrics.status_code == 503
        assert (
            lyrics.json()["error"]["message"]
            == "Input may not meet the guidelines. Please adjust and try again."
        )
        await submit_music(client, prompt="music is not covered by the rule")
        assert sandbox.state.stats.tasks_created == 1


async def test_invalid_token_and_signature_can_hit_a_status_read() -> None:
    async with open_sandbox() as (_, client):
        task_id = await submit_music(client, prompt="x")
        await inject(client, "invalid_token", "fetch")
        await inject(client, "invalid_signature", "feed")
        token = await client.get(f"/v1/suno/fetch/{task_id}")
        assert (token.status_code, token.json()) == (
            403,
            {"error": {"message": "Invalid Token", "type": "invalid_token"}},
        )
        signature = await client.get("/v1/suno/feed", params={"ids": "x"})
        assert signature.status_code == 401
        assert signature.json()["error"]["message"] == "Invalid signature"


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [("/v1/suno/submit/music", "submit_music"), ("/v1/suno/submit/lyrics", "submit_lyrics")],
)
async def test_invalid_prompt_200_is_the_task_apis_refusal_with_http_200(path: str, endpoint: str) -> None:
    async with open_sandbox() as (sandbox, client):
        sandbox.state.inject("invalid_prompt_200", endpoint)
        response = await client.post(path, json={"prompt": "a fine prompt"})
        assert response.status_code == 200
        assert response.json() == {
            "code": "error",
            "data": None,
            "message": "Invalid prompt: prompt cannot be empty",
        }
        assert sandbox.state.stats.tasks_created == 0


async def test_a_refusal_cannot_be_injected_where_it_cannot_happen() -> None:
    async with open_sandbox() as (_, client):
        for kind, endpoint in [
            ("policy_503", "fetch"),
            ("invalid_prompt_200", "generate"),
            ("status:cancelled", "fetch"),
        ]:
            response = await client.post("/_sandbox/faults", json={"kind": kind, "endpoint": endpoint})
            assert response.status_code == 400, kind
            assert "cannot happen" in response.json()["error"]


# -- other shapes of a submit answer ------------------------------------------------------------


async def test_wrapped_id_answers_the_task_id_inside_an_object_and_the_task_is_fetchable() -> None:
    async with open_sandbox() as (sandbox, client):
        await inject(client, "wrapped_id", "submit_music")
        response = await client.post("/v1/suno/submit/music", json={"prompt": "wrapped"})
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"code", "data"}
        assert body["code"] == "success"
        assert set(body["data"]) == {"task_id"}
        task_id = body["data"]["task_id"]
        assert len(await fetch_items(client, task_id)) == 2
        assert sandbox.state.stats.faults_fired["wrapped_id"] == 1


async def test_wrapped_id_plain_answers_only_data_id_for_music_and_lyrics() -> None:
    async with open_sandbox() as (_, client):
        await inject(client, "wrapped_id_plain", "submit_music")
        await inject(client, "wrapped_id_plain", "submit_lyrics")
        music = (await client.post("/v1/suno/submit/music", json={"prompt": "plain"})).json()
        lyrics = (await client.post("/v1/suno/submit/lyrics", json={"prompt": "plain"})).json()
        for body in (music, lyrics):
            assert set(body) == {"data"}
            assert set(body["data"]) == {"id"}
        assert len(await fetch_items(client, music["data"]["id"])) == 2
        [item] = await fetch_items(client, lyrics["data"]["id"])
        assert item["id"] == lyrics["data"]["id"]


async def test_an_odd_task_id_is_fetchable_percent_encoded_until_it_completes() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        await inject(client, "odd_id", "submit_music")
        task_id = await submit_music(client, prompt="odd")
        assert re.search(r"[^A-Za-z0-9_-]", task_id)
        assert {":", "/", ".", "+"} <= set(task_id)
        path = f"/v1/suno/fetch/{quote(task_id, safe='')}"
        assert "%2F" in path
        assert "%3A" in path

        response = await client.get(path)
        assert response.status_code == 200
        items = response.json()["data"]
        assert len(items) == 2
        assert {i["task_id"] for i in items} == {task_id}
        assert {i["status"] for i in items} == {"queued"}

        clock.advance(PAST_COMPLETE)
        assert {i["status"] for i in (await client.get(path)).json()["data"]} == {"completed"}
        timeline = await client.get(f"/_sandbox/tasks/{quote(task_id, safe='')}/timeline")
        assert timeline.json()["id"] == task_id
        assert list(sandbox.state.tasks) == [task_id]  # the plain id it had inside is gone


async def test_an_odd_lyrics_task_id_is_the_id_of_its_item() -> None:
    async with open_sandbox() as (sandbox, client):
        sandbox.state.inject("odd_id", "submit_lyrics")
        task_id = (await client.post("/v1/suno/submit/lyrics", json={"prompt": "odd words"})).json()["data"]
        [item] = (await client.get(f"/v1/suno/fetch/{quote(task_id, safe='')}")).json()["data"]
        assert item["id"] == task_id


async def test_wrapped_clip_wraps_the_usual_generate_batch_and_concat_clip() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (_, client):
        await inject(client, "wrapped_clip", "generate")
        body = (await client.post("/suno/generate", json={"prompt": "wrapped batch"})).json()
        assert set(body) == {"code", "data"}
        assert body["code"] == "success"
        assert set(body["data"]) == VENDOR_BATCH_FIELDS
        clip_id = body["data"]["clips"][0]["id"]
        assert [c["id"] for c in await feed(client, clip_id)] == [clip_id]

        clock.advance(PAST_COMPLETE)
        await inject(client, "wrapped_clip", "concat")
        concat = (
            await client.post("/suno/generate/concat/v2", json={"clip_id": clip_id, "is_infill": False})
        ).json()
        assert concat["code"] == "success"
        assert set(concat["data"]) == VENDOR_CLIP_FIELDS


async def test_a_reshape_leaves_a_refused_submit_in_its_usual_error_shape() -> None:
    async with open_sandbox() as (_, client):
        await inject(client, "wrapped_id", "submit_music")
        response = await client.post("/v1/suno/submit/music", json={"prompt": ""})
        assert response.status_code == 400
        assert response.json()["code"] == "error"


# -- odd statuses of a task -------------------------------------------------------------------


@pytest.mark.parametrize("word", ["cancelled", "timeout", "expired", "rejected"])
async def test_a_status_fault_makes_the_next_task_report_that_word_and_stay_there(word: str) -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        await inject(client, f"status:{word}", "submit_music")
        odd = await submit_music(client, prompt="odd status")
        normal = await submit_music(client, prompt="the next one is normal")
        assert {i["status"] for i in await fetch_items(client, odd)} == {"queued"}

        clock.advance(PAST_HELD)
        assert {i["status"] for i in await fetch_items(client, odd)} == {word}
        clock.advance(PAST_COMPLETE * 10)
        items = await fetch_items(client, odd)
        assert {i["status"] for i in items} == {word}
        assert all(i["audio_url"] == "" and i["duration"] is None for i in items)
        assert (await client.get(f"/sandbox/audio/{items[0]['id']}.wav")).status_code == 404
        assert {i["status"] for i in await fetch_items(client, normal)} == {"completed"}

        timeline = sandbox.state.timeline(odd)
        assert timeline.fault == f"status:{word}"
        assert timeline.first_playable_s is None
        assert timeline.completed_s is None
        assert timeline.fault_shown_s is not None
        assert timeline.fault_shown_s < PAST_HELD
        assert sandbox.state.stats.faults_fired[f"status:{word}"] == 1


async def test_a_status_fault_reaches_the_clip_apis_feed_and_a_lyrics_task() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        sandbox.state.inject("status:rejected", "generate")
        sandbox.state.inject("status:expired", "submit_lyrics")
        clips = (await client.post("/suno/generate", json={"prompt": "x"})).json()["clips"]
        lyrics = (await client.post("/v1/suno/submit/lyrics", json={"prompt": "x"})).json()["data"]
        clock.advance(PAST_COMPLETE)
        fed = await feed(client, *(c["id"] for c in clips))
        assert {c["status"] for c in fed} == {"rejected"}
        assert all(c["audio_url"] == "" for c in fed)
        [item] = await fetch_items(client, lyrics)
        assert item["status"] == "expired"
        assert item["text"] == ""


async def test_a_stuck_task_stays_in_review_forever() -> None:
    clock = FakeClock()
    async with open_sandbox(clock, faults="stuck:1.0@submit_music") as (sandbox, client):
        task_id = await submit_music(client, prompt="stuck")
        for _ in range(3):
            clock.advance(10_000.0)
            items = await fetch_items(client, task_id)
            assert {i["status"] for i in items} == {"in_review"}
            assert all(i["progress"] != "100%" for i in items)
        assert sandbox.state.timeline(task_id).fault == "stuck"


async def test_task_failure_fails_the_task_object_while_its_clips_still_say_queued() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        await inject(client, "task_failure", "submit_music")
        task_id = await submit_music(client, prompt="doomed task")

        running = (await client.get(f"/v1/suno/fetch/{task_id}")).json()
        assert set(running) == {"code", "data"}
        assert running["code"] == "success"
        task = running["data"]
        assert set(task) == {"task_id", "action", "status", "fail_reason", "progress", "submit_time", "data"}
        assert (task["task_id"], task["action"], task["status"], task["fail_reason"]) == (
            task_id,
            "MUSIC",
            "IN_PROGRESS",
            None,
        )
        assert isinstance(task["submit_time"], int)
        assert len(task["data"]) == 2

        clock.advance(PAST_COMPLETE)
        failed = (await client.get(f"/v1/suno/fetch/{task_id}")).json()["data"]
        assert failed["status"] == "FAILURE"
        assert failed["fail_reason"]
        assert failed["progress"] == "100%"
        assert {i["status"] for i in failed["data"]} == {"queued"}
        assert all(i["audio_url"] == "" for i in failed["data"])

        timeline = sandbox.state.timeline(task_id)
        assert timeline.failed_s is not None
        assert timeline.completed_s is None
        # Other tasks keep the documented list shape.
        assert isinstance(await fetch_items(client, await submit_music(client, prompt="fine")), list)


async def test_task_failure_on_a_lyrics_task_uses_the_same_object() -> None:
    clock = FakeClock()
    async with open_sandbox(clock) as (sandbox, client):
        sandbox.state.inject("task_failure", "submit_lyrics")
        task_id = (await client.post("/v1/suno/submit/lyrics", json={"prompt": "x"})).json()["data"]
        clock.advance(60.0)
        task = (await client.get(f"/v1/suno/fetch/{task_id}")).json()["data"]
        assert (task["action"], task["status"]) == ("LYRICS", "FAILURE")
        assert [i["status"] for i in task["data"]] == ["queued"]


def test_kinds_with_a_colon_parse_in_a_fault_spec() -> None:
    assert parse_fault_spec("status:timeout:0.5@generate, 429:0.1") == (
        FaultRule("status:timeout", 0.5, "generate"),
        FaultRule("429", 0.1),
    )
    for bad in ("status:timeout", ":0.5", "status:nope:0.5", "status:cancelled:0.1@fetch"):
        with pytest.raises(ValueError, match=r"."):
            parse_fault_spec(bad)


async def test_task_faults_from_a_spec_repeat_with_the_seed() -> None:
    async def words(seed: int) -> list[str]:
        clock = FakeClock()
        async with open_sandbox(clock, seed=seed, faults="status:cancelled:0.3,stuck:0.3@submit_music") as (
            _,
            client,
        ):
            ids = [await submit_music(client, prompt=f"song {i}") for i in range(20)]
            clock.advance(PAST_HELD)
            return [(await fetch_items(client, t))[0]["status"] for t in ids]

    first, again = await words(3), await words(3)
    assert first == again
    assert {"cancelled", "in_review", "processing"} <= set(first)
