"""The WebSocket hub: this process's open connections, presence bookkeeping, and fan-out of
events to every instance through Redis pub/sub.

Routing: an event is delivered to this instance's connections directly and published once
on a channel every instance subscribes to; each other instance delivers it to the
recipients' connections it holds (see BROADCAST_CHANNEL for why not per-instance routing).

Back-pressure: every connection has a bounded send queue drained by its own writer task.
Enqueueing never waits, so a slow or dead client cannot hold up delivery to anyone else;
a client whose queue overflows is disconnected rather than buffered without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from backend.app.auth import CurrentUser
from backend.app.config import Settings
from backend.app.messenger import presence
from backend.app.metrics import WEBSOCKET_CONNECTIONS

log = logging.getLogger(__name__)

SEND_QUEUE_SIZE = 256
CLOSE_GOING_AWAY = 1001  # server shutting down
CLOSE_TOO_SLOW = 1008  # the client did not keep up with its messages
CLOSE_UNAUTHORIZED = 4401  # bad, missing or expired token
CLOSE_IDLE = 4408  # nothing received for PRESENCE_TTL_SECONDS
CLOSE_TIMEOUT_SECONDS = 2.0  # a client that cannot take our close frame is simply dropped
# Every instance subscribes to one channel and delivers to its own connections. One PUBLISH per
# event costs far less than looking up each recipient's live connections to route it (measured
# in bench/: that lookup was the largest CPU cost of sending a message); the price is that every
# instance reads every event, which is fine for the handful of instances this service runs on.
# Past that, shard the channel by a hash of the user id.
BROADCAST_CHANNEL = "messenger:ws:events"


def broadcast_channel(redis: Redis) -> str:
    """The channel for this Redis database. Pub/sub ignores database numbers, so services
    sharing one Redis server on different databases would otherwise read each other's events."""
    pool = getattr(redis, "connection_pool", None)  # a Redis Cluster client has no databases
    db = getattr(pool, "connection_kwargs", {}).get("db", 0)
    return BROADCAST_CHANNEL if not db else f"{BROADCAST_CHANNEL}:db{db}"


FrameHandler = Callable[["Connection", str | None, bytes | None], Awaitable[None]]


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


class Hub:
    def __init__(
        self, *, settings: Settings, redis: Redis, send_queue_size: int = SEND_QUEUE_SIZE
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.send_queue_size = send_queue_size
        self.instance_id = uuid.uuid4().hex
        self.channel = broadcast_channel(redis)
        self._by_user: dict[str, dict[str, Connection]] = {}
        self._pubsub: PubSub | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._detached: set[asyncio.Task[Any]] = set()
        self._refresh_idle = asyncio.Event()
        self._refresh_idle.set()
        self._stopped = False

    # Lifecycle

    async def start(self) -> None:
        """Never fails on Redis: the listener subscribes (and re-subscribes) in its own loop,
        so the service starts while Redis is down and `/health` can say so."""
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self._tasks = [
            asyncio.create_task(self._listen(), name="hub-listen"),
            asyncio.create_task(self._refresh_loop(), name="hub-presence-refresh"),
        ]

    async def stop(self) -> None:
        """Close local connections and remove their presence at once (not after the TTL)."""
        self._stopped = True
        await self._refresh_idle.wait()  # never cut a heartbeat pipeline in half
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        connections = list(self._all())
        for connection in connections:
            connection.close(CLOSE_GOING_AWAY, "server shutting down")
        if self._detached:
            await asyncio.wait(self._detached, timeout=5)
        try:
            await presence.disconnect(self.redis, [(c.user.id, c.id) for c in connections])
        except Exception:
            log.warning("could not remove presence of %d connections", len(connections))
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.unsubscribe(self.channel)
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()

    # Connections

    def _all(self) -> Iterable[Connection]:
        for connections in self._by_user.values():
            yield from connections.values()

    def connection_count(self) -> int:
        return sum(len(c) for c in self._by_user.values())

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
        self._by_user.setdefault(user.id, {})[connection.id] = connection
        WEBSOCKET_CONNECTIONS.inc()
        try:
            try:
                await presence.connect(
                    self.redis,
                    user_id=user.id,
                    connection_id=connection.id,
                    ttl_seconds=self.settings.presence_ttl_seconds,
                )
            except Exception:  # the refresh loop records it once Redis answers again
                log.warning("could not record presence of connection %s", connection.id)
            await self._run(connection, handle)
        finally:
            await self._forget(connection)

    async def _run(self, connection: Connection, handle: FrameHandler) -> None:
        tasks = {
            asyncio.create_task(self._read_loop(connection, handle)),
            asyncio.create_task(self._write_loop(connection)),
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
        user_connections = self._by_user.get(connection.user.id, {})
        user_connections.pop(connection.id, None)
        if not user_connections:
            self._by_user.pop(connection.user.id, None)
        WEBSOCKET_CONNECTIONS.dec()
        if self._stopped:
            return  # stop() removes the presence of every connection in one go
        # A refresh in flight may still hold this connection: let it land first, or it
        # would re-add the entry after our removal and show the user online for a TTL.
        await self._refresh_idle.wait()
        try:
            await presence.disconnect(self.redis, [(connection.user.id, connection.id)])
        except Exception:
            log.warning("could not remove presence of %s; it expires by itself", connection.id)

    def detach(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run work that must finish even if its connection goes away mid-way (a send that
        reached the database must still be announced). `stop()` waits for it briefly."""
        task = asyncio.create_task(coroutine)
        self._detached.add(task)
        task.add_done_callback(self._detached.discard)
        return task

    # Presence heartbeat

    async def _refresh_loop(self) -> None:
        ttl = self.settings.presence_ttl_seconds
        while True:
            await asyncio.sleep(ttl / 3)
            entries = [(c.user.id, c.id) for c in self._all()]
            if not entries:
                continue
            self._refresh_idle.clear()
            try:
                await presence.refresh(self.redis, entries, ttl_seconds=ttl)
            except Exception:
                log.warning("presence refresh of %d connections failed", len(entries))
            finally:
                self._refresh_idle.set()

    # Fan-out

    def deliver_local(
        self, frame: str, user_ids: Iterable[str], *, exclude_connection_id: str | None = None
    ) -> None:
        for user_id in user_ids:
            for connection in list(self._by_user.get(user_id, {}).values()):
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
        envelope = {"origin": self.instance_id, "user_ids": list(user_ids), "frame": frame}
        try:
            await self.redis.publish(self.channel, dumps(envelope))
        except Exception:
            log.warning("could not publish a %s event to other instances", payload.get("type"))

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

    async def _listen(self) -> None:
        assert self._pubsub is not None
        subscribed = False
        while True:
            try:
                if not subscribed:
                    await self._pubsub.subscribe(self.channel)
                    subscribed = True
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=1.0
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("hub subscription interrupted, resubscribing", exc_info=True)
                await asyncio.sleep(1)
                continue
            if message is None or message.get("type") != "message":
                continue
            try:
                envelope = json.loads(message["data"])
                if envelope["origin"] != self.instance_id:  # our own: delivered before publishing
                    self.deliver_local(envelope["frame"], envelope["user_ids"])
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring a malformed hub envelope")
