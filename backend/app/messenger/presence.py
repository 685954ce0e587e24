"""Presence in Redis: a user is online while at least one of their connections is alive.

Keys, per user (the `{user_id}` hash tag keeps both on one Redis Cluster slot):
- `presence:{user_id}`: sorted set of live connection ids, scored by the epoch second at
  which each entry expires unless its instance refreshes it. An instance that dies stops
  refreshing, so its connections drop out after at most the TTL without anyone cleaning up.
- `presence:{user_id}:last_seen`: epoch seconds of the last moment a connection of the user
  was known alive (connect, refresh, clean disconnect). Kept after the user goes offline.

Every batch function is one round trip whatever the number of users: pipelines
(transaction=False) for writes, and for the hot "who of these is online?" read a Lua script
that returns only the online users' positions, because parsing one reply per user in
redis-py costs ~20 µs each (200 ms for 10,000 users; the script takes ~30 ms). On Redis
Cluster a script only takes keys of one slot: there, group the ids by slot and run one
script per group (or use the pipeline in `presence_of`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

# An emptied set disappears by itself; this margin keeps a key alive a little past its newest
# entry so that instance clocks a few seconds apart do not cut a live connection short.
KEY_EXPIRY_MARGIN_SECONDS = 10


@dataclass(frozen=True, slots=True)
class PresenceInfo:
    online: bool
    last_seen: datetime | None


OFFLINE = PresenceInfo(online=False, last_seen=None)


def connections_key(user_id: str) -> str:
    return f"presence:{{{user_id}}}"


def last_seen_key(user_id: str) -> str:
    return f"presence:{{{user_id}}}:last_seen"


def _unique(user_ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(user_ids))


async def connect(
    redis: Redis, *, user_id: str, connection_id: str, ttl_seconds: int, now: float | None = None
) -> None:
    """Record a new live connection; also drops entries of this user that already expired."""
    await refresh(redis, [(user_id, connection_id)], ttl_seconds=ttl_seconds, now=now)


async def refresh(
    redis: Redis,
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
            pipe.set(last_seen_key(user_id), repr(now))
        await pipe.execute()


async def disconnect(
    redis: Redis, connections: Sequence[tuple[str, str]], *, now: float | None = None
) -> None:
    """Remove connections at once (clean close) and remember when their users were last seen."""
    if not connections:
        return
    now = time.time() if now is None else now
    async with redis.pipeline(transaction=False) as pipe:
        for user_id, connection_id in connections:
            pipe.zrem(connections_key(user_id), connection_id)
            pipe.set(last_seen_key(user_id), repr(now))
        await pipe.execute()


# KEYS: connection sets; ARGV[1]: now. Returns the 1-based positions of keys with a live entry.
_ONLINE_POSITIONS = """
local live_after = '(' .. ARGV[1]
local online = {}
for index, key in ipairs(KEYS) do
    if redis.call('ZCOUNT', key, live_after, '+inf') > 0 then
        online[#online + 1] = index
    end
end
return online
"""


async def online_user_ids(redis: Redis, user_ids: Sequence[str]) -> set[str]:
    """Which of these users are online? One round trip for any number of users."""
    users = _unique(user_ids)
    if not users:
        return set()
    keys = [connections_key(user_id) for user_id in users]
    positions = await redis.eval(_ONLINE_POSITIONS, len(keys), *keys, repr(time.time()))
    return {users[int(position) - 1] for position in positions}


async def presence_of(redis: Redis, user_ids: Sequence[str]) -> dict[str, PresenceInfo]:
    """Online flag and last-seen time of each user, in one round trip."""
    users = _unique(user_ids)
    if not users:
        return {}
    now = time.time()
    async with redis.pipeline(transaction=False) as pipe:
        for user_id in users:
            pipe.zcount(connections_key(user_id), f"({now!r}", "+inf")
            pipe.get(last_seen_key(user_id))
        replies = await pipe.execute()
    result: dict[str, PresenceInfo] = {}
    for index, user_id in enumerate(users):
        count, last_seen = replies[2 * index], replies[2 * index + 1]
        result[user_id] = PresenceInfo(online=bool(count), last_seen=_as_datetime(last_seen))
    return result


def _as_str(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _as_datetime(value: str | bytes | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(float(_as_str(value)), UTC)
    except ValueError:
        return None
