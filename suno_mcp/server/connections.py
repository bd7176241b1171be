"""The HTTP door's connections: uvicorn's h11 protocol with a deadline for each request head and
body, and a cap on open connections.

uvicorn alone has neither deadline (its keep-alive timer starts only after a response, and any byte
restarts it) nor a cap that closes connections (``limit_concurrency`` answers 503 to requests but
never closes a connection that sends none). Imported when the HTTP transport starts serving.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


@dataclass(frozen=True)
class DoorLimits:
    """How long a request head and a request body may take (seconds), and how many connections may
    be open at once."""

    max_connections: int
    header_timeout_s: float
    body_timeout_s: float


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol under :class:`DoorLimits`; :func:`guarded_protocol` makes the class of
    one server.

    The head deadline is armed when a connection opens and again when a response completes (the
    next head may start then); when it fires while h11 still waits for a complete head, the
    connection is closed, however slowly bytes trickle in. The body deadline is armed when a head
    is complete and the request has a body; when it fires while the body is still arriving, the
    client gets 408 if nothing was answered yet, and the connection is closed either way: the
    application sees the client gone and gives back its call slot. At the cap, a new connection
    closes the oldest one still waiting for its head, so half-open connections cannot crowd out a
    client that talks; when every open connection is mid-request, the new one is closed instead.
    """

    limits: ClassVar[DoorLimits]
    open_now: ClassVar[dict[GuardedH11Protocol, None]]  # the server's connections, oldest first
    _head_deadline: asyncio.TimerHandle | None = None
    _body_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.open_now) >= self.limits.max_connections:
            waiting = next((c for c in self.open_now if c._waiting_for_head()), None)
            if waiting is None:
                transport.close()
                return
            waiting._close()
        self.open_now[self] = None
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open_now.pop(self, None)
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def handle_events(self) -> None:
        # Every event h11 parses passes here, from new bytes and from a finished response alike.
        super().handle_events()
        self._watch_body()

    def _waiting_for_head(self) -> bool:
        return self.conn.their_state is h11.IDLE

    def _arm(self) -> None:
        self._disarm_head()
        self._head_deadline = self.loop.call_later(self.limits.header_timeout_s, self._deadline_passed)

    def _disarm_head(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _disarm(self) -> None:
        self._disarm_head()
        self._disarm_body()

    def _deadline_passed(self) -> None:
        self._head_deadline = None
        if self._waiting_for_head():
            self._close()

    def _watch_body(self) -> None:
        """Arm the body deadline when a body starts arriving; disarm it when the body is in."""
        if self.conn.their_state is not h11.SEND_BODY:
            self._disarm_body()
        elif self._body_deadline is None and not self.transport.is_closing():
            self._body_deadline = self.loop.call_later(self.limits.body_timeout_s, self._body_deadline_passed)

    def _disarm_body(self) -> None:
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    def _body_deadline_passed(self) -> None:
        self._body_deadline = None
        if self.conn.their_state is not h11.SEND_BODY or self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            # The application is still reading the body: answer for it, and tell it the client is
            # gone now (as uvicorn does when the connection drops), so its sends are dropped
            # instead of following this answer.
            self._send_408()
            cycle.disconnected = True
            cycle.message_event.set()
        self._close()

    def _send_408(self) -> None:
        message = f"the request body did not arrive within {self.limits.body_timeout_s:g} s"
        body = json.dumps({"error": "request_timeout", "message": message}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=408, headers=headers),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event))

    def _close(self) -> None:
        self.open_now.pop(self, None)
        self._disarm()
        if not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(limits: DoorLimits) -> type[GuardedH11Protocol]:
    """The protocol class for one server: its limits, and its own table of open connections."""

    class ServerProtocol(GuardedH11Protocol):
        pass

    ServerProtocol.limits = limits
    ServerProtocol.open_now = {}
    return ServerProtocol
