"""Spending under the user's control: the budget, confirmation through elicitation, usage.

Driven through the in-memory MCP client against the fake upstream, whose request counts
are what was really sent (and would have been paid for).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from suno_mcp.domain.errors import BudgetReachedError, ConfigurationError
from suno_mcp.domain.models import MusicRequest
from suno_mcp.server.confirm import CONFIRM_KEY
from suno_mcp.service.wiring import open_service
from suno_mcp.settings import load_settings
from suno_mcp.store.sqlite import SqliteLedger
from tests.support.helpers_upstream import FAST_RETRY, FakeUpstream, make_server, make_settings

pytestmark = pytest.mark.anyio

MUSIC = "/v1/suno/submit/music"
LYRICS = "/v1/suno/submit/lyrics"
CONCAT = "/suno/generate/concat/v2"
# "auto" negotiates 2026-07-28 (the question comes back as an InputRequiredResult and the client
# calls again); "legacy" an older revision (elicitation/create in the middle of the call).
MODES = ["auto", "legacy"]


class Asker:
    """An elicitation callback: the person, answering every question the same way."""

    def __init__(self, action: str = "accept", send: bool = True) -> None:
        self.action = action
        self.send = send
        self.questions: list[str] = []

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestFormParams)
        self.questions.append(params.message)
        content = {"send": self.send} if self.action == "accept" else None
        return types.ElicitResult(action=self.action, content=content)  # type: ignore[arg-type]


def client(
    tmp_path: Path, fake: FakeUpstream, asker: Asker | None = None, mode: str = "auto", **settings: Any
) -> Client:
    server = make_server(make_settings(tmp_path, **settings), fake)
    return Client(server, elicitation_callback=asker, mode=mode)  # type: ignore[arg-type]


def text_of(result: types.CallToolResult) -> str:
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    return first.text


async def generate(c: Client, description: str) -> types.CallToolResult:
    return await c.call_tool("generate_music", {"description": description, "wait_seconds": 0})


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SUNO_MCP_BUDGET": "lots"}, "SUNO_MCP_BUDGET"),
        ({"SUNO_MCP_BUDGET": "2.5/day"}, "SUNO_MCP_BUDGET"),
        ({"SUNO_MCP_BUDGET": "5/fortnight"}, "SUNO_MCP_BUDGET"),
        ({"SUNO_MCP_BUDGET": "cost:5/day"}, "SUNO_MCP_PRICES"),
        ({"SUNO_MCP_PRICES": "music=cheap"}, "SUNO_MCP_PRICES"),
        ({"SUNO_MCP_PRICES": "video=1"}, "SUNO_MCP_PRICES"),
        ({"SUNO_MCP_CONFIRM": "sometimes"}, "SUNO_MCP_CONFIRM"),
    ],
)
def test_a_bad_spending_setting_names_the_variable_and_an_example(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        load_settings(environ=env)
    assert named in err.value.message
    if named != "SUNO_MCP_CONFIRM":
        assert "e.g." in err.value.message


def test_budgets_are_counts_unless_written_as_cost() -> None:
    settings = load_settings(
        environ={
            "SUNO_MCP_BUDGET": "20/Day",
            "SUNO_MCP_PRICES": "music=0.10, lyrics=0.01",
            "SUNO_MCP_CONFIRM": "Always",
        }
    )
    assert settings.budget is not None
    assert (settings.budget.limit, settings.budget.window_s, settings.budget.cost) == (20, 86400, False)
    assert settings.prices == {"music": 0.10, "lyrics": 0.01}
    assert settings.confirm == "always"
    assert load_settings(environ={}).confirm == "over-budget"
    month = load_settings(environ={"SUNO_MCP_BUDGET": "100/30d"}).budget
    assert month is not None
    assert month.window_s == 30 * 86400
    cost = load_settings(environ={"SUNO_MCP_BUDGET": "cost:5.00/hour", "SUNO_MCP_PRICES": "music=1"}).budget
    assert cost is not None
    assert cost.cost
    assert cost.limit == 5.0
    assert cost.window_s == 3600


# ---------------------------------------------------------------- confirmation


@pytest.mark.parametrize("mode", MODES)
async def test_a_request_over_budget_is_sent_once_when_the_user_accepts(tmp_path: Path, mode: str) -> None:
    fake, asker = FakeUpstream(), Asker("accept")
    async with client(tmp_path, fake, asker, mode, budget="1/day") as c:
        first = await generate(c, "rain")
        assert asker.questions == []  # under the budget: not asked
        second = await generate(c, "snow")
    assert not first.is_error, text_of(first)
    assert not second.is_error, text_of(second)
    assert fake.counts[MUSIC] == 2
    assert len(asker.questions) == 1
    question = asker.questions[0]
    assert "new music" in question
    assert "goes past the budget" in question
    assert "Used so far: 1 of the budget of 1 requests per day" in question
    assert "snow" in question


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("action", "send", "word"),
    [("decline", True, "declined"), ("cancel", True, "cancelled"), ("accept", False, "declined")],
)
async def test_declining_or_cancelling_sends_nothing_and_tells_the_model_not_to_retry(
    tmp_path: Path, mode: str, action: str, send: bool, word: str
) -> None:
    fake, asker = FakeUpstream(), Asker(action, send)
    async with client(tmp_path, fake, asker, mode, budget="1/day") as c:
        await generate(c, "rain")
        refused = await generate(c, "snow")
        listed = await c.call_tool("list_tasks", {})
    assert refused.is_error
    assert f"The user {word} this paid request" in text_of(refused)
    assert "Do not retry" in text_of(refused)
    assert fake.counts[MUSIC] == 1
    assert listed.structured_content is not None
    assert listed.structured_content["count"] == 1


async def test_a_client_without_elicitation_gets_the_budget_and_how_to_raise_it(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with client(tmp_path, fake, None, budget="1/day") as c:
        await generate(c, "rain")
        refused = await generate(c, "snow")
    assert refused.is_error
    text = text_of(refused)
    assert "budget is reached" in text
    assert "1 requests used of 1 requests per day" in text
    assert "raise SUNO_MCP_BUDGET" in text
    assert "cannot ask" in text
    assert fake.counts[MUSIC] == 1


async def test_never_refuses_over_budget_without_asking(tmp_path: Path) -> None:
    fake, asker = FakeUpstream(), Asker("accept")
    async with client(tmp_path, fake, asker, budget="1/day", confirm="never") as c:
        await generate(c, "rain")
        refused = await generate(c, "snow")
    assert refused.is_error
    assert "budget is reached" in text_of(refused)
    assert asker.questions == []
    assert fake.counts[MUSIC] == 1


@pytest.mark.parametrize("mode", MODES)
async def test_always_asks_before_every_paid_call_and_never_for_reads(tmp_path: Path, mode: str) -> None:
    fake, asker = FakeUpstream(), Asker("accept")
    async with client(tmp_path, fake, asker, mode, confirm="always") as c:
        made = await c.call_tool("generate_music", {"description": "rain", "wait_seconds": 5})
        assert len(asker.questions) == 1, text_of(made)
        assert made.structured_content is not None
        task_id = made.structured_content["task_id"]
        clip_id = made.structured_content["clips"][0]["id"]
        await c.call_tool("get_task_status", {"task_id": task_id, "wait_seconds": 5})
        await c.call_tool("get_task_status", {"task_id": task_id, "wait_seconds": 5})
        await c.call_tool("list_tasks", {})
        await c.call_tool("get_usage", {})
        saved = await c.call_tool("download_audio", {"task_id": task_id})
        assert not saved.is_error, text_of(saved)
        assert len(asker.questions) == 1
        await c.call_tool("generate_lyrics", {"description": "a song about rain", "wait_seconds": 0})
        await c.call_tool("get_complete_song", {"clip_id": clip_id, "wait_seconds": 0})
    assert len(asker.questions) == 3
    assert "lyrics" in asker.questions[1]
    assert "joining a song" in asker.questions[2]
    assert "goes past" not in "".join(asker.questions)
    assert "Paid requests in the last day: 1 (no budget set)" in asker.questions[1]
    assert fake.submits == 3


async def test_always_with_a_client_that_cannot_ask_sends_nothing(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with client(tmp_path, fake, None, confirm="always") as c:
        refused = await generate(c, "rain")
    assert refused.is_error
    assert "SUNO_MCP_CONFIRM=over-budget" in text_of(refused)
    assert fake.submits == 0


@pytest.mark.parametrize("mode", MODES)
async def test_a_reused_duplicate_never_asks(tmp_path: Path, mode: str) -> None:
    fake, asker = FakeUpstream(), Asker("accept")
    async with client(tmp_path, fake, asker, mode, confirm="always", budget="1/day") as c:
        first = await generate(c, "rain")
        again = await generate(c, "  Rain ")
    assert len(asker.questions) == 1  # the first (under budget, but "always")
    assert again.structured_content is not None
    assert again.structured_content["deduplicated"] is True
    assert first.structured_content is not None
    assert again.structured_content["task_id"] == first.structured_content["task_id"]
    assert fake.counts[MUSIC] == 1


# ---------------------------------------------------------------- the budget under concurrency


async def test_twenty_concurrent_paid_calls_at_a_budget_of_five_send_exactly_five(tmp_path: Path) -> None:
    fake = FakeUpstream()
    results: list[types.CallToolResult] = []
    async with client(tmp_path, fake, None, budget="5/day") as c:

        async def one(n: int) -> None:
            results.append(await generate(c, f"song number {n}"))

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(one, n)
        usage = await c.call_tool("get_usage", {})
    assert fake.counts[MUSIC] == 5
    assert sum(not r.is_error for r in results) == 5
    assert all("budget is reached" in text_of(r) for r in results if r.is_error)
    assert usage.structured_content is not None
    assert usage.structured_content["budget_used"] == 5


def test_two_processes_on_one_data_directory_share_the_budget(tmp_path: Path) -> None:
    """Two services, each with its own SQLite connection, in two threads with their own event loops."""
    settings = make_settings(tmp_path, budget="5/day")
    fake = FakeUpstream()  # one vendor for both processes, as in life
    start = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def vendor(request: httpx.Request) -> httpx.Response:
        with lock:
            return fake(request)

    async def process(name: str) -> None:
        transport = httpx.MockTransport(vendor)
        async with open_service(settings, transport=transport, retry=FAST_RETRY) as service:
            await anyio.to_thread.run_sync(start.wait, 30)

            async def one(n: int) -> None:
                request = MusicRequest(gpt_description_prompt=f"{name} song {n}", prompt="", mv="chirp-v3-5")
                try:
                    await service.submit_music(request)
                    result = "sent"
                except BudgetReachedError:
                    result = "refused"
                with lock:
                    outcomes.append(result)

            async with anyio.create_task_group() as tg:
                for n in range(10):
                    tg.start_soon(one, n)

    failures: list[BaseException] = []

    def run(name: str) -> None:
        try:
            anyio.run(process, name)
        except BaseException as err:  # reported below, with the other thread's result
            failures.append(err)
            start.abort()

    threads = [threading.Thread(target=run, args=(name,)) for name in ("p1", "p2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
    assert sorted(outcomes) == ["refused"] * 15 + ["sent"] * 5
    assert fake.counts[MUSIC] == 5


def test_two_processes_opening_one_new_ledger_at_the_same_moment_both_open(tmp_path: Path) -> None:
    failures: list[BaseException] = []

    async def open_and_close(path: Path) -> None:
        await (await SqliteLedger.open(path)).close()

    for n in range(20):
        start = threading.Barrier(2)
        path = tmp_path / f"{n}" / "tasks.sqlite3"

        def open_one(path: Path = path, start: threading.Barrier = start) -> None:
            start.wait(30)
            try:
                anyio.run(open_and_close, path)
            except BaseException as err:  # collected: the assertion below names it
                failures.append(err)

        threads = [threading.Thread(target=open_one) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert failures == []


async def test_a_cost_budget_counts_each_kind_at_its_price(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with client(tmp_path, fake, None, budget="cost:0.25/day", prices="music=0.10,lyrics=0.01") as c:
        results = [await generate(c, f"song {n}") for n in range(3)]
        lyrics = await c.call_tool("generate_lyrics", {"description": "rain", "wait_seconds": 0})
        usage = await c.call_tool("get_usage", {})
    assert [r.is_error for r in results] == [False, False, True]
    assert "0.20 used of 0.25 (estimated cost) per day" in text_of(results[2])
    assert not lyrics.is_error
    assert usage.structured_content is not None
    assert usage.structured_content["budget_used"] == pytest.approx(0.21)
    day = usage.structured_content["periods"][1]
    assert day["window"] == "day"
    assert day["cost"] == pytest.approx(0.21)


# ---------------------------------------------------------------- usage


async def test_usage_matches_what_the_upstream_was_sent_after_faults_and_unknown_submits(
    tmp_path: Path,
) -> None:
    fake = FakeUpstream()
    async with client(tmp_path, fake, None, prices="music=0.10,lyrics=0.01,concat=0.05") as c:
        made = await c.call_tool("generate_music", {"description": "rain", "wait_seconds": 5})
        assert made.structured_content is not None
        clip_id = made.structured_content["clips"][0]["id"]
        await c.call_tool("generate_music", {"lyrics": "[Verse]\nla la", "tags": "pop", "wait_seconds": 5})
        # Refused before anything was made: sent, but not paid.
        fake.fail(
            MUSIC, httpx.Response(400, json={"code": "error", "data": None, "message": "bad tags"}), times=1
        )
        refused = await generate(c, "refused one")
        # No usable answer: it may have been taken and charged.
        fake.fail(MUSIC, httpx.Response(502, text="bad gateway"), times=1)
        unknown = await generate(c, "unknown one")
        await c.call_tool("generate_lyrics", {"description": "rain", "wait_seconds": 5})
        await c.call_tool("get_complete_song", {"clip_id": clip_id, "wait_seconds": 5})
        usage = await c.call_tool("get_usage", {})
        resource = await c.read_resource("suno://usage")
    assert refused.is_error
    assert "Nothing was charged" in text_of(refused)
    assert unknown.is_error
    assert "may have been accepted and charged" in text_of(unknown)
    assert usage.structured_content is not None
    doc = usage.structured_content
    by_kind: dict[str, dict[str, int]] = {}
    for line in doc["periods"][0]["lines"]:
        entry = by_kind.setdefault(line["kind"], {"requests": 0, "maybe": 0, "clips": 0})
        entry["requests"] += line["requests"]
        entry["maybe"] += line.get("maybe_charged", 0)
        entry["clips"] += line["clips"]
    assert by_kind["music"]["requests"] == fake.counts[MUSIC] - 1 == 3  # all but the refused one
    assert by_kind["music"]["maybe"] == 1
    assert by_kind["music"]["clips"] == 2 * fake.clips_per_task
    assert by_kind["lyrics"]["requests"] == fake.counts[LYRICS] == 1
    assert by_kind["concat"] == {"requests": fake.counts[CONCAT], "maybe": 0, "clips": 1}
    for period in doc["periods"]:
        assert (period["requests"], period["maybe_charged"]) == (5, 1)
        assert period["cost"] == pytest.approx(3 * 0.10 + 0.01 + 0.05)
    assert "budget" not in doc
    assert "3 may have been" not in text_of(usage)
    assert "1 may have been charged" in text_of(usage)
    content = resource.contents[0]
    assert isinstance(content, types.TextResourceContents)
    assert json.loads(content.text)["periods"][2]["requests"] == 5


async def test_usage_without_prices_shows_counts_only_and_says_so(tmp_path: Path) -> None:
    async with client(tmp_path, FakeUpstream(), None) as c:
        await generate(c, "rain")
        usage = await c.call_tool("get_usage", {})
    assert usage.structured_content is not None
    assert all("cost" not in p for p in usage.structured_content["periods"])
    assert "Counts only: set SUNO_MCP_PRICES" in text_of(usage)
    assert "Last day: 1 paid requests" in text_of(usage)


async def test_an_answer_counts_only_for_the_question_that_was_asked(tmp_path: Path) -> None:
    """Driving the 2026-07-28 rounds by hand: an accept with a made-up state is not a yes."""
    fake = FakeUpstream()
    args = {"description": "rain", "wait_seconds": 0}
    accept = types.ElicitResult(action="accept", content={"send": True})
    async with client(tmp_path, fake, Asker("accept"), confirm="always") as c:
        asked = await c.session.call_tool("generate_music", args, allow_input_required=True)
        assert isinstance(asked, types.InputRequiredResult)
        assert asked.input_requests is not None
        assert set(asked.input_requests) == {CONFIRM_KEY}
        with pytest.raises(MCPError):
            await c.session.call_tool(
                "generate_music",
                args,
                input_responses={CONFIRM_KEY: accept},
                request_state="made-up",
                allow_input_required=True,
            )
        assert fake.submits == 0
        answered = await c.session.call_tool(
            "generate_music",
            args,
            input_responses={CONFIRM_KEY: accept},
            request_state=asked.request_state,
            allow_input_required=True,
        )
    assert isinstance(answered, types.CallToolResult)
    assert not answered.is_error, text_of(answered)
    assert fake.submits == 1
