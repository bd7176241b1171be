"""The sandbox's accounts: each API key sees only its own work, and the counters are kept per key.

The vendor documents nothing about what one account sees of another's tasks; the sandbox's model
(state.py) is that another account's task or clip is indistinguishable from one nobody made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from test_sandbox_server import (
    KEY,
    PAST_COMPLETE,
    FakeClock,
    completed_clip_ids,
    feed,
    generate,
    open_sandbox,
    submit_music,
)

from suno_mcp.sandbox import SandboxHandle, account_of

OTHER_KEY = "someone-elses-key"


@asynccontextmanager
async def two_accounts(
    clock: FakeClock | None = None, **config: Any
) -> AsyncIterator[tuple[SandboxHandle, httpx.AsyncClient, httpx.AsyncClient]]:
    """A sandbox, a client with KEY and one with OTHER_KEY."""
    async with (
        open_sandbox(clock, **config) as (sandbox, mine),
        httpx.AsyncClient(
            base_url=sandbox.url, headers={"Authorization": f"Bearer {OTHER_KEY}"}, timeout=10.0
        ) as theirs,
    ):
        yield sandbox, mine, theirs


def _without_id(response: httpx.Response, some_id: str) -> tuple[int, str]:
    # "Clip not found: <id>" names the id asked for; with it blanked two refusals compare equal.
    return response.status_code, response.text.replace(some_id, "<id>")


async def test_another_keys_task_answers_exactly_as_an_unknown_id() -> None:
    async with two_accounts() as (_, mine, theirs):
        task_id = await submit_music(mine, prompt="a song of my own")
        foreign = await theirs.get(f"/v1/suno/fetch/{task_id}")
        unknown = await theirs.get("/v1/suno/fetch/00000000-0000-4000-8000-000000000000")
        assert foreign.status_code == 404
        assert (foreign.status_code, foreign.json()) == (unknown.status_code, unknown.json())
        assert (await mine.get(f"/v1/suno/fetch/{task_id}")).status_code == 200


async def test_the_feed_leaves_out_another_keys_clips() -> None:
    async with two_accounts() as (_, mine, theirs):
        my_ids = [c["id"] for c in await generate(mine, gpt_description_prompt="mine")]
        their_ids = [c["id"] for c in await generate(theirs, gpt_description_prompt="theirs")]
        seen_by_them = await feed(theirs, *my_ids, *their_ids)
        assert sorted(c["id"] for c in seen_by_them) == sorted(their_ids)
        assert sorted(c["id"] for c in await feed(mine, *my_ids, *their_ids)) == sorted(my_ids)


async def test_extending_covering_or_joining_another_keys_clip_is_refused_as_unknown() -> None:
    clock = FakeClock()
    async with two_accounts(clock) as (sandbox, mine, theirs):
        [clip_id, _] = await completed_clip_ids(mine, clock, gpt_description_prompt="mine")
        unknown_id = "11111111-1111-4111-8111-111111111111"
        attempts = {
            "extend (task API)": ("/v1/suno/submit/music", {"continue_clip_id": "{id}", "continue_at": 2}),
            "extend (clip API)": ("/suno/generate", {"continue_clip_id": "{id}", "continue_at": 2}),
            "cover": (
                "/suno/generate",
                {"task": "cover", "cover_clip_id": "{id}", "mv": "chirp-v3-5-tau", "tags": "jazz"},
            ),
            "concat": ("/suno/generate/concat/v2", {"clip_id": "{id}", "is_infill": False}),
        }
        created = sandbox.state.stats.tasks_created
        for what, (path, template) in attempts.items():

            def body(some_id: str, template: dict[str, Any] = template) -> dict[str, Any]:
                return {k: some_id if v == "{id}" else v for k, v in template.items()}

            foreign = await theirs.post(path, json=body(clip_id))
            unknown = await theirs.post(path, json=body(unknown_id))
            assert foreign.status_code == 404, (what, foreign.text)
            assert _without_id(foreign, clip_id) == _without_id(unknown, unknown_id), what
        assert sandbox.state.stats.tasks_created == created  # nothing was made or charged
        assert "concat" not in sandbox.state.stats.created_by_endpoint
        # The owner may do what the other key may not.
        extension = await mine.post("/suno/generate", json={"continue_clip_id": clip_id, "continue_at": 2})
        assert extension.status_code == 200, extension.text
        response = await mine.post("/suno/generate/concat/v2", json={"clip_id": clip_id, "is_infill": False})
        assert response.status_code == 200, response.text


async def test_with_shared_accounts_every_key_sees_every_task() -> None:
    async with two_accounts(separate_accounts=False) as (_, mine, theirs):
        task_id = await submit_music(mine, prompt="a song for everyone")
        assert (await theirs.get(f"/v1/suno/fetch/{task_id}")).status_code == 200


async def test_stats_count_paid_submits_and_fetches_per_key_and_per_task() -> None:
    clock = FakeClock()
    async with two_accounts(clock) as (sandbox, mine, theirs):
        first = await submit_music(mine, prompt="first")
        second = await submit_music(mine, prompt="second")
        their_clips = [c["id"] for c in await generate(theirs, gpt_description_prompt="theirs")]
        their_batch = sandbox.state.clips[their_clips[0]].batch_id
        sandbox.state.inject("500", "fetch")  # a faulted fetch is still a request the client made
        assert (await mine.get(f"/v1/suno/fetch/{first}")).status_code == 500
        for _ in range(2):
            assert (await mine.get(f"/v1/suno/fetch/{first}")).status_code == 200
        await feed(theirs, *their_clips)  # one request naming both clips of one task
        assert (await theirs.get(f"/v1/suno/fetch/{second}")).status_code == 404
        clock.advance(PAST_COMPLETE)
        response = await theirs.post("/suno/generate/concat/v2", json={"clip_id": their_clips[0]})
        assert response.status_code == 200, response.text
        served = await mine.get("/_sandbox/stats")

    stats = served.json()
    assert stats["accounts"] == {
        account_of(KEY): {"paid_submits": 2, "fetches": 3},
        account_of(OTHER_KEY): {"paid_submits": 2, "fetches": 2},  # a generate and a concat
    }
    assert stats["total"] == {"paid_submits": 4, "fetches": 5}
    # The read of another key's task counts against the reader, never against that task.
    assert stats["fetches_by_task"] == {first: 3, their_batch: 1}
    assert KEY not in served.text
    assert OTHER_KEY not in served.text


async def test_an_account_is_a_hash_of_its_key_not_the_key() -> None:
    assert account_of(KEY) == account_of(KEY)
    assert account_of(KEY) != account_of(OTHER_KEY)
    assert KEY not in account_of(KEY)
