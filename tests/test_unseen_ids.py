"""Ids at the boundary (issue 21): an id a caller types that nobody has seen must look like one.

An id the ledger does not know is sent upstream only when it looks like a vendor id; anything
else is refused, naming the field, before anything is recorded or sent. An id the upstream
gave us is kept and followed whatever it holds.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import mcp_types as types
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp import Client, MCPError

from suno_mcp.domain.ids import ID_MAX, VENDOR_ID_RULE, is_id, looks_like_vendor_id, url_segment
from suno_mcp.domain.inputs import ID_FIX
from suno_mcp.server.app import SunoServer
from tests.support.helpers_upstream import (
    AUDIO_BYTES,
    CDN,
    CLIP_DURATION,
    KEY,
    FakeUpstream,
    make_server,
    make_settings,
)

# Marked here as well as by conftest: parametrized async tests need the mark at collection time.
pytestmark = pytest.mark.anyio

# The issue's own four.
ISSUE_IDS = ["../../etc/passwd", "abc/../../v1/suno/submit/music", "abc?x=1", "abc#frag"]

# Ours: what steers a URL or a path, what hides, what only looks like an id.
OUR_IDS = [
    "..",
    "a..b",
    "abc/..",
    "a/b",
    "/etc/passwd",
    "a\\b",
    "C:\\Windows",
    "%2e%2e",
    "%2F",
    "abc%00",
    "a?",
    "a#",
    "abc&x=1",
    "a=b",
    "a;b",
    "a+b",
    "~root",
    "*",
    "http://evil.test/x",
    "<script>",
    "it's",
    "a b",
    "a\tb",
    "a\nb",
    "abc\r\n",
    " abc",
    "abc ",
    "abc\x00",
    "x" * (ID_MAX + 1),
    "",
    "t\u0430sk-1",  # a Cyrillic a
    "\uff41\uff42\uff43",  # fullwidth abc
    "\u0661\u0662\u0663",  # Arabic-Indic digits 123
    "\ufb01le",  # the fi ligature
    "abc\u200b",  # a zero-width space
    "abc\u00a0",  # a no-break space
    "abc\u202e",  # a right-to-left override
    "\U0001f3b5",  # a musical note
]

BAD_IDS = ISSUE_IDS + OUR_IDS

# (tool, the argument holding the id, the other arguments it needs)
ID_ARGUMENTS: list[tuple[str, str, dict[str, Any]]] = [
    ("get_task_status", "task_id", {}),
    ("extend_music", "clip_id", {"continue_at": 10}),
    ("extend_music", "task_id", {"clip_id": "clip-1", "continue_at": 10}),
    ("cover_music", "clip_id", {"tags": "jazz, brass"}),
    ("get_complete_song", "clip_id", {}),
    ("download_audio", "task_id", {}),
    ("download_audio", "clip_id", {}),
]

ROWS = [(tool, field, {**others, field: bad}) for tool, field, others in ID_ARGUMENTS for bad in BAD_IDS]


def _row_id(row: tuple[str, str, dict[str, Any]]) -> str:
    tool, field, arguments = row
    return f"{tool}({field}={arguments[field]!a})"[:60]


def _text(result: types.CallToolResult) -> str:
    (content,) = result.content
    assert isinstance(content, types.TextContent)
    return content.text


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # module-wide, so the one session below lives across this module's tests


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[SunoServer, FakeUpstream]:
    """One server over one counting fake for every row: a request made by any row fails them all."""
    fake = FakeUpstream()
    return make_server(make_settings(tmp_path_factory.mktemp("unseen-ids")), fake), fake


@pytest.fixture(scope="module")
async def session(shared: tuple[SunoServer, FakeUpstream]) -> AsyncIterator[Client]:
    """One client session for every row, as one conversation would send them all: a session costs
    the client a compile of each tool's output schema, and 330 of them were a fifth of the quick loop."""
    async with Client(shared[0]) as client:
        yield client


def test_the_issue_ids_and_ours_make_more_than_twenty_four_cases() -> None:
    assert len(set(OUR_IDS)) == len(OUR_IDS) >= 20
    assert not any(looks_like_vendor_id(value) for value in BAD_IDS)


