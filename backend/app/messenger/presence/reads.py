"""The batch reads: who of these is active (the push fan-out's question) and each user's
state with last-seen time (`GET /presence`)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from backend.app.messenger.presence.active_script import ACTIVE_POSITIONS
from backend.app.messenger.presence.cluster_reads import active_on_cluster
from backend.app.messenger.presence.keys import connections_key, idle_key, last_seen_key
from backend.app.messenger.presence.states import PresenceInfo, state_of
from backend.app.redis_client import RedisClient, is_cluster


def _unique(user_ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(user_ids))


async def active_user_ids(redis: RedisClient, user_ids: Sequence[str]) -> set[str]:
    """Which of these users are `active` (a live connection not reported idle)?
    One round trip for any number of users (on a cluster: one per node, in parallel)."""
    users = _unique(user_ids)
    if not users:
        return set()
    now = repr(time.time())
    if not is_cluster(redis):
        keys = [connections_key(user_id) for user_id in users]
        positions = await redis.eval(ACTIVE_POSITIONS, len(keys), *keys, now)
        return {users[int(position) - 1] for position in positions}
    return await active_on_cluster(redis, users, now)


async def online_user_ids(redis: RedisClient, user_ids: Sequence[str]) -> set[str]:
    """The users the push fan-out skips as `online`: the ACTIVE ones, not the idle ones
    (an idle desktop tab must not swallow mobile pushes). One round trip."""
    return await active_user_ids(redis, user_ids)


async def presence_of(redis: RedisClient, user_ids: Sequence[str]) -> dict[str, PresenceInfo]:
    """State and last-seen time of each user, in one round trip."""
    users = _unique(user_ids)
    if not users:
        return {}
    now = time.time()
    async with redis.pipeline(transaction=False) as pipe:
        for user_id in users:
            pipe.zrangebyscore(connections_key(user_id), f"({now!r}", "+inf")
            pipe.smembers(idle_key(user_id))
            pipe.get(last_seen_key(user_id))
        replies = await pipe.execute()
    result: dict[str, PresenceInfo] = {}
    for index, user_id in enumerate(users):
        live, idle, last_seen = replies[3 * index : 3 * index + 3]
        state = state_of(map(_as_str, live), {_as_str(member) for member in idle})
        result[user_id] = PresenceInfo(state=state, last_seen=_as_datetime(last_seen))
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
