"""Cross-instance delivery: one Redis pub/sub channel every instance subscribes to.

On a Redis Cluster the channel is a sharded one (`SPUBLISH`/`SSUBSCRIBE`, Redis 7): it lives
on the node that owns its hash slot, whereas classic PUBLISH is broadcast over the cluster
bus to every node. redis-py's asyncio `ClusterPubSub` routes `ssubscribe` to that node and
follows the channel when its slot moves. Limit: all events go through one node; past what one
node carries, split the channel by a hash of the user id (one channel per slot range).

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

from redis.asyncio.client import PubSub

from backend.app.messenger.realtime.connections import dumps
from backend.app.redis_batch import batcher_for
from backend.app.redis_client import RedisClient, is_cluster

log = logging.getLogger(__name__)

BROADCAST_CHANNEL = "messenger:ws:events"
RESUBSCRIBE_PAUSE_SECONDS = 1.0


def broadcast_channel(redis: RedisClient, name: str = BROADCAST_CHANNEL) -> str:
    """The channel `name` of this Redis database. Pub/sub ignores database numbers:
    deployments (or test sessions) sharing one Redis server on different databases would
    otherwise receive each other's events, i.e. one deployment's users would see another's
    frames."""
    pool = getattr(redis, "connection_pool", None)  # a Redis Cluster has only database 0
    db = getattr(pool, "connection_kwargs", {}).get("db", 0)
    return f"{name}:{db}"


async def publish_per_user(
    redis: RedisClient, frames: Sequence[tuple[str, dict[str, Any]]]
) -> None:
    """One frame per user, for processes without a hub (`messenger worker`) or work that is not
    tied to a connection: one pipelined round trip; every instance's hub (this one's included,
    the origin being no hub's id) delivers each frame to that user's local connections."""
    if not frames:
        return
    channel, sharded = broadcast_channel(redis), is_cluster(redis)
    async with redis.pipeline(transaction=False) as pipe:
        for user_id, payload in frames:
            envelope = {"origin": "background", "user_ids": [user_id], "frame": dumps(payload)}
            _publish(pipe, channel, dumps(envelope), sharded=sharded)
        await pipe.execute()


def _publish(target: Any, channel: str, data: str, *, sharded: bool) -> Any:
    """PUBLISH on a single Redis; SPUBLISH on a cluster, where a plain PUBLISH is copied to
    every node of the cluster bus while a sharded one stays on the node owning the channel."""
    if sharded:
        return target.spublish(channel, data)
    return target.publish(channel, data)


# frame, recipients: deliver to this instance's connections of these users.
LocalDelivery = Callable[[str, Sequence[str]], None]


class Broadcaster:
    def __init__(
        self, *, redis: RedisClient, instance_id: str, deliver: LocalDelivery, channel: str
    ) -> None:
        self.redis = redis
        self.instance_id = instance_id
        self.channel = channel
        self._deliver = deliver
        self._sharded = is_cluster(redis)
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
            data = dumps(envelope)
            (reply,) = await batcher_for(self.redis).run(
                lambda pipe: _publish(pipe, self.channel, data, sharded=self._sharded)
            )
            if isinstance(reply, Exception):
                raise reply
        except Exception:
            log.warning("could not publish a %s event to other instances", kind)

    async def _drop_subscription(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                if self._sharded:
                    await pubsub.sunsubscribe(self.channel)  # type: ignore[attr-defined]
                else:
                    await pubsub.unsubscribe(self.channel)
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _subscribe(self) -> PubSub:
        if self._sharded:
            # ClusterPubSub picks the node owning the channel's slot from the slot map, which
            # the client only loads on its first command: load it first (a no-op afterwards).
            await self.redis.initialize()  # type: ignore[union-attr]
        # Held before subscribing, so that a failed subscription is closed by the retry path.
        self._pubsub = pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        if self._sharded:
            await pubsub.ssubscribe(self.channel)  # type: ignore[attr-defined]
        else:
            await pubsub.subscribe(self.channel)
        return pubsub

    async def _next_message(self, pubsub: PubSub) -> dict[str, Any] | None:
        if self._sharded:
            return await pubsub.get_sharded_message(  # type: ignore[attr-defined,no-any-return]
                ignore_subscribe_messages=True, timeout=1.0
            )
        return await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)

    async def _listen(self) -> None:
        while True:
            try:
                if self._pubsub is None:
                    self._pubsub = await self._subscribe()
                message = await self._next_message(self._pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("hub subscription interrupted (%s), resubscribing", type(exc).__name__)
                await self._drop_subscription()
                await asyncio.sleep(RESUBSCRIBE_PAUSE_SECONDS)
                continue
            if message is None or message.get("type") not in ("message", "smessage"):
                continue
            try:
                envelope = json.loads(message["data"])
                if envelope["origin"] != self.instance_id:  # our own: delivered before publishing
                    self._deliver(envelope["frame"], envelope["user_ids"])
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring a malformed hub envelope")
