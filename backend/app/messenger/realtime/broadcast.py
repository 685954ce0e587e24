"""Cross-instance delivery: one Redis pub/sub channel every instance subscribes to.

One PUBLISH per event costs far less than looking up each recipient's live connections to
route it (measured in bench/: that lookup was the largest CPU cost of sending a message);
the price is that every instance reads every event, which is fine for the handful of
instances this service runs on. Past that, shard the channel by a hash of the user id.

The subscription survives Redis restarts: any error drops the pub/sub connection and a new
one subscribes again after a short pause, without a restart of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from backend.app.messenger.realtime.connections import dumps

log = logging.getLogger(__name__)

BROADCAST_CHANNEL = "messenger:ws:events"
RESUBSCRIBE_PAUSE_SECONDS = 1.0


def broadcast_channel(redis: Redis) -> str:
    """The channel of this Redis database. Pub/sub ignores database numbers: deployments (or
    test sessions) sharing one Redis server on different databases would otherwise receive
    each other's events, i.e. one deployment's users would see another's frames."""
    pool = getattr(redis, "connection_pool", None)  # a Redis Cluster has only database 0
    db = getattr(pool, "connection_kwargs", {}).get("db", 0)
    return f"{BROADCAST_CHANNEL}:{db}"


async def publish_per_user(redis: Redis, frames: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """One frame per user, for processes without a hub (`messenger worker`) or work that is not
    tied to a connection: one pipelined round trip; every instance's hub (this one's included,
    the origin being no hub's id) delivers each frame to that user's local connections."""
    if not frames:
        return
    channel = broadcast_channel(redis)
    async with redis.pipeline(transaction=False) as pipe:
        for user_id, payload in frames:
            envelope = {"origin": "background", "user_ids": [user_id], "frame": dumps(payload)}
            pipe.publish(channel, dumps(envelope))
        await pipe.execute()


# frame, recipients: deliver to this instance's connections of these users.
LocalDelivery = Callable[[str, Sequence[str]], None]


class Broadcaster:
    def __init__(
        self, *, redis: Redis, instance_id: str, deliver: LocalDelivery, channel: str
    ) -> None:
        self.redis = redis
        self.instance_id = instance_id
        self.channel = channel
        self._deliver = deliver
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Never fails on Redis: the listener subscribes (and re-subscribes) in its own loop,
        so the service starts while Redis is down and `/health` can say so."""
        self._task = asyncio.create_task(self._listen(), name="hub-listen")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._drop_subscription()

    async def publish(self, frame: str, user_ids: Sequence[str], *, kind: str) -> None:
        envelope = {"origin": self.instance_id, "user_ids": list(user_ids), "frame": frame}
        try:
            await self.redis.publish(self.channel, dumps(envelope))
        except Exception:
            log.warning("could not publish a %s event to other instances", kind)

    async def _drop_subscription(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.unsubscribe(self.channel)
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _listen(self) -> None:
        while True:
            try:
                if self._pubsub is None:
                    self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                    await self._pubsub.subscribe(self.channel)
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=1.0
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("hub subscription interrupted (%s), resubscribing", type(exc).__name__)
                await self._drop_subscription()
                await asyncio.sleep(RESUBSCRIBE_PAUSE_SECONDS)
                continue
            if message is None or message.get("type") != "message":
                continue
            try:
                envelope = json.loads(message["data"])
                if envelope["origin"] != self.instance_id:  # our own: delivered before publishing
                    self._deliver(envelope["frame"], envelope["user_ids"])
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring a malformed hub envelope")
