"""The active-users read on Redis Cluster: the script's keys span many slots, so the ids are
routed by node (one call each, in parallel), or by slot when the slot map has moved."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence

from redis.asyncio.cluster import ClusterNode
from redis.crc import key_slot
from redis.exceptions import NoScriptError, ResponseError

from backend.app.messenger.presence.active_script import ACTIVE_POSITIONS
from backend.app.messenger.presence.keys import connections_key
from backend.app.redis_client import RedisClient

log = logging.getLogger(__name__)

# The same over keys of many slots of one node, passed as ARGV[2..] (a cluster refuses declared
# KEYS of several slots before the script runs; the flag lets the script itself read them).
_ACTIVE_POSITIONS_ANY_SLOT = (
    "#!lua flags=allow-cross-slot-keys\n"
    "local KEYS = {}\n"
    "for i = 2, #ARGV do KEYS[i - 1] = ARGV[i] end\n"  # not unpack(): it stops at ~8,000
) + ACTIVE_POSITIONS
_ACTIVE_POSITIONS_SHA = hashlib.sha1(ACTIVE_POSITIONS.encode()).hexdigest()


async def active_on_cluster(redis: RedisClient, users: list[str], now: str) -> set[str]:
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
        return await active_by_slot(redis, users, now)
    return _pick(groups, replies)


async def active_by_slot(redis: RedisClient, users: list[str], now: str) -> set[str]:
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
            await redis.script_load(ACTIVE_POSITIONS)  # on every primary
    return _pick(groups, replies)


def _pick(groups: list[list[str]], replies: Sequence[Sequence[int]]) -> set[str]:
    return {
        group[int(position) - 1]
        for group, positions in zip(groups, replies, strict=True)
        for position in positions
    }
