"""The service against a 3-master Redis Cluster (`REDIS_CLUSTER=true`): the key end-to-end
behaviours that touch Redis, each once: cross-instance WebSocket delivery over sharded pub/sub,
presence read by hash slot group, push skipped for active users only, rate limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio.cluster import RedisCluster

from backend.app.messenger import presence as presence_store
from backend.app.messenger.presence.cluster_reads import active_by_slot
from backend.app.messenger.realtime.broadcast import broadcast_channel
from backend.app.redis_client import create_redis
from backend.tests import cluster_infra
from backend.tests.conftest import API, LiveServer, Providers, ServerFactory
from backend.tests.messaging import (
    create_conversation,
    eventually,
    ping,
    presence,
    recv_json,
    send_message,
    ws_client,
)
from backend.tests.push_helpers import register_all_providers


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[cluster_infra.TestCluster]:
    try:
        cluster = cluster_infra.start()
    except cluster_infra.ClusterUnavailable as exc:
        pytest.skip(f"no Redis Cluster for these tests: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture
async def cluster_client(redis_cluster: cluster_infra.TestCluster) -> AsyncIterator[RedisCluster]:
    redis = create_redis(redis_cluster.url, cluster=True)
    assert isinstance(redis, RedisCluster)
    await redis.flushdb(target_nodes=RedisCluster.PRIMARIES)
    yield redis
    await redis.aclose()


@pytest.fixture
def on_cluster(
    start_server: ServerFactory,
    redis_cluster: cluster_infra.TestCluster,
    cluster_client: RedisCluster,
) -> ServerFactory:
    """Start servers whose Redis is the cluster."""

    async def start(**overrides: Any) -> LiveServer:
        return await start_server(redis_url=redis_cluster.url, redis_cluster=True, **overrides)

    return start


async def test_health_reports_the_cluster_ok(on_cluster: ServerFactory) -> None:
    server = await on_cluster()
    async with httpx.AsyncClient(base_url=server.url) as root:
        body = (await root.get("/health")).json()
    assert (body["status"], body["redis"]) == ("ok", "ok")


async def shard_subscribers(redis: RedisCluster) -> int:
    channel = broadcast_channel(redis)
    owner = redis.get_node_from_key(channel)  # redis-py would ask any node
    [(_, count)] = await redis.pubsub_shardnumsub(channel, target_nodes=owner)
    return int(count)


async def test_message_reaches_a_websocket_on_another_instance(
    on_cluster: ServerFactory, cluster_client: RedisCluster
) -> None:
    first, second = await on_cluster(), await on_cluster()
    await eventually(lambda: _equals(shard_subscribers(cluster_client), 2))
    async with httpx.AsyncClient(base_url=first.url + API, timeout=30) as client:
        conversation = await create_conversation(client, "alice", "bob")
        async with ws_client(second.ws_url, "bob") as bob:
            response = await send_message(client, "alice", conversation["id"], "over the shard")
            assert response.status_code == 201, response.text

            frame = await recv_json(bob)

    assert frame["type"] == "message.new"
    assert frame["message"]["content"] == "over the shard"


async def _equals(value: Any, expected: int) -> bool:
    return await value == expected


async def test_presence_reads_active_idle_and_offline(on_cluster: ServerFactory) -> None:
    server = await on_cluster()
    async with httpx.AsyncClient(base_url=server.url + API, timeout=30) as client:
        await create_conversation(client, "alice", "bob", "carol", "dave")
        async with ws_client(server.ws_url, "bob"), ws_client(server.ws_url, "carol") as carol:
            await carol.send('{"type": "presence", "state": "idle"}')
            await ping(carol)

            states = await presence(client, "alice", "bob", "carol", "dave")

    assert {user: states[user]["state"] for user in states} == {
        "bob": "active",
        "carol": "idle",
        "dave": "offline",
    }


async def test_active_users_are_found_across_many_slots(cluster_client: RedisCluster) -> None:
    users = [f"user-{number}" for number in range(300)]
    connected = users[::3]
    await presence_store.refresh(
        cluster_client, [(user, f"conn-{user}") for user in connected], ttl_seconds=60
    )

    assert await presence_store.active_user_ids(cluster_client, users) == set(connected)


async def test_per_slot_fallback_reloads_a_lost_script(cluster_client: RedisCluster) -> None:
    """The path taken when slots move mid-read, after a node lost its script cache."""
    users = [f"user-{number}" for number in range(100)]
    connected = users[::4]
    await presence_store.refresh(
        cluster_client, [(user, f"conn-{user}") for user in connected], ttl_seconds=60
    )
    await cluster_client.script_flush()

    found = await active_by_slot(cluster_client, users, repr(time.time()))

    assert found == set(connected)


async def test_push_skips_the_active_user_and_reaches_the_offline_one(
    on_cluster: ServerFactory, providers: Providers
) -> None:
    server = await on_cluster(**providers.settings())
    async with httpx.AsyncClient(base_url=server.url + API, timeout=30) as client:
        bob = await register_all_providers(client, providers, "bob")
        await register_all_providers(client, providers, "carol")
        conversation = await create_conversation(client, "alice", "bob", "carol")
        async with ws_client(server.ws_url, "carol"):
            await send_message(client, "alice", conversation["id"], "Hi")
            fcm = await asyncio.to_thread(providers.fcm.wait_for, 1)
            await asyncio.sleep(0.5)  # carol's pushes, were they sent, would have come with bob's

    assert [push.key for push in fcm] == [bob.fcm_token]
    assert providers.fcm.count() == providers.apns.count() == providers.webpush.count() == 1


async def test_message_rate_limit_holds_on_the_cluster(on_cluster: ServerFactory) -> None:
    server = await on_cluster(message_rate_per_minute=2)
    async with httpx.AsyncClient(base_url=server.url + API, timeout=30) as client:
        conversation = await create_conversation(client, "alice", "bob")
        statuses = [
            (await send_message(client, "alice", conversation["id"], f"m{n}")).status_code
            for n in range(3)
        ]
        other = await send_message(client, "bob", conversation["id"], "mine counts apart")

    assert statuses == [201, 201, 429]
    assert other.status_code == 201
