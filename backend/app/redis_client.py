"""The one place that builds the Redis client: a single Redis, or a Redis Cluster client when
`REDIS_CLUSTER=true` (then `REDIS_URL` names any node; the client discovers the others).

Both clients expose the same commands, pipelines and `eval`, so callers take `RedisClient`
and branch only where Redis Cluster really differs (`is_cluster`): a Lua script may touch
keys of one hash slot only (presence groups its batch read by slot) and pub/sub is sharded
(`SPUBLISH`/`SSUBSCRIBE`, see realtime/broadcast.py). Every multi-key operation elsewhere uses
keys with one hash tag (`presence:{user}`, `ratelimit:{key}:window`), so it stays in one slot.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TypeAlias

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster

log = logging.getLogger(__name__)

RedisClient: TypeAlias = Redis | RedisCluster

# Per node for a cluster, in total for a single Redis.
MAX_CONNECTIONS = 200


def is_cluster(redis: RedisClient) -> bool:
    return isinstance(redis, RedisCluster)


def create_redis(url: str, *, cluster: bool = False, timeout_seconds: float = 2.0) -> RedisClient:
    """A single Redis gets a blocking pool: past `MAX_CONNECTIONS` callers wait for a connection
    instead of failing at once (a failed presence read would make fan-out push people who are
    online). The cluster client has no blocking pool; its per-node limit is the same.

    Every call is bounded by `timeout_seconds` (connect, read, waiting for a connection), so a
    Redis that is down or silently drops packets costs callers that long at most, never a hang.
    """
    if cluster:
        return RedisCluster.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            health_check_interval=30,
            max_connections=MAX_CONNECTIONS,
        )
    pool = BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=30,
        max_connections=MAX_CONNECTIONS,
        timeout=timeout_seconds,
    )
    return Redis.from_pool(pool)


async def load_cluster_map(redis: RedisClient, *, timeout_seconds: float) -> None:
    """A cluster client learns the slot map on its first command: learn it at start-up, so the
    first request does not pay for it (the rate limiter's short timeout would fail it open).
    Best effort: the service starts while Redis is down and `/health` says so."""
    if not isinstance(redis, RedisCluster):
        return
    try:
        async with asyncio.timeout(timeout_seconds):
            await redis.initialize()
    except Exception as exc:
        log.warning("Redis Cluster not reachable at start-up: %s", type(exc).__name__)
