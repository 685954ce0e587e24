"""Scenario 2 on a Redis Cluster: the API-only send load against a single Redis and against a
3-master Redis Cluster, back to back on the same data (issue 13: send figures on a cluster
beside the single-node ones).

The same closed loop as `send_load` (its `_load`: each client posts into its own conversation
and waits for the answer) against `messenger serve --no-background`, once with the run's Redis
and once with `REDIS_CLUSTER=true` on a throwaway cluster started like the test suite's
(`backend.tests.cluster_infra`, the machine's Redis 7 `redis-server`). Both runs are measured
here, one right after the other, so the ratio pairs them; the single-node figures of
`send_load` come from another window and are not used for it. Without a Redis 7 binary the
scenario is skipped (logged and recorded in the diagnostics), as the tests skip.
"""

from __future__ import annotations

import asyncio

from redis.asyncio.cluster import RedisCluster

from backend.app.redis_client import create_redis
from backend.tests import cluster_infra
from bench.context import Bench
from bench.report import Figure
from bench.send_load import SCENARIO, _load, create_load_conversations, window_figures
from bench.stack import CpuMeter, discard_push_backlog, log, service_settings, start_service

SINGLE = "api only, single Redis (paired with the cluster)"
CLUSTER = f"api only, Redis Cluster ({cluster_infra.MASTERS} masters)"
RATIO = "Redis Cluster ÷ single Redis"


async def run(bench: Bench) -> None:
    try:
        cluster = await asyncio.to_thread(cluster_infra.start)
    except cluster_infra.ClusterUnavailable as exc:
        log(f"send load on a Redis Cluster skipped: {exc}")
        bench.results.diagnose("send load on a Redis Cluster", "skipped", str(exc))
        return
    try:
        conversations = await create_load_conversations(bench, "cluster-load")
        single = await _measure(bench, conversations, SINGLE, bench.infra.redis_url, False)
        clustered = await _measure(bench, conversations, CLUSTER, cluster.url, True)
    finally:
        await asyncio.to_thread(cluster.stop)

    sizes = bench.sizes
    rate_name = f"messages/s ({sizes.load_clients} clients, {sizes.load_seconds:g} s)"
    rows = (  # (table name, unit, key, short name for the ratio row)
        (rate_name, "/s", "rate", "messages/s"),
        ("server CPU per message", "ms", "cpu_ms", "server CPU per message"),
        ("Redis CPU per message", "ms", "redis_cpu_ms", "Redis CPU per message"),
        ("POST /messages p99", "ms", "p99", "p99"),
    )
    for variant, figures in ((SINGLE, single), (CLUSTER, clustered)):
        for name, unit, key, _ in rows:
            bench.results.add(Figure(SCENARIO, variant, name, unit, [figures[key]]))
    for _, _, key, short in rows:
        if single[key] > 0:
            ratio = clustered[key] / single[key]
            bench.results.add(Figure(SCENARIO, RATIO, f"{short}, cluster ÷ single", "x", [ratio]))


async def _measure(
    bench: Bench,
    conversations: list[tuple[str, dict[str, str]]],
    mode: str,
    redis_url: str,
    cluster: bool,
) -> dict[str, float]:
    """One API-only server on `redis_url`, one closed-loop window: `window_figures` plus the
    CPU Redis itself spent per message (its own INFO counters, every master of a cluster) and,
    in the diagnostics, the commands Redis processed per message."""
    slug = "cluster" if cluster else "single"
    prefix = bench.profile_prefix(f"send-load-api-{slug}-redis")
    settings = service_settings(
        bench.infra, None, REDIS_URL=redis_url, REDIS_CLUSTER="true" if cluster else "false"
    )
    service = await start_service(
        "serve",
        settings,
        bench.workdir,
        name=f"load-api-{slug}-redis",
        background=False,
        profile_path=prefix,
    )
    try:
        cpu_before, commands_before = await _redis_counters(redis_url, cluster)
        with CpuMeter(service=service.pid) as meter:
            latencies, errors, window, _ = await _load(bench, service, conversations, mode, meter)
        cpu_after, commands_after = await _redis_counters(redis_url, cluster)
        redis_seconds = cpu_after - cpu_before
        meter.seconds["redis"] = round(redis_seconds, 3)
        bench.results.diagnose("send load cpu seconds", mode, meter.seconds)
        per_message = (commands_after - commands_before) / max(1, len(latencies))
        bench.results.diagnose("send load redis commands per message", mode, per_message)
        log(f"  cpu s during {mode}: {meter.summary()}")
        if prefix is not None:
            await bench.collect_profile(prefix, 1, f"send-load-api-{slug}-redis")
    finally:
        await service.stop()
        await discard_push_backlog(bench.db)  # the API-only server leaves every job queued
    if not latencies:
        raise RuntimeError(f"{mode}: no request completed")
    if errors:
        raise RuntimeError(f"{mode}: {len(errors)} requests failed, first: {errors[0]}")
    figures = window_figures(latencies, window, meter.seconds)
    figures["redis_cpu_ms"] = redis_seconds * 1000 / len(latencies)
    log(
        f"send load, {mode}: {figures['rate']:.0f} msg/s, server CPU "
        f"{figures['cpu_ms']:.2f} ms/msg, Redis CPU {figures['redis_cpu_ms']:.3f} ms/msg, "
        f"p99 {figures['p99']:.0f} ms"
    )
    return figures


async def _redis_counters(url: str, cluster: bool) -> tuple[float, int]:
    """CPU seconds (user + system) and commands Redis has processed since it started, summed
    over the masters of a cluster. A shared single Redis counts every client's work too."""
    redis = create_redis(url, cluster=cluster)
    try:
        if isinstance(redis, RedisCluster):
            per_node = await redis.info(target_nodes=RedisCluster.PRIMARIES)
            infos = list(per_node.values())
        else:
            infos = [await redis.info()]
    finally:
        await redis.aclose()
    cpu = sum(float(i["used_cpu_user"]) + float(i["used_cpu_sys"]) for i in infos)
    return cpu, sum(int(i["total_commands_processed"]) for i in infos)
