"""The presence heartbeat: keeps this instance's connections alive in Redis.

Every PRESENCE_TTL_SECONDS/3 all local connections are refreshed in one round trip. A failed
refresh (Redis down or slow) is logged and retried on the next beat, which re-adds entries
Redis lost, so presence recovers by itself when Redis comes back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from backend.app.messenger import presence
from backend.app.messenger.realtime.connections import Connection
from backend.app.redis_client import RedisClient

log = logging.getLogger(__name__)


class PresenceHeartbeat:
    def __init__(
        self,
        *,
        redis: RedisClient,
        ttl_seconds: int,
        connections: Callable[[], Iterable[Connection]],
    ) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self._connections = connections
        self._idle = asyncio.Event()  # set while no refresh pipeline is in flight
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="hub-presence-refresh")

    async def stop(self) -> None:
        await self._idle.wait()  # never cut a heartbeat pipeline in half
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def connected(self, connection: Connection) -> None:
        try:
            await presence.connect(
                self.redis,
                user_id=connection.user.id,
                connection_id=connection.id,
                ttl_seconds=self.ttl_seconds,
            )
        except Exception:  # the next beat records it once Redis answers again
            log.warning("could not record presence of connection %s", connection.id)

    async def disconnected(self, connections: list[Connection]) -> None:
        # A refresh in flight may still hold these connections: let it land first, or it
        # would re-add the entries after our removal and show the user online for a TTL.
        await self._idle.wait()
        try:
            await presence.disconnect(self.redis, [(c.user.id, c.id) for c in connections])
        except Exception:
            log.warning("could not remove presence of %d connections", len(connections))

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_seconds / 3)
            entries = [(c.user.id, c.id) for c in self._connections()]
            if not entries:
                continue
            self._idle.clear()
            try:
                await presence.refresh(self.redis, entries, ttl_seconds=self.ttl_seconds)
            except Exception:
                log.warning("presence refresh of %d connections failed", len(entries))
            finally:
                self._idle.set()
