"""This instance's open WebSocket connections, by user, with the per-user cap.

Back-pressure: every connection has a bounded send queue drained by its own writer task.
Enqueueing never waits, so a slow or dead client cannot hold up delivery to anyone else;
a client whose queue overflows is disconnected rather than buffered without limit.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from typing import Any

from starlette.websockets import WebSocket

from backend.app.auth import CurrentUser

log = logging.getLogger(__name__)

SEND_QUEUE_SIZE = 256
CLOSE_GOING_AWAY = 1001  # server shutting down
CLOSE_TOO_SLOW = 1008  # the client did not keep up with its messages
CLOSE_UNAUTHORIZED = 4401  # bad, missing or expired token
CLOSE_IDLE = 4408  # nothing received for PRESENCE_TTL_SECONDS
CLOSE_REPLACED = 4409  # the user opened more than WS_MAX_CONNECTIONS_PER_USER connections


def dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


class Connection:
    """One open WebSocket of one user on this instance."""

    def __init__(
        self, *, connection_id: str, user: CurrentUser, websocket: WebSocket, queue_size: int
    ) -> None:
        self.id = connection_id
        self.user = user
        self.websocket = websocket
        self.outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)
        self.close_code = 1000
        self.close_reason = ""
        self.closed = asyncio.Event()

    def send(self, frame: str) -> None:
        """Queue a text frame; never waits. Overflow disconnects the client."""
        if self.closed.is_set():
            return
        try:
            self.outbox.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning("closing connection %s of %s: send queue full", self.id, self.user.id)
            self.close(CLOSE_TOO_SLOW, "too slow: send queue overflow")

    def send_json(self, payload: dict[str, Any]) -> None:
        self.send(dumps(payload))

    def close(self, code: int, reason: str) -> None:
        """Ask the connection to end (idempotent: the first reason wins)."""
        if not self.closed.is_set():
            self.close_code, self.close_reason = code, reason
            self.closed.set()


class ConnectionRegistry:
    """Who is connected here. Plain dictionaries: touched only from the event loop."""

    def __init__(self, *, max_per_user: int) -> None:
        self.max_per_user = max_per_user
        self._by_user: dict[str, dict[str, Connection]] = {}

    def add(self, connection: Connection) -> None:
        """Register; past the per-user cap the user's OLDEST connections are closed (4409),
        so a user who reopens tabs keeps working and nobody can pile up sockets."""
        mine = self._by_user.setdefault(connection.user.id, {})
        live = [c for c in mine.values() if not c.closed.is_set()]
        for oldest in live[: max(0, len(live) - self.max_per_user + 1)]:
            oldest.close(CLOSE_REPLACED, "too many connections: this one is the oldest")
        mine[connection.id] = connection  # dicts keep insertion order: oldest first

    def remove(self, connection: Connection) -> None:
        mine = self._by_user.get(connection.user.id)
        if mine is None:
            return
        mine.pop(connection.id, None)
        if not mine:
            self._by_user.pop(connection.user.id, None)

    def of_user(self, user_id: str) -> list[Connection]:
        return list(self._by_user.get(user_id, {}).values())

    def all(self) -> Iterable[Connection]:
        for connections in list(self._by_user.values()):
            yield from list(connections.values())

    def count(self) -> int:
        return sum(len(c) for c in self._by_user.values())