@pytest.mark.parametrize(("tool", "field", "arguments"), ROWS, ids=[_row_id(r) for r in ROWS])
async def test_an_unseen_id_that_does_not_look_like_one_is_refused_naming_the_field_before_any_request(
    shared: tuple[SunoServer, FakeUpstream], session: Client, tool: str, field: str, arguments: dict[str, Any]
) -> None:
    _, fake = shared
    result = await session.call_tool(tool, arguments)
    listed = await session.call_tool("list_tasks", {})

    assert result.is_error, result
    text = _text(result)
    assert f"{field}:" in text, text
    if is_id(arguments[field]):  # past the schema, which takes any printable id: the service's refusal
        assert VENDOR_ID_RULE in text, text
    assert ID_FIX in text, text
    assert "Traceback" not in text
    assert fake.total == 0, fake.counts
    assert listed.structured_content is not None
    assert listed.structured_content["count"] == 0  # nothing recorded, let alone as paid


@pytest.mark.parametrize("bad", [b for b in BAD_IDS if b], ids=[ascii(b)[:40] for b in BAD_IDS if b])
async def test_reading_an_unseen_task_resource_with_an_id_that_does_not_look_like_one_names_the_field(
    shared: tuple[SunoServer, FakeUpstream], session: Client, bad: str
) -> None:
    _, fake = shared
    with pytest.raises(MCPError) as raised:
        await session.read_resource(f"suno://tasks/{quote(bad, safe='')}")

    assert "task_id:" in str(raised.value), raised.value
    assert VENDOR_ID_RULE in str(raised.value)
    assert ID_FIX in str(raised.value)
    assert fake.total == 0, fake.counts


async def test_an_unseen_id_that_looks_like_one_is_still_asked_about_upstream(tmp_path: Path) -> None:
    fake = FakeUpstream()
    unseen = "m_2e584f32-1c2d-4a5b-9e8f-0123456789ab:1.2"
    async with Client(make_server(make_settings(tmp_path), fake)) as client:
        result = await client.call_tool("get_task_status", {"task_id": unseen})

    assert result.is_error  # the fake has no such task
    assert "Not found" in _text(result)
    assert [r.url.raw_path.decode() for r in fake.requests] == ["/v1/suno/fetch/" + url_segment(unseen)]


@given(st.text(min_size=1, max_size=ID_MAX + 10))
def test_an_id_that_looks_like_a_vendor_id_is_also_one_the_tools_take(value: str) -> None:
    if looks_like_vendor_id(value):
        assert is_id(value)
        # Nothing in it but ':' is even encoded: nothing in it could steer a URL.
        assert url_segment(value).replace("%3A", ":") == value


@pytest.mark.parametrize(
    "value",
    [
        # Fixed examples, not fresh uuids: under pytest-xdist every worker must collect the same ids.
        "3f2b8c1e-9a4d-4e6f-8b1a-2c5d7e9f0a1b",  # Suno's, and the sandbox's
        "m_0c9e7a52-61d4-4b3f-a8e2-5f1d3c7b9e40",  # an upload
        "local-7d1e4a9c2b6f48e0a3c5d7f9b1e2a4c6",  # our own ledger's
        "task-1",
        "batch:1.2",
        "clip_2",
        "x" * ID_MAX,
    ],
)
def test_the_ids_the_vendor_and_the_ledger_hand_out_look_like_vendor_ids(value: str) -> None:
    assert looks_like_vendor_id(value)


# ------------------------------------------------------------ ids the upstream gave us

ODD_IDS = [*ISSUE_IDS, "..", "../etc/passwd", "tâche:1+2", "a%2Fb", "task?id=2#x", 'a\\b"c']


