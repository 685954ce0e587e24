"""The WebSocket hub: runs each connection and fans events out to every instance.

It composes three parts with one job each: the connection registry (`connections.py`: who is
connected here, the per-user cap), the presence heartbeat (`heartbeat.py`: keeping them
alive in Redis) and the broadcaster (`broadcast.py`: one pub/sub channel to reach the other
instances). An event is delivered to this instance's connections directly and published once
for the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from backend.app.auth import CurrentUser
from backend.app.config import Settings
from backend.app.messenger.realtime.broadcast import (
    BROADCAST_CHANNEL,
    Broadcaster,
    broadcast_channel,
)
from backend.app.messenger.realtime.connections import (
    CLOSE_GOING_AWAY,
    CLOSE_IDLE,
    CLOSE_REPLACED,
    CLOSE_TOO_SLOW,
    CLOSE_UNAUTHORIZED,
    SEND_QUEUE_SIZE,
    Connection,
    ConnectionRegistry,
    dumps,
)
from backend.app.messenger.realtime.heartbeat import PresenceHeartbeat
from backend.app.metrics import WEBSOCKET_CONNECTIONS
from backend.app.redis_client import RedisClient

__all__ = [
    "BROADCAST_CHANNEL",
    "CLOSE_GOING_AWAY",
    "CLOSE_IDLE",
    "CLOSE_REPLACED",
    "CLOSE_TOO_SLOW",
    "CLOSE_UNAUTHORIZED",
    "Connection",
    "FrameHandler",
    "Hub",
    "dumps",
]

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_SECONDS = 2.0  # a client that cannot take our close frame is simply dropped

FrameHandler = Callable[[Connection, str | None, bytes | None], Awaitable[None]]


class Hub:
    def __init__(
        self, *, settings: Settings, redis: RedisClient, send_queue_size: int = SEND_QUEUE_SIZE
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.send_queue_size = send_queue_size
        self.instance_id = uuid.uuid4().hex
        self.channel = broadcast_channel(redis)
        self.connections = ConnectionRegistry(max_per_user=settings.ws_max_connections_per_user)
        self.heartbeat = PresenceHeartbeat(
            redis=redis, ttl_seconds=settings.presence_ttl_seconds, connections=self._all
        )
        self.broadcaster = Broadcaster(
            redis=redis,
            instance_id=self.instance_id,
            deliver=self.deliver_local,
            channel=self.channel,
        )
        self._detached: set[asyncio.Task[Any]] = set()
        self._stopped = False

    # Lifecycle

    async def start(self) -> None:
        """Never fails on Redis (see Broadcaster.start)."""
        self.broadcaster.start()
        self.heartbeat.start()

    async def stop(self) -> None:
        """Close local connections and remove their presence at once (not after the TTL)."""
        self._stopped = True
        await self.heartbeat.stop()
        await self.broadcaster.stop()
        connections = list(self._all())
        for connection in connections:
            connection.close(CLOSE_GOING_AWAY, "server shutting down")
        if self._detached:
            await asyncio.wait(self._detached, timeout=5)
        await self.heartbeat.disconnected(connections)

    # Connections

    def _all(self) -> Iterable[Connection]:
        return self.connections.all()

    def connection_count(self) -> int:
        return self.connections.count()

    async def serve(self, websocket: WebSocket, user: CurrentUser, handle: FrameHandler) -> None:
        """Run one accepted, authenticated connection until it ends; `handle` gets each frame."""
        if self._stopped:
            await websocket.close(CLOSE_GOING_AWAY, "server shutting down")
            return
        connection = Connection(
            connection_id=f"{self.instance_id}:{uuid.uuid4().hex}",
            user=user,
            websocket=websocket,
            queue_size=self.send_queue_size,
        )
        self.connections.add(connection)
        WEBSOCKET_CONNECTIONS.inc()
        try:
            await self.heartbeat.connected(connection)
            await self._run(connection, handle)
        finally:
            await self._forget(connection)

    async def _run(self, connection: Connection, handle: FrameHandler) -> None:
        tasks = {
            asyncio.create_task(self._read_loop(connection, handle)),
            asyncio.create_task(self._write_loop(connection)),
            asyncio.create_task(self._expire(connection)),
            asyncio.create_task(connection.closed.wait()),
        }
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        connection.closed.set()
        websocket = connection.websocket
        if (
            websocket.client_state == WebSocketState.CONNECTED
            and websocket.application_state == WebSocketState.CONNECTED
        ):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                    await websocket.close(connection.close_code, connection.close_reason)

    async def _expire(self, connection: Connection) -> None:
        """A connection lives no longer than its JWT (plus the clock-skew leeway): 4401."""
        expires_at = connection.user.expires_at
        if expires_at is None:
            await asyncio.Event().wait()
            return
        await asyncio.sleep(max(0.0, expires_at + self.settings.jwt_leeway_seconds - time.time()))
        connection.close(CLOSE_UNAUTHORIZED, "token expired")

    async def _read_loop(self, connection: Connection, handle: FrameHandler) -> None:
        """Frames in order; a connection silent for PRESENCE_TTL_SECONDS counts as gone."""
        idle_seconds = self.settings.presence_ttl_seconds
        while True:
            try:
                async with asyncio.timeout(idle_seconds):
                    event = await connection.websocket.receive()
            except TimeoutError:
                connection.close(CLOSE_IDLE, "idle timeout")
                return
            if event["type"] == "websocket.disconnect":
                return
            try:
                await handle(connection, event.get("text"), event.get("bytes"))
            except Exception:  # a bug in one frame's handling must not end the connection
                log.exception("frame handling failed on connection %s", connection.id)
                connection.send_json(
                    {"type": "error", "code": "internal_error", "detail": "internal error"}
                )

    async def _write_loop(self, connection: Connection) -> None:
        while True:
            frame = await connection.outbox.get()
            try:
                await connection.websocket.send_text(frame)
            except (WebSocketDisconnect, RuntimeError, OSError):
                return

    async def _forget(self, connection: Connection) -> None:
        self.connections.remove(connection)
        WEBSOCKET_CONNECTIONS.dec()
        if self._stopped:
            return  # stop() removes the presence of every connection in one go
        await self.heartbeat.disconnected([connection])

    def detach(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run work that must finish even if its connection goes away mid-way (a send that
        reached the database must still be announced). `stop()` waits for it briefly."""
        task = asyncio.create_task(coroutine)
        self._detached.add(task)
        task.add_done_callback(self._detached.discard)
        return task

    # Fan-out

    def deliver_local(
        self, frame: str, user_ids: Iterable[str], *, exclude_connection_id: str | None = None
    ) -> None:
        for user_id in user_ids:
            for connection in self.connections.of_user(user_id):
                if connection.id != exclude_connection_id:
                    connection.send(frame)

    async def publish(
        self,
        payload: dict[str, Any],
        user_ids: Sequence[str],
        *,
        exclude_connection_id: str | None = None,
    ) -> None:
        """Send a frame to every open connection of these users, on every instance."""
        frame = dumps(payload)
        self.deliver_local(frame, user_ids, exclude_connection_id=exclude_connection_id)
        await self.broadcaster.publish(frame, user_ids, kind=str(payload.get("type")))

    async def publish_message_new(
        self,
        message: dict[str, Any],
        participant_ids: Sequence[str],
        *,
        exclude_connection_id: str | None = None,
    ) -> None:
        """`message.new` to every participant's connections except the one that sent it."""
        await self.publish(
            {"type": "message.new", "message": message},
            participant_ids,
            exclude_connection_id=exclude_connection_id,
        )
