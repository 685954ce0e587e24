"""Scenario 3: "which of these 10,000 users are online?" (`online_user_ids`).

10 % of the ids get a live connection (written with the app's own `presence.refresh`),
then `online_user_ids` is timed over repeated calls with the app's Redis client settings.
The number of Redis round trips per call is counted at the connection (packed command
writes), to show it is one whatever the number of users.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from redis.asyncio.connection import AbstractConnection

from backend.app.main import create_redis
from backend.app.messenger import presence
from bench.context import Bench
from bench.report import Figure
from bench.stack import log

SCENARIO = "3 presence"


@contextlib.contextmanager
def count_round_trips() -> Iterator[list[int]]:
    """Counts writes of packed commands to Redis (a pipeline sends all of them in one)."""
    counter = [0]
    original = AbstractConnection.send_packed_command

    async def counting(self, command, check_health=True):  # type: ignore[no-untyped-def]
        counter[0] += 1
        return await original(self, command, check_health)

    AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


async def run(bench: Bench) -> None:
    sizes = bench.sizes
    ids = bench.users("presence", sizes.presence_ids)
    online = ids[:: round(1 / sizes.presence_online_share)]
    redis = create_redis(bench.infra.redis_url)
    bench.redis_keys += [presence.connections_key(u) for u in online]
    bench.redis_keys += [presence.last_seen_key(u) for u in online]
    try:
        await presence.refresh(redis, [(u, f"bench-conn-{u}") for u in online], ttl_seconds=600)
        for _ in range(3):  # warm-up: connection pool, code paths
            found = await presence.online_user_ids(redis, ids)
        if found != set(online):
            raise RuntimeError(f"online_user_ids found {len(found)} online, expected {len(online)}")
        timings = []
        for _ in range(sizes.presence_calls):
            started = time.perf_counter()
            await presence.online_user_ids(redis, ids)
            timings.append((time.perf_counter() - started) * 1000)
        with count_round_trips() as writes:
            await presence.online_user_ids(redis, ids)
    finally:
        await redis.aclose()
    log(f"presence: median {sorted(timings)[len(timings) // 2]:.2f} ms, {writes[0]} round trip(s)")
    variant = f"{len(ids):,} ids, {len(online):,} online"
    bench.results.add(
        Figure(
            SCENARIO,
            variant,
            f"online_user_ids time ({sizes.presence_calls} calls)",
            "ms",
            timings,
        )
    )
    bench.results.add(
        Figure(
            SCENARIO,
            variant,
            "Redis round trips per call",
            "",
            [float(writes[0])],
            target="1",
            met=writes[0] == 1,
        )
    )


async def cleanup(bench: Bench) -> None:
    """Delete the Redis keys this run created (Redis is shared; it is never flushed)."""
    if not bench.redis_keys:
        return
    redis = create_redis(bench.infra.redis_url)
    try:
        for start in range(0, len(bench.redis_keys), 1000):
            await redis.delete(*bench.redis_keys[start : start + 1000])
    finally:
        await redis.aclose()
    bench.redis_keys.clear()
