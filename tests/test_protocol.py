"""The protocol's optional parts, through the SDK client: completions, resource subscriptions
(``resources/subscribe`` before 2026-07-28, ``subscriptions/listen`` from it) and log messages
(``logging/setLevel``), each declared in the capabilities and each acting for its own caller."""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from mcp import Client, MCPError
from mcp.shared.exceptions import MCPDeprecationWarning

from suno_mcp.engine.poller import Timing
from suno_mcp.server.app import SunoServer, build_server
from suno_mcp.server.http import build_http_app
from suno_mcp.service.wiring import open_service
from tests.support.helpers_upstream import FAST_RETRY, KEY, FakeUpstream, make_settings
from tests.support.http_app import bearer_client, serving

pytestmark = pytest.mark.anyio

NOTICE_LIMIT_S = 10.0  # a notification comes within one poll; polls here are milliseconds apart
CALL_WAIT = 5  # seconds a waited tool call may wait; the fake reaches every milestone in well under one
LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")


def _server(tmp_path: Path, fake: FakeUpstream, **overrides: Any) -> SunoServer:
    """The real server over ``fake``, polling 1000x faster than for real, and never calling a task
    stalled however long a test holds it at one stage."""
    timing = dataclasses.replace(Timing().scaled(1000), stall_s=3600.0)
    return build_server(
        make_settings(tmp_path, **overrides),
        lambda s: open_service(s, transport=httpx.MockTransport(fake), timing=timing, retry=FAST_RETRY),
    )


class Inbox:
    """The notifications a client received, in order, and a way to wait for one."""

    def __init__(self) -> None:
        self.received: list[types.ServerNotification] = []
        self._arrived = anyio.Event()

    async def __call__(self, message: Any) -> None:
        if isinstance(message, Exception):
            raise message
        self.received.append(message)
        self._arrived.set()
        self._arrived = anyio.Event()

    async def wait_for(self, wanted: Any, *, start: int = 0) -> int:
        """The index of the first notification from ``start`` on for which ``wanted`` holds."""
        with anyio.fail_after(NOTICE_LIMIT_S):
            while True:
                for index in range(start, len(self.received)):
                    if wanted(self.received[index]):
                        return index
                await self._arrived.wait()

    def updated(self, start: int = 0) -> list[str]:
        return [
            n.params.uri for n in self.received[start:] if isinstance(n, types.ResourceUpdatedNotification)
        ]

    def logged(self) -> list[types.LoggingMessageNotificationParams]:
        return [n.params for n in self.received if isinstance(n, types.LoggingMessageNotification)]


def is_update(uri: str) -> Any:
    return lambda n: isinstance(n, types.ResourceUpdatedNotification) and n.params.uri == uri


@asynccontextmanager
async def legacy_client(server: SunoServer, inbox: Inbox) -> AsyncIterator[Client]:
    """A 2025-11-25 client: the initialize handshake, resources/subscribe and logging/setLevel."""
    async with Client(server, mode="legacy", message_handler=inbox) as client:
        yield client


