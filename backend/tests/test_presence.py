"""Presence: online while a connection is alive on any instance, offline at once on a clean
disconnect, offline after the TTL when the server process dies; batch lookups in one round
trip; `GET /presence` only reveals users who share a conversation with the caller."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from backend.app.messenger import presence as presence_store
from backend.tests.conftest import API, TEST_JWT_SECRET, LiveServer, ServerFactory, bearer
from backend.tests.messaging import (
    close_code,
    create_conversation,
    eventually,
    ping,
    presence,
    ws_client,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


async def is_online(client: httpx.AsyncClient, caller: str, user_id: str) -> bool:
    return (await presence(client, caller, user_id))[user_id]["online"]


async def test_user_is_online_while_connected(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    await create_conversation(client, "alice", "bob")

    async with ws_client(server.ws_url, "bob"):
        answer = await presence(client, "alice", "bob")

    assert answer["bob"]["online"] is True


async def test_user_who_never_connected_is_offline_without_last_seen(
    client: httpx.AsyncClient,
) -> None:
    await create_conversation(client, "alice", "bob")

    answer = await presence(client, "alice", "bob")

    assert answer == {"bob": {"online": False, "state": "offline", "last_seen": None}}


async def test_user_is_offline_right_after_a_clean_disconnect_and_last_seen_is_kept(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    # The TTL (60 s) is far beyond the hang guard: only the disconnect itself can do this.
    await create_conversation(client, "alice", "bob")
    async with ws_client(server.ws_url, "bob"):
        pass

    await eventually(lambda: _offline(client, "alice", "bob"))

    last_seen = (await presence(client, "alice", "bob"))["bob"]["last_seen"]
    assert datetime.fromisoformat(last_seen).tzinfo is not None


async def _offline(client: httpx.AsyncClient, caller: str, user_id: str) -> bool:
    return not await is_online(client, caller, user_id)


async def test_user_stays_online_while_any_connection_is_open(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    await create_conversation(client, "alice", "bob")
    async with ws_client(server.ws_url, "bob") as phone:
        async with ws_client(server.ws_url, "bob"):
            pass
        await ping(phone)  # the laptop's disconnect is being processed meanwhile

        online = await is_online(client, "alice", "bob")
        await ping(phone)

    assert online is True


async def test_connection_on_one_instance_is_online_for_another(
    start_server: ServerFactory,
) -> None:
    first, second = await start_server(), await start_server()
    async with (
        httpx.AsyncClient(base_url=second.url + API) as http,
        ws_client(first.ws_url, "bob"),
    ):
        await create_conversation(http, "alice", "bob")

        assert await is_online(http, "alice", "bob") is True


async def test_stopping_a_server_takes_its_connections_offline(
    start_server: ServerFactory,
) -> None:
    leaving, staying = await start_server(), await start_server()
    async with httpx.AsyncClient(base_url=staying.url + API) as http:
        await create_conversation(http, "alice", "bob")
        async with ws_client(leaving.ws_url, "bob") as ws:
            assert await is_online(http, "alice", "bob") is True

            await leaving.stop()

            assert await close_code(ws) is not None
            assert await is_online(http, "alice", "bob") is False


async def test_heartbeats_keep_a_user_online_beyond_the_ttl(
    start_server: ServerFactory,
) -> None:
    server = await start_server(presence_ttl_seconds=2)
    async with (
        httpx.AsyncClient(base_url=server.url + API) as http,
        ws_client(server.ws_url, "bob") as ws,
    ):
        await create_conversation(http, "alice", "bob")
        observed = []
        for _ in range(8):  # 4 s: two TTLs, with a frame every half second
            await asyncio.sleep(0.5)
            await ping(ws)
            observed.append(await is_online(http, "alice", "bob"))

    assert all(observed)


async def test_silent_connection_is_closed_and_its_user_goes_offline(
    start_server: ServerFactory,
) -> None:
    server = await start_server(presence_ttl_seconds=2)
    async with httpx.AsyncClient(base_url=server.url + API) as http:
        await create_conversation(http, "alice", "bob")
        async with ws_client(server.ws_url, "bob") as ws:
            assert await close_code(ws) == 4408

        assert await is_online(http, "alice", "bob") is False


# A server process that dies without closing anything


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def serve_process(
    settings: Any, tmp_path: Path
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """A real `messenger serve` process (PRESENCE_TTL_SECONDS=2) on its own port."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "JWT_SECRET": TEST_JWT_SECRET,
        "PRESENCE_TTL_SECONDS": "2",
        "DATA_DIR": str(tmp_path / "data"),
    }
    log = (tmp_path / "serve.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "backend.app.cli", "serve", "--port", str(port)),
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    async def healthy() -> bool:
        assert process.returncode is None, (tmp_path / "serve.log").read_text()
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(base + "/health")).status_code == 200
        except httpx.TransportError:
            return False

    try:
        await eventually(healthy, interval=0.1)
        yield process, f"ws://127.0.0.1:{port}{API}/ws"
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        log.close()


