"""Presence in Redis: a user is online while at least one of their connections is alive,
and `active` (at the keyboard) while at least one live connection has not reported `idle`.

States: `active` = some live connection is active; `idle` = connected, every live connection
idle; `offline` = no live connection. A connection starts active; only the client's
`presence` frame changes that. The push fan-out skips only `active` users, so an unattended
desktop tab (idle) does not swallow mobile pushes; a lid closed mid-conversation (no clean
close) is caught by the heartbeat TTL below and the user reads offline.

Keys, per user (the `{user_id}` hash tag keeps them on one Redis Cluster slot):
- `presence:{user_id}`: sorted set of live connection ids, scored by the epoch second at
  which each entry expires unless its instance refreshes it. An instance that dies stops
  refreshing, so its connections drop out after at most the TTL without anyone cleaning up.
- `presence:{user_id}:idle`: set of the user's connection ids that reported `idle`. Only
  consulted for ids live in the sorted set, so entries of dead connections are harmless; the
  heartbeat keeps the key alive while the user has any connection, and it expires with them.
- `presence:{user_id}:last_seen`: epoch seconds of the last moment a connection of the user
  was known alive (connect, refresh, clean disconnect). Kept after the user goes offline.

Every batch function is one round trip whatever the number of users: pipelines
(transaction=False) for writes, and for the hot "who of these is online?" read a Lua script
that returns only the online users' positions, because parsing one reply per user in
redis-py costs ~20 µs each (200 ms for 10,000 users; the script takes ~30 ms). On Redis
Cluster the ids are grouped by the node owning their slot and each node gets one script call
(flag `allow-cross-slot-keys`), the nodes in parallel; see `_active_on_cluster`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from redis.asyncio.cluster import ClusterNode
from redis.crc import key_slot
from redis.exceptions import NoScriptError, ResponseError

from backend.app.redis_client import RedisClient, is_cluster

log = logging.getLogger(__name__)

# An emptied set disappears by itself; this margin keeps a key alive a little past its newest
# entry so that instance clocks a few seconds apart do not cut a live connection short.
KEY_EXPIRY_MARGIN_SECONDS = 10


class PresenceState(StrEnum):
    ACTIVE = "active"
    IDLE = "idle"
    OFFLINE = "offline"


class ConnectionState(StrEnum):
    """What a client reports about its connection (the WebSocket `presence` frame)."""

    ACTIVE = "active"
    IDLE = "idle"


@dataclass(frozen=True, slots=True)
class PresenceInfo:
    state: PresenceState
    last_seen: datetime | None

    @property
    def online(self) -> bool:
        return self.state is not PresenceState.OFFLINE


OFFLINE = PresenceInfo(state=PresenceState.OFFLINE, last_seen=None)


def state_of(live_connections: Iterable[str], idle_connections: Collection[str]) -> PresenceState:
    """Active while any live connection is not idle; idle while all are; else offline."""
    state = PresenceState.OFFLINE
    for connection_id in live_connections:
        if connection_id not in idle_connections:
            return PresenceState.ACTIVE
        state = PresenceState.IDLE
    return state


def connections_key(user_id: str) -> str:
    return f"presence:{{{user_id}}}"


def idle_key(user_id: str) -> str:
    return f"presence:{{{user_id}}}:idle"


def last_seen_key(user_id: str) -> str:
    return f"presence:{{{user_id}}}:last_seen"


def _unique(user_ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(user_ids))


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


# KEYS: connection sets; ARGV[1]: now. Returns the 1-based positions of users with a live
# connection that is not idle (`state_of` in Lua). Only users with a live connection have
# their idle set (`<connection key>:idle`, same hash tag, so same slot) looked at: passing
# those keys too would double the arguments for every offline user (measured: +60 %).
_ACTIVE_POSITIONS = """
local live_after = '(' .. ARGV[1]
local active = {}
for index, key in ipairs(KEYS) do
    local live = redis.call('ZRANGEBYSCORE', key, live_after, '+inf')
    if #live > 0 then
        local idle_key = key .. ':idle'
        for _, connection in ipairs(live) do
            if redis.call('SISMEMBER', idle_key, connection) == 0 then
                active[#active + 1] = index
                break
            end
        end
    end
end
return active
"""
# The same over keys of many slots of one node, passed as ARGV[2..] (a cluster refuses declared
# KEYS of several slots before the script runs; the flag lets the script itself read them).
_ACTIVE_POSITIONS_ANY_SLOT = (
    "#!lua flags=allow-cross-slot-keys\n"
    "local KEYS = {}\n"
    "for i = 2, #ARGV do KEYS[i - 1] = ARGV[i] end\n"  # not unpack(): it stops at ~8,000
) + _ACTIVE_POSITIONS
_ACTIVE_POSITIONS_SHA = hashlib.sha1(_ACTIVE_POSITIONS.encode()).hexdigest()


async def active_user_ids(redis: RedisClient, user_ids: Sequence[str]) -> set[str]:
    """Which of these users are `active` (a live connection not reported idle)?
    One round trip for any number of users (on a cluster: one per node, in parallel)."""
    users = _unique(user_ids)
    if not users:
        return set()
    now = repr(time.time())
    if not is_cluster(redis):
        keys = [connections_key(user_id) for user_id in users]
        positions = await redis.eval(_ACTIVE_POSITIONS, len(keys), *keys, now)
        return {users[int(position) - 1] for position in positions}
    return await _active_on_cluster(redis, users, now)


async def _active_on_cluster(redis: RedisClient, users: list[str], now: str) -> set[str]:
    """One script call per node, the nodes in parallel: the keys of a user are on one slot,
    and the `allow-cross-slot-keys` flag (Redis 7) lets one script read keys of every slot its
    node owns. Grouping by node from the client's slot map; when a slot has moved meanwhile
    (the script errs on a key its node no longer serves), the batch falls back to one script
    call per slot, routed by redis-py, which follows MOVED/ASK redirections."""
    await redis.initialize()  # type: ignore[union-attr]  # the slot map, a no-op once loaded
    nodes = redis.nodes_manager  # type: ignore[union-attr]
    by_node: dict[str, tuple[ClusterNode, list[str]]] = {}
    for user_id in users:
        node = nodes.get_node_from_slot(key_slot(connections_key(user_id).encode()))
        by_node.setdefault(node.name, (node, []))[1].append(user_id)
    groups = [group for _, group in by_node.values()]
    try:
        replies = await asyncio.gather(
            *(
                redis.execute_command(
                    "EVAL",
                    _ACTIVE_POSITIONS_ANY_SLOT,
                    0,
                    now,
                    *map(connections_key, group),
                    target_nodes=node,
                )
                for node, group in by_node.values()
            )
        )
    except ResponseError:
        log.info("presence: cluster slots moved during a batch read, reading per slot")
        return await _active_by_slot(redis, users, now)
    return _pick(groups, replies)


async def _active_by_slot(redis: RedisClient, users: list[str], now: str) -> set[str]:
    """One EVALSHA per slot group, pipelined (one round trip per node). Slower than by node
    (thousands of commands through redis-py's cluster pipeline: ~1 s for 10,000 ids) but
    immune to slot moves. A node that lost its script cache gets the script again."""
    by_slot: dict[int, list[str]] = {}
    for user_id in users:
        by_slot.setdefault(key_slot(connections_key(user_id).encode()), []).append(user_id)
    groups = list(by_slot.values())
    for attempt in (1, 2):
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for group in groups:
                    keys = [connections_key(user_id) for user_id in group]
                    # execute_command: redis-py blocks `pipe.evalsha` on a cluster pipeline for
                    # want of a routing rule, but routes the raw command by its keys' slot.
                    pipe.execute_command("EVALSHA", _ACTIVE_POSITIONS_SHA, len(keys), *keys, now)
                replies = await pipe.execute()
            break
        except NoScriptError:
            if attempt == 2:
                raise
            await redis.script_load(_ACTIVE_POSITIONS)  # on every primary
    return _pick(groups, replies)


def _pick(groups: list[list[str]], replies: Sequence[Sequence[int]]) -> set[str]:
    return {
        group[int(position) - 1]
        for group, positions in zip(groups, replies, strict=True)
        for position in positions
    }


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