async def legacy_call(call: Any) -> Any:
    """Await a client method the SDK marks deprecated (removed in 2026-07-28; these tests are about the era before)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        return await call()


async def start_song(client: Client, prompt: str = "a song about rain") -> str:
    result = await client.call_tool("generate_music", {"description": prompt, "wait_seconds": 0})
    assert not result.is_error, result
    task_id: str = result.structured_content["task_id"]
    return task_id


async def until_complete(client: Client, task_id: str) -> None:
    for _ in range(4):
        result = await client.call_tool("get_task_status", {"task_id": task_id, "wait_seconds": CALL_WAIT})
        if result.structured_content["status"] == "complete":
            return
    raise AssertionError(f"task {task_id} did not complete")


# ---------------------------------------------------------------- capabilities


async def test_a_handshake_client_is_offered_completions_logging_and_resource_subscriptions(
    tmp_path: Path,
) -> None:
    async with legacy_client(_server(tmp_path, FakeUpstream()), Inbox()) as client:
        capabilities = client.server_capabilities
    assert capabilities.completions is not None
    assert capabilities.logging is not None
    assert capabilities.resources is not None
    assert capabilities.resources.subscribe is True


async def test_a_2026_client_is_offered_completions_and_subscriptions_and_setlevel_is_gone(
    tmp_path: Path,
) -> None:
    async with Client(_server(tmp_path, FakeUpstream())) as client:
        assert client.protocol_version == "2026-07-28"
        capabilities = client.server_capabilities
        with pytest.raises(MCPError, match="not found"):
            await legacy_call(lambda: client.set_logging_level("info"))
    assert capabilities.completions is not None
    assert capabilities.resources is not None
    assert capabilities.resources.subscribe is True


# ---------------------------------------------------------------- subscriptions


async def test_a_subscribed_task_sends_updated_when_it_moves_and_nothing_once_unsubscribed(
    tmp_path: Path,
) -> None:
    fake = FakeUpstream(hold_at="queued")
    inbox = Inbox()
    async with legacy_client(_server(tmp_path, fake), inbox) as client:
        task_id = await start_song(client)
        uri = f"suno://tasks/{task_id}"
        await legacy_call(lambda: client.subscribe_resource(uri))
        await legacy_call(lambda: client.subscribe_resource("suno://usage"))

        fake.hold_at = "processing"  # the next poll finds it moved on, and stops there
        await inbox.wait_for(is_update(uri))
        await legacy_call(lambda: client.unsubscribe_resource(uri))
        after = len(inbox.received)

        fake.hold_at = None  # streaming, then complete: two more changes nobody follows now
        await until_complete(client, task_id)
        # A change still followed, queued behind any the task made: when it arrives, theirs would have.
        await start_song(client, "another song")
        await inbox.wait_for(is_update("suno://usage"), start=after)
    assert uri not in inbox.updated(after)


async def test_a_subscription_to_a_suno_uri_that_never_changes_is_refused_and_another_schemes_is_kept(
    tmp_path: Path,
) -> None:
    async with legacy_client(_server(tmp_path, FakeUpstream()), Inbox()) as client:
        for typo in ("suno://task/abc", "suno://usages", "suno://player"):
            with pytest.raises(MCPError, match="suno://usage"):
                await legacy_call(lambda typo=typo: client.subscribe_resource(typo))
        # Not ours to judge (the client names it): accepted, and it simply never changes here.
        await legacy_call(lambda: client.subscribe_resource("test://watched-resource"))
        await legacy_call(lambda: client.unsubscribe_resource("test://watched-resource"))


async def test_a_2026_listener_hears_its_task_move_on_the_subscription_stream(tmp_path: Path) -> None:
    fake = FakeUpstream(hold_at="queued")
    async with Client(_server(tmp_path, fake)) as client:
        task_id = await start_song(client)
        uri = f"suno://tasks/{task_id}"
        async with client.listen(resource_subscriptions=[uri]) as subscription:
            fake.hold_at = None
            with anyio.fail_after(NOTICE_LIMIT_S):
                event = await subscription.__anext__()
    assert getattr(event, "uri", None) == uri


# ---------------------------------------------------------------- logging


@pytest.mark.parametrize("level", ["debug", "info"])
async def test_log_messages_come_at_and_above_the_level_set_and_name_nothing_secret(
    tmp_path: Path, level: str
) -> None:
    inbox = Inbox()
    async with legacy_client(_server(tmp_path, FakeUpstream()), inbox) as client:
        await legacy_call(lambda: client.set_logging_level(level))
        task_id = await start_song(client)
        await until_complete(client, task_id)

        def finished(n: Any) -> bool:
            return (
                isinstance(n, types.LoggingMessageNotification) and n.params.data.get("status") == "complete"
            )

        await inbox.wait_for(finished)
    logged = inbox.logged()
    assert all(LEVELS.index(m.level) >= LEVELS.index(level) for m in logged)
    # The task's earlier moves are debug messages: there at "debug", and only there.
    moves = [m for m in logged if m.data.get("task_id") == task_id and m.data.get("status") != "complete"]
    assert bool(moves) is (level == "debug")
    assert KEY not in json.dumps([m.model_dump(mode="json") for m in logged])


async def test_a_client_that_never_sets_a_level_gets_no_log_messages(tmp_path: Path) -> None:
    inbox = Inbox()
    async with legacy_client(_server(tmp_path, FakeUpstream()), inbox) as client:
        await legacy_call(lambda: client.subscribe_resource("suno://usage"))
        await start_song(client)
        await inbox.wait_for(is_update("suno://usage"))
    assert inbox.logged() == []


# ---------------------------------------------------------------- completions


async def test_task_ids_complete_newest_first_by_prefix(tmp_path: Path) -> None:
    async with legacy_client(_server(tmp_path, FakeUpstream()), Inbox()) as client:
        first = await start_song(client, "one")
        second = await start_song(client, "two")
        ref = types.ResourceTemplateReference(uri="suno://tasks/{task_id}")
        everything = (await client.complete(ref, {"name": "task_id", "value": ""})).completion
        exact = (await client.complete(ref, {"name": "task_id", "value": first})).completion
        none = (await client.complete(ref, {"name": "task_id", "value": "zz"})).completion
    assert everything.values == [second, first]
    assert (everything.total, everything.has_more) == (2, False)
    assert exact.values == [first]
    assert none.values == []


async def test_prompt_arguments_complete_from_curated_lists_whatever_the_case(tmp_path: Path) -> None:
    async with legacy_client(_server(tmp_path, FakeUpstream()), Inbox()) as client:
        use_case = types.PromptReference(name="instrumental_for_use_case")
        song = types.PromptReference(name="write_a_full_song")
        podcast = (await client.complete(use_case, {"name": "use_case", "value": "POD"})).completion
        style = (await client.complete(song, {"name": "style", "value": "indie folk, Wa"})).completion
        idea = (await client.complete(song, {"name": "idea", "value": "a"})).completion
    assert podcast.values == ["podcast intro", "podcast outro"]
    assert style.values == ["indie folk, warm"]
    assert idea.values == []


# ---------------------------------------------------------------- over streamable HTTP


async def test_over_streamable_http_a_subscribed_task_sends_updated_on_the_standalone_stream(
    tmp_path: Path,
) -> None:
    fake = FakeUpstream(hold_at="queued")
    inbox = Inbox()
    settings = make_settings(tmp_path)
    async with (
        serving(build_http_app(_server(tmp_path, fake), settings, "127.0.0.1")) as url,
        bearer_client(url, None, mode="legacy", message_handler=inbox) as client,
    ):
        task_id = await start_song(client)
        uri = f"suno://tasks/{task_id}"
        await legacy_call(lambda: client.subscribe_resource(uri))
        fake.hold_at = None
        await inbox.wait_for(is_update(uri))


async def test_a_stateless_http_server_refuses_subscriptions_and_says_why(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, http_stateless=True)
    server = _server(tmp_path, FakeUpstream(), http_stateless=True)
    async with (
        serving(build_http_app(server, settings, "127.0.0.1")) as url,
        bearer_client(url, None, mode="legacy") as client,
    ):
        offered = client.server_capabilities.resources
        with pytest.raises(MCPError, match="stateless"):
            await legacy_call(lambda: client.subscribe_resource("suno://usage"))
    assert offered is not None
    assert offered.subscribe is False