async def test_user_goes_offline_after_the_ttl_when_the_server_process_is_killed(
    serve_process: tuple[asyncio.subprocess.Process, str],
    client: httpx.AsyncClient,
    settings: Any,
) -> None:
    process, ws_url = serve_process
    await create_conversation(client, "alice", "bob")
    async with ws_client(ws_url, "bob") as ws:

        async def keep_alive() -> None:
            while True:
                await asyncio.sleep(0.5)
                await ping(ws)

        pinger = asyncio.create_task(keep_alive())
        try:
            assert await is_online(client, "alice", "bob") is True
        finally:
            pinger.cancel()
            await asyncio.gather(pinger, return_exceptions=True)

        process.send_signal(signal.SIGKILL)
        await process.wait()
        # Nobody removed the entry: it has to expire by itself.
        redis = Redis.from_url(settings.redis_url)
        try:
            assert await redis.zcard(presence_store.connections_key("bob")) == 1
        finally:
            await redis.aclose()
        await eventually(lambda: _offline(client, "alice", "bob"), interval=0.2)

    assert (await presence(client, "alice", "bob"))["bob"]["last_seen"] is not None


# GET /presence: who may see whom


async def test_presence_of_a_user_without_a_shared_conversation_is_hidden(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    await create_conversation(client, "bob", "carol")

    async with ws_client(server.ws_url, "bob"):
        answer = await presence(client, "alice", "bob")

    assert answer == {"bob": {"online": False, "state": "offline", "last_seen": None}}


async def test_presence_answers_for_every_requested_user(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    await create_conversation(client, "alice", "bob", "carol")

    async with ws_client(server.ws_url, "bob"):
        answer = await presence(client, "alice", "bob", "carol", "stranger")

    assert set(answer) == {"bob", "carol", "stranger"}
    assert [answer[u]["online"] for u in ("bob", "carol", "stranger")] == [True, False, False]


async def test_callers_see_their_own_presence(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    async with ws_client(server.ws_url, "alice"):
        answer = await presence(client, "alice", "alice")

    assert answer["alice"]["online"] is True


async def test_presence_requires_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/presence", params={"user_ids": "bob"})

    assert response.status_code == 401


async def test_presence_of_more_than_1000_users_is_422(client: httpx.AsyncClient) -> None:
    ids = ",".join(f"u{i}" for i in range(1001))

    response = await client.get("/presence", params={"user_ids": ids}, headers=bearer("alice"))

    assert response.status_code == 422


# The batch functions: one Redis round trip, whatever the number of users


@pytest.fixture
async def counted_redis(settings: Any) -> AsyncIterator[tuple[Redis, dict[str, int]]]:
    """A Redis client that counts the writes it sends to the server (one per round trip)."""
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    counter = {"writes": 0}
    base = redis.connection_pool.connection_class

    class CountingConnection(base):  # type: ignore[valid-type, misc]
        async def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
            counter["writes"] += 1
            await super().send_packed_command(*args, **kwargs)

    redis.connection_pool.connection_class = CountingConnection
    await redis.ping()  # connection set-up is not part of what we count
    counter["writes"] = 0
    try:
        yield redis, counter
    finally:
        await redis.aclose()


USERS = [f"user-{i}" for i in range(10_000)]
ONLINE = {"user-7", "user-4242", "user-9999"}


async def record_online_users(redis: Redis) -> None:
    for user_id in ONLINE:
        await presence_store.connect(
            redis, user_id=user_id, connection_id=f"test:{user_id}", ttl_seconds=60
        )


async def test_online_user_ids_of_10000_users_takes_one_round_trip(
    counted_redis: tuple[Redis, dict[str, int]],
) -> None:
    redis, counter = counted_redis
    await record_online_users(redis)
    counter["writes"] = 0

    online = await presence_store.online_user_ids(redis, USERS)

    assert online == ONLINE
    assert counter["writes"] == 1


async def test_presence_of_10000_users_takes_one_round_trip(
    counted_redis: tuple[Redis, dict[str, int]],
) -> None:
    redis, counter = counted_redis
    await record_online_users(redis)
    await presence_store.disconnect(redis, [("user-7", "test:user-7")])
    counter["writes"] = 0

    answer = await presence_store.presence_of(redis, USERS)

    assert counter["writes"] == 1
    assert {u for u, info in answer.items() if info.online} == ONLINE - {"user-7"}
    assert answer["user-7"].last_seen is not None
    assert answer["user-8"] == presence_store.OFFLINE


async def test_expired_connection_entries_count_as_offline(
    counted_redis: tuple[Redis, dict[str, int]],
) -> None:
    redis, _ = counted_redis
    await presence_store.connect(
        redis, user_id="bob", connection_id="dead:1", ttl_seconds=60, now=0.0
    )

    assert await presence_store.online_user_ids(redis, ["bob"]) == set()


def test_presence_keys_of_one_user_share_a_cluster_hash_tag() -> None:
    assert presence_store.connections_key("bob") == "presence:{bob}"
    assert presence_store.last_seen_key("bob") == "presence:{bob}:last_seen"
