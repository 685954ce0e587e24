"""Waking the push workers of other processes when an API-only process committed push work.

`messenger serve --no-background` leaves fan-out to `messenger worker` processes, whose
sweep finds new jobs every `PUSH_SWEEP_INTERVAL_SECONDS`: up to that long before a
message's first push. So an API-only process's kicks publish a wake-up on a Redis channel
of its own (the hub's `Broadcaster`, another channel) and every worker that hears it sweeps
at once. At most one publish per `COALESCE_SECONDS` whatever the send rate: the first kick
publishes right away, the kicks during the pause that follows share one more publish. Best
effort: without Redis the sweep still finds every job, only later.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence

from backend.app.messenger.realtime.broadcast import Broadcaster, broadcast_channel
from backend.app.redis_client import RedisClient

WAKE_CHANNEL = "messenger:push:wake"
COALESCE_SECONDS = 0.02


class WakeSignal:
    def __init__(self, redis: RedisClient, *, on_wake: Callable[[], None]) -> None:
        def deliver(frame: str, user_ids: Sequence[str]) -> None:
            on_wake()

        self._broadcaster = Broadcaster(
            redis=redis,
            instance_id=uuid.uuid4().hex,
            deliver=deliver,
            channel=broadcast_channel(redis, WAKE_CHANNEL),
        )
        self._publishing: asyncio.Task[None] | None = None
        self._again = False

    def listen(self) -> None:
        """Call `on_wake` whenever another process asks (workers only)."""
        self._broadcaster.start()

    async def stop(self) -> None:
        if self._publishing is not None:
            self._publishing.cancel()
            await asyncio.gather(self._publishing, return_exceptions=True)
        await self._broadcaster.stop()

    def request(self) -> None:
        """Wake the workers soon (never awaited by the caller)."""
        if self._publishing is not None and not self._publishing.done():
            self._again = True
            return
        self._publishing = asyncio.create_task(self._publish(), name="push-wake")

    async def _publish(self) -> None:
        while True:
            self._again = False
            await self._broadcaster.publish("wake", [], kind="push wake-up")
            await asyncio.sleep(COALESCE_SECONDS)
            if not self._again:
                return
