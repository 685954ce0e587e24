"""`python -m bench.cluster_presence [REDIS_URL]`: "which of these 10,000 users are active?"
on a single Redis (REDIS_URL, default redis://127.0.0.1:6379/0) and on a throwaway 3-master
Redis Cluster started like the test suite's, side by side. Standalone (not part of `make
bench`): it needs a Redis 7 `redis-server` and `redis-cli` on the machine."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from backend.app.messenger import presence
from backend.app.redis_client import create_redis
from backend.tests import cluster_infra

IDS, ONLINE_EVERY, CALLS = 10_000, 10, 20


async def measure(url: str, *, cluster: bool) -> list[float]:
    redis = create_redis(url, cluster=cluster)
    ids = [f"bench-cluster-{number}" for number in range(IDS)]
    online = ids[::ONLINE_EVERY]
    keys = [presence.connections_key(u) for u in online] + [
        presence.last_seen_key(u) for u in online
    ]
    try:
        await presence.refresh(redis, [(u, f"conn-{u}") for u in online], ttl_seconds=600)
        for _ in range(3):  # warm-up
            if await presence.online_user_ids(redis, ids) != set(online):
                raise RuntimeError("presence read found the wrong users")
        timings = []
        for _ in range(CALLS):
            started = time.perf_counter()
            await presence.online_user_ids(redis, ids)
            timings.append((time.perf_counter() - started) * 1000)
        return timings
    finally:
        for key in keys:  # one slot each on a cluster: no multi-key DEL
            await redis.delete(key)
        await redis.aclose()


def main() -> None:
    single_url = sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0"
    cluster = cluster_infra.start()
    try:
        for name, url, is_cluster in (
            ("single Redis", single_url, False),
            ("3-master cluster", cluster.url, True),
        ):
            timings = asyncio.run(measure(url, cluster=is_cluster))
            print(
                f"{name:>18}: {IDS:,} ids, {IDS // ONLINE_EVERY:,} online: median "
                f"{statistics.median(timings):.1f} ms, min {min(timings):.1f}, "
                f"max {max(timings):.1f} ({CALLS} calls)"
            )
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
