"""Recording connections: connect, heartbeat, clean close, and what a client says (idle/active)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from backend.app.messenger.presence.keys import connections_key, idle_key, last_seen_key
from backend.app.messenger.presence.states import ConnectionState
from backend.app.redis_client import RedisClient

# An emptied set disappears by itself; this margin keeps a key alive a little past its newest
# entry so that instance clocks a few seconds apart do not cut a live connection short.
KEY_EXPIRY_MARGIN_SECONDS = 10


async def connect(
    redis: RedisClient,
    *,
    user_id: str,
    connection_id: str,
    ttl_seconds: int,
    now: float | None = None,
) -> None:
    """Record a new live connection; also drops entries of this user that already expired."""
    await refresh(redis, [(user_id, connection_id)], ttl_seconds=ttl_seconds, now=now)


async def refresh(
    redis: RedisClient,
    connections: Sequence[tuple[str, str]],
    *,
    ttl_seconds: int,
    now: float | None = None,
) -> None:
    """Heartbeat for many `(user_id, connection_id)` pairs in one round trip.

    Re-adds an entry that vanished (Redis restarted, or this instance stalled past the TTL):
    the connection is demonstrably still open.
    """
    if not connections:
        return
    now = time.time() if now is None else now
    expires_at = now + ttl_seconds
    by_user: dict[str, list[str]] = {}
    for user_id, connection_id in connections:
        by_user.setdefault(user_id, []).append(connection_id)
    async with redis.pipeline(transaction=False) as pipe:
        for user_id, connection_ids in by_user.items():
            key = connections_key(user_id)
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zadd(key, dict.fromkeys(connection_ids, expires_at))
            pipe.expire(key, ttl_seconds + KEY_EXPIRY_MARGIN_SECONDS)
            pipe.expire(idle_key(user_id), ttl_seconds + KEY_EXPIRY_MARGIN_SECONDS)
            pipe.set(last_seen_key(user_id), repr(now))
        await pipe.execute()


async def disconnect(
    redis: RedisClient, connections: Sequence[tuple[str, str]], *, now: float | None = None
) -> None:
    """Remove connections at once (clean close) and remember when their users were last seen."""
    if not connections:
        return
    now = time.time() if now is None else now
    async with redis.pipeline(transaction=False) as pipe:
        for user_id, connection_id in connections:
            pipe.zrem(connections_key(user_id), connection_id)
            pipe.srem(idle_key(user_id), connection_id)
            pipe.set(last_seen_key(user_id), repr(now))
        await pipe.execute()


async def set_connection_state(
    redis: RedisClient,
    *,
    user_id: str,
    connection_id: str,
    state: ConnectionState,
    ttl_seconds: int,
) -> None:
    """Record what the client said about one connection (one round trip)."""
    key = idle_key(user_id)
    if state is ConnectionState.ACTIVE:
        await redis.srem(key, connection_id)
        return
    async with redis.pipeline(transaction=False) as pipe:
        pipe.sadd(key, connection_id)
        pipe.expire(key, ttl_seconds + KEY_EXPIRY_MARGIN_SECONDS)
        await pipe.execute()