class OddUpstream:
    """A vendor whose task and clip ids hold what ``odd`` holds; every request counted.

    Task API submits and fetches; on the clip API a concat and a cover (plain ids) and the feed,
    which answers every clip it is asked about as complete.

    Routes by the raw (still encoded) path, so an id that decodes into another route cannot
    pass for it.
    """

    def __init__(self, odd: str) -> None:
        self.odd = odd
        self.requests: list[httpx.Request] = []
        self.bodies: list[dict[str, Any]] = []
        self.task_ids: list[str] = []

    def clip_ids(self, task_id: str) -> list[str]:
        return [f"{task_id}:c{i}" for i in range(2)]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        raw = request.url.raw_path.decode("ascii")
        if request.url.host == "cdn.test":
            return httpx.Response(200, content=AUDIO_BYTES, headers={"content-type": "audio/mpeg"})
        assert request.headers["authorization"] == f"Bearer {KEY}"
        if raw in ("/suno/generate/concat/v2", "/suno/generate"):
            self.bodies.append(json.loads(request.content))
            made = self._clip(f"made-{len(self.bodies)}", "submitted")
            return httpx.Response(200, json=made if "concat" in raw else {"id": "batch-1", "clips": [made]})
        if raw.startswith("/v1/suno/feed?"):
            return httpx.Response(
                200, json=[self._clip(i, "complete") for i in request.url.params["ids"].split(",")]
            )
        if raw == "/v1/suno/submit/music":
            self.bodies.append(json.loads(request.content))
            task_id = self.odd if not self.task_ids else f"{self.odd}/{len(self.task_ids) + 1}"
            self.task_ids.append(task_id)
            return httpx.Response(200, json={"code": "success", "data": task_id, "message": ""})
        for task_id in self.task_ids:
            if raw == "/v1/suno/fetch/" + url_segment(task_id):
                items = [
                    {
                        "id": clip_id,
                        "status": "completed",
                        "title": "Odd",
                        "audio_url": f"{CDN}/audio/{quote(clip_id, safe='')}.mp3",
                        "duration": CLIP_DURATION,
                    }
                    for clip_id in self.clip_ids(task_id)
                ]
                return httpx.Response(200, json={"code": "success", "data": items})
        return httpx.Response(404, json={"code": "error", "data": None, "message": "Task not found"})

    def _clip(self, clip_id: str, status: str) -> dict[str, Any]:
        done = status == "complete"
        return {
            "id": clip_id,
            "status": status,
            "title": "Made",
            "audio_url": f"{CDN}/audio/{clip_id}.mp3" if done else "",
            "metadata": {"duration": CLIP_DURATION if done else None},
        }

    @property
    def paths(self) -> list[str]:
        return [r.url.raw_path.decode("ascii") for r in self.requests if r.url.host != "cdn.test"]


@pytest.mark.parametrize("odd", ODD_IDS, ids=[ascii(o) for o in ODD_IDS])
async def test_a_task_id_the_upstream_gave_us_is_followed_whatever_it_holds(tmp_path: Path, odd: str) -> None:
    upstream = OddUpstream(odd)
    async with Client(make_server(make_settings(tmp_path), upstream)) as client:
        made = await client.call_tool("generate_music", {"description": "rain", "wait_seconds": 0})
        assert not made.is_error, _text(made)
        status = await client.call_tool("get_task_status", {"task_id": odd})
        resource = await client.read_resource(f"suno://tasks/{quote(odd, safe='')}")
        saved = await client.call_tool("download_audio", {"task_id": odd})

    assert not status.is_error, _text(status)
    assert status.structured_content is not None
    assert status.structured_content["task_id"] == odd
    assert status.structured_content["status"] == "complete"
    assert json.loads(getattr(resource.contents[0], "text", ""))["task_id"] == odd
    assert not saved.is_error, _text(saved)
    # One paid submit, then reads of the task as one encoded path segment, never another route.
    assert upstream.paths[0] == "/v1/suno/submit/music"
    assert set(upstream.paths[1:]) == {"/v1/suno/fetch/" + url_segment(odd)}


@pytest.mark.parametrize("odd", ODD_IDS, ids=[ascii(o) for o in ODD_IDS])
async def test_a_clip_id_the_upstream_gave_us_is_extended_joined_covered_and_saved_whatever_it_holds(
    tmp_path: Path, odd: str
) -> None:
    upstream = OddUpstream(odd)
    clip_id = upstream.clip_ids(odd)[0]
    async with Client(make_server(make_settings(tmp_path), upstream)) as client:
        made = await client.call_tool("generate_music", {"description": "rain", "wait_seconds": 1})
        assert not made.is_error, _text(made)
        extended = await client.call_tool(
            "extend_music", {"clip_id": clip_id, "continue_at": 10, "task_id": odd, "wait_seconds": 0}
        )
        joined = await client.call_tool("get_complete_song", {"clip_id": clip_id, "wait_seconds": 0})
        covered = await client.call_tool(
            "cover_music", {"clip_id": clip_id, "tags": "jazz", "lyrics": "la la", "wait_seconds": 0}
        )
        saved = await client.call_tool("download_audio", {"clip_id": clip_id})

    for result in (extended, joined, covered, saved):
        assert not result.is_error, _text(result)
    extension, concat, cover = upstream.bodies[1:4]
    assert (extension["continue_clip_id"], extension["task_id"]) == (clip_id, odd)
    assert concat["clip_id"] == clip_id
    assert cover["cover_clip_id"] == clip_id
