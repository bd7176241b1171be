"""Bad arguments are refused with a tool error naming the field, before any request is made."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client

from suno_mcp.domain.catalog import MODELS
from suno_mcp.server.app import SunoServer
from tests.support.helpers_upstream import FakeUpstream, connect, make_server, make_settings

# Marked here as well as by conftest: parametrized async tests need the mark at collection time.
pytestmark = pytest.mark.anyio

LONG_ID = "a" * 129
MODEL_NAMES = tuple(m.name for m in MODELS)
# Enough for the unknown-model rows: the refusal lists the models that would work.
UNKNOWN_MODEL = ("model", *MODEL_NAMES)

GEN = "generate_music"
EXT = "extend_music"
STATUS = "get_task_status"
LIST = "list_tasks"
LYRICS = "generate_lyrics"
JOIN = "get_complete_song"
DOWNLOAD = "download_audio"
COVER = "cover_music"
UPLOAD = "upload_audio"
PRIVATE = ("url", "private-network")
NOT_AUDIO = ("url", "does not look like audio")


def ext(**arguments: Any) -> dict[str, Any]:
    """extend_music arguments that are fine except for what is given."""
    return {"clip_id": "clip-1", "continue_at": 10, **arguments}


def cov(**arguments: Any) -> dict[str, Any]:
    """cover_music arguments that are fine except for what is given (clip-1 is not in the ledger)."""
    return {"clip_id": "clip-1", "tags": "jazz, brass", **arguments}


def up(url: Any) -> dict[str, Any]:
    return {"url": url}


# (tool, arguments, what the error text must name: the field first, then anything else it must say)
ROWS: list[tuple[str, dict[str, Any], str | tuple[str, ...]]] = [
    # generate_music: modes
    (GEN, {}, "description"),
    (GEN, {"description": "rain", "lyrics": "la la la"}, ("description", "lyrics", "not both")),
    (GEN, {"description": "rain", "tags": "lofi"}, ("description", "tags")),
    (GEN, {"tags": "lofi, piano"}, ("lyrics", "instrumental=true")),
    (GEN, {"title": "Rain"}, ("lyrics", "instrumental=true")),
    # generate_music: empty, blank, too long
    (GEN, {"description": ""}, "description"),
    (GEN, {"description": "   \t "}, "description"),
    (GEN, {"lyrics": "  \n  "}, "lyrics"),
    (GEN, {"lyrics": "la", "tags": ""}, "tags"),
    (GEN, {"lyrics": "la", "title": " "}, "title"),
    (GEN, {"description": "d" * 501}, ("description", "500")),
    (GEN, {"lyrics": "l" * 5001}, ("lyrics", "5000")),
    (GEN, {"lyrics": "la", "tags": "t" * 1001}, ("tags", "1000")),
    (GEN, {"lyrics": "la", "title": "t" * 81}, ("title", "80")),
    # generate_music: the model's own limits
    (GEN, {"lyrics": "l" * 3001, "model": "chirp-v3-5"}, ("lyrics", "3000", "chirp-v3-5")),
    (GEN, {"lyrics": "l" * 3001}, ("lyrics", "3000")),  # the default model is v3.5
    (GEN, {"lyrics": "la", "tags": "t" * 201, "model": "chirp-v4"}, ("tags", "200")),
    # generate_music: wrong types
    (GEN, {"description": 5}, "description"),
    (GEN, {"lyrics": ["la", "la"]}, "lyrics"),
    (GEN, {"lyrics": "la", "title": {"text": "Rain"}}, "title"),
    (GEN, {"description": "rain", "instrumental": "maybe"}, ("instrumental", "true or false")),
    (GEN, {"description": "rain", "force_new": "sometimes"}, ("force_new", "true or false")),
    (GEN, {"description": "rain", "wait_seconds": "soon"}, ("wait_seconds", "number")),
    (GEN, {"description": "rain", "model": 4.5}, "model"),
    # generate_music: models and waits
    (GEN, {"description": "rain", "model": "chirp-v9"}, UNKNOWN_MODEL),
    (GEN, {"lyrics": "la", "model": "suno"}, UNKNOWN_MODEL),
    (GEN, {"description": "rain", "model": ""}, "model"),
    (GEN, {"description": "rain", "model": "m" * 65}, "model"),
    (GEN, {"description": "rain", "wait_seconds": -1}, ("wait_seconds", "at least 0")),
    (GEN, {"description": "rain", "wait_seconds": 51}, ("wait_seconds", "at most 50")),
    # generate_music: control characters in free text
    (GEN, {"lyrics": "la\x00la"}, ("lyrics", "control characters")),
    (GEN, {"lyrics": "[Verse]\nla \x1b[31mred"}, ("lyrics", "control characters")),
    (GEN, {"description": "rain\x07"}, ("description", "control characters")),
    (GEN, {"lyrics": "la", "title": "Rain\x7f"}, ("title", "control characters")),
    (GEN, {"lyrics": "la", "tags": "lofi,\x0bpiano"}, ("tags", "control characters")),
    # extend_music
    (EXT, {"continue_at": 10}, ("clip_id", "required")),
    (EXT, {"clip_id": "clip-1"}, ("continue_at", "required")),
    (EXT, ext(continue_at=-1), ("continue_at", "at least 0")),
    (EXT, ext(continue_at=-0.001), "continue_at"),
    (EXT, ext(continue_at=1e9), ("continue_at", "at most 3600")),
    (EXT, ext(continue_at="ten"), ("continue_at", "number")),
    (EXT, ext(clip_id=12), "clip_id"),
    (EXT, ext(clip_id="a b"), ("clip_id", "printable characters without spaces")),
    (EXT, ext(clip_id="a\u200bb"), ("clip_id", "printable characters without spaces")),
    (EXT, ext(clip_id=""), "clip_id"),
    (EXT, ext(task_id="task 1"), "task_id"),
    (EXT, ext(model="chirp-v2"), UNKNOWN_MODEL),
    (EXT, ext(lyrics="l" * 3001), ("lyrics", "3000")),
    (EXT, ext(lyrics="la\x01"), ("lyrics", "control characters")),
    (EXT, ext(tags="t" * 201), ("tags", "200")),
    (EXT, ext(wait_seconds=1000), "wait_seconds"),
    (EXT, ext(instrumental="no vocals"), "instrumental"),
    # get_task_status: ids that could escape a URL path or query
    (STATUS, {}, ("task_id", "required")),
    (STATUS, {"task_id": ""}, "task_id"),
    (STATUS, {"task_id": "task 1"}, "task_id"),
    (STATUS, {"task_id": "task\t1"}, "task_id"),
    (STATUS, {"task_id": "task\u00a01"}, "task_id"),  # a no-break space
    (STATUS, {"task_id": "task\u200b1"}, "task_id"),  # invisible: a zero-width space
    (STATUS, {"task_id": "task-1\n"}, "task_id"),
    (STATUS, {"task_id": "task\x00-1"}, "task_id"),
    (STATUS, {"task_id": LONG_ID}, "task_id"),
    (STATUS, {"task_id": 7}, "task_id"),
    (STATUS, {"task_id": "task-1", "wait_seconds": -0.5}, "wait_seconds"),
    (STATUS, {"task_id": "task-1", "wait_seconds": 50.5}, "wait_seconds"),
    # list_tasks
    (LIST, {"limit": 0}, ("limit", "at least 1")),
    (LIST, {"limit": 1000}, ("limit", "at most 200")),
    (LIST, {"limit": "ten"}, "limit"),
    (LIST, {"limit": 2.5}, "limit"),
    (LIST, {"status": "done"}, ("status", "complete")),
    (LIST, {"status": 3}, "status"),
    # generate_lyrics
    (LYRICS, {}, ("description", "required")),
    (LYRICS, {"description": ""}, "description"),
    (LYRICS, {"description": "\t \n"}, "description"),
    (LYRICS, {"description": "d" * 3001}, ("description", "3000")),
    (LYRICS, {"description": 42}, "description"),
    (LYRICS, {"description": "rain\x00"}, ("description", "control characters")),
    (LYRICS, {"description": "rain", "wait_seconds": 99}, "wait_seconds"),
    # get_complete_song
    (JOIN, {}, ("clip_id", "required")),
    (JOIN, {"clip_id": "clip 1"}, "clip_id"),
    (JOIN, {"clip_id": "clip\u202e1"}, "clip_id"),  # a right-to-left override
    (JOIN, {"clip_id": LONG_ID}, "clip_id"),
    (JOIN, {"clip_id": "clip-1", "force_new": "yes please"}, "force_new"),
    # download_audio
    (DOWNLOAD, {}, ("task_id", "clip_id", "exactly one")),
    (DOWNLOAD, {"task_id": "task-1", "clip_id": "clip-1"}, ("task_id", "clip_id", "exactly one")),
    (DOWNLOAD, {"clip_id": "clip\x00"}, "clip_id"),
    (DOWNLOAD, {"task_id": "task\x85"}, "task_id"),  # a C1 control (next line)
    # cover_music
    (COVER, {"tags": "jazz"}, ("clip_id", "required")),
    (COVER, {"clip_id": "clip-1"}, ("tags", "required")),
    (COVER, cov(tags=" "), "tags"),
    (COVER, cov(tags="t" * 201), ("tags", "200")),
    (COVER, cov(tags="t" * 1001), ("tags", "1000")),
    (COVER, cov(negative_tags="n" * 201), ("negative_tags", "200")),
    (COVER, cov(negative_tags="n" * 1001), ("negative_tags", "1000")),
    (COVER, cov(negative_tags="rock\x00"), ("negative_tags", "control characters")),
    (COVER, cov(lyrics="l" * 3001), ("lyrics", "3000")),
    (COVER, cov(model="chirp-v4"), ("model", "no documented cover model", "chirp-v3-5")),
    (COVER, cov(model="chirp-v9"), UNKNOWN_MODEL),
    (COVER, cov(clip_id="clip 1"), "clip_id"),
    (COVER, cov(), ("clip_id", "no clip clip-1 is known", "get_task_status")),  # not in the ledger
    (COVER, cov(wait_seconds=51), "wait_seconds"),
    # upload_audio: what the upstream could not fetch, or should not be asked to
    (UPLOAD, {}, ("url", "required")),
    (UPLOAD, up(""), "url"),
    (UPLOAD, up(5), "url"),
    (UPLOAD, up("ftp://example.com/song.mp3"), ("url", "http://", "ftp")),
    (UPLOAD, up("file:///home/me/song.mp3"), ("url", "http://")),
    (UPLOAD, up("example.com/song.mp3"), ("url", "no scheme")),
    (UPLOAD, up("//example.com/song.mp3"), ("url", "no scheme")),
    (UPLOAD, up("https://user:secret@example.com/song.mp3"), ("url", "user name or password")),
    (UPLOAD, up("https://token@example.com/song.mp3"), ("url", "user name or password")),
    (UPLOAD, up("https:///song.mp3"), "url"),
    (UPLOAD, up("https://example.com:99999/song.mp3"), "url"),
    (UPLOAD, up("https://example.com/my song.mp3"), ("url", "spaces")),
    (UPLOAD, up("https://example.com/so\tng.mp3"), ("url", "control characters")),
    (UPLOAD, up("https://example.com/" + "a" * 2048 + ".mp3"), ("url", "2048")),
    (UPLOAD, up("https://example.com/watch?v=song.mp3"), NOT_AUDIO),
    (UPLOAD, up("https://example.com/song.html"), NOT_AUDIO),
    (UPLOAD, up("https://example.com/"), NOT_AUDIO),
    (UPLOAD, up("https://example.com/song.mp3.exe"), NOT_AUDIO),
    (UPLOAD, up("http://127.0.0.1/song.mp3"), PRIVATE),
    (UPLOAD, up("http://127.1.2.3:8000/song.wav"), PRIVATE),
    (UPLOAD, up("http://localhost:8080/song.wav"), PRIVATE),
    (UPLOAD, up("http://LOCALHOST./song.wav"), PRIVATE),
    (UPLOAD, up("http://media.localhost/song.wav"), PRIVATE),
    (UPLOAD, up("http://[::1]/song.ogg"), PRIVATE),
    (UPLOAD, up("http://[::ffff:127.0.0.1]/song.ogg"), PRIVATE),
    (UPLOAD, up("http://0.0.0.0/song.flac"), PRIVATE),
    (UPLOAD, up("http://10.1.2.3/song.mp3"), PRIVATE),
    (UPLOAD, up("http://172.16.0.9/song.mp3"), PRIVATE),
    (UPLOAD, up("http://192.168.1.20/song.m4a"), PRIVATE),
    (UPLOAD, up("http://100.64.0.1/song.m4a"), PRIVATE),  # carrier-grade NAT
    (UPLOAD, up("http://169.254.169.254/song.aac"), PRIVATE),  # a cloud metadata address
    (UPLOAD, up("http://[fd00::5]/song.aac"), PRIVATE),
    (UPLOAD, up("http://[fe80::1]/song.aac"), PRIVATE),
    (UPLOAD, up("http://2130706433/song.mp3"), PRIVATE),  # 127.0.0.1 as one number
    (UPLOAD, up("http://nas.local/song.mp3"), PRIVATE),
    (UPLOAD, up("http://0177.0.0.1/song.mp3"), PRIVATE),  # 127.0.0.1 in octal
    (UPLOAD, up("http://0x7f.1/song.mp3"), PRIVATE),
    (UPLOAD, {"url": "https://example.com/a.mp3", "force_new": "again"}, "force_new"),
]


def _row_id(row: tuple[str, dict[str, Any], str | tuple[str, ...]]) -> str:
    tool, arguments, _ = row
    shown = ",".join(f"{k}={v!r}"[:24] for k, v in arguments.items()) or "no-arguments"
    return f"{tool}({shown})"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[SunoServer, FakeUpstream]:
    """One server (building one takes far longer than a session) over one fake for every row.

    The rows share one session too (:func:`session`). The fake is shared, so a request made by any
    row fails that row and every row after it: the count must stay at zero for the whole module.
    """
    fake = FakeUpstream()
    return make_server(make_settings(tmp_path_factory.mktemp("bad-input")), fake), fake


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # module-wide, so the one session below lives across this module's tests


@pytest.fixture(scope="module")
async def session(shared: tuple[SunoServer, FakeUpstream]) -> AsyncIterator[Client]:
    """One client session for every row, as one conversation would send them: each session costs the
    client a compile of the output schemas of the tools it calls."""
    async with Client(shared[0]) as client:
        yield client


@pytest.mark.parametrize(("tool", "arguments", "expected"), ROWS, ids=[_row_id(r) for r in ROWS])
async def test_bad_arguments_are_refused_naming_the_field_before_any_request(
    shared: tuple[SunoServer, FakeUpstream],
    session: Client,
    tool: str,
    arguments: dict[str, Any],
    expected: str | tuple[str, ...],
) -> None:
    _, fake = shared
    result = await session.call_tool(tool, arguments)
    listed = await session.call_tool("list_tasks", {})

    assert result.is_error, result
    assert result.structured_content is None
    (content,) = result.content
    assert isinstance(content, types.TextContent)
    text = content.text
    for phrase in (expected,) if isinstance(expected, str) else expected:
        assert phrase in text, text
    field = expected if isinstance(expected, str) else expected[0]
    assert f"{field}:" in text, text  # named as the field at fault, not only mentioned
    assert "Traceback" not in text
    assert 'File "' not in text
    assert len(text) < 2000
    assert fake.total == 0, fake.counts
    assert listed.structured_content["count"] == 0  # nothing was recorded as about to be paid for


async def test_lyrics_over_3000_characters_are_accepted_by_a_model_that_takes_5000(tmp_path: Path) -> None:
    fake = FakeUpstream()
    lyrics = "l" * 3001
    async with connect(tmp_path, fake) as client:
        result = await client.call_tool(
            "generate_music", {"lyrics": lyrics, "model": "chirp-v4-5", "wait_seconds": 0}
        )

    assert not result.is_error, result
    assert fake.bodies == [{"prompt": lyrics, "make_instrumental": False, "mv": "chirp-v4-5"}]
