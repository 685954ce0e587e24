"""Idle-aware presence: connections report `active`/`idle`; a user is active while any live
connection is active, idle while connected with all idle, else offline. Pushes skip only
active users, so an unattended desktop tab does not swallow mobile pushes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection

from backend.app.messenger import presence as presence_store
from backend.app.messenger.presence import PresenceState, state_of
from backend.tests.conftest import API, LiveServer, Providers, ServerFactory
from backend.tests.messaging import (
    create_conversation,
    eventually,
    ping,
    presence,
    send_message,
    ws_client,
)
from backend.tests.push_helpers import register_all_providers

SETTLE_SECONDS = 0.7  # how long "no push arrives" is watched for (several sweep intervals)


async def report(ws: ClientConnection, state: str) -> None:
    """Send a presence frame; the pong proves the server handled it (frames run in order)."""
    await ws.send(json.dumps({"type": "presence", "state": state}))
    await ping(ws)


async def state(client: httpx.AsyncClient, user_id: str) -> tuple[str, bool]:
    answer = (await presence(client, "alice", user_id))[user_id]
    return answer["state"], answer["online"]


# Pure rule


@pytest.mark.parametrize(
    "live, idle, expected",
    [
        ([], set(), PresenceState.OFFLINE),
        ([], {"a"}, PresenceState.OFFLINE),
        (["a"], set(), PresenceState.ACTIVE),
        (["a"], {"a"}, PresenceState.IDLE),
        (["a", "b"], {"a"}, PresenceState.ACTIVE),
        (["a", "b"], {"a", "b", "dead"}, PresenceState.IDLE),
    ],
)
def test_state_rule(live: list[str], idle: set[str], expected: PresenceState) -> None:
    assert state_of(live, idle) is expected


# GET /presence


async def test_a_new_connection_is_active(server: LiveServer, client: httpx.AsyncClient) -> None:
    await create_conversation(client, "alice", "bob")

    async with ws_client(server.ws_url, "bob"):
        assert await state(client, "bob") == ("active", True)


async def test_user_whose_only_connection_is_idle_is_idle_and_online(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    await create_conversation(client, "alice", "bob")

    async with ws_client(server.ws_url, "bob") as ws:
        await report(ws, "idle")

        assert await state(client, "bob") == ("idle", True)


async def test_presence_frame_gets_no_answer(server: LiveServer) -> None:
    async with ws_client(server.ws_url, "bob") as ws:
        await ws.send(json.dumps({"type": "presence", "state": "idle"}))

        await ping(ws)  # the pong is the very next frame


async def test_pings_do_not_make_an_idle_connection_active(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    await create_conversation(client, "alice", "bob")

    async with ws_client(server.ws_url, "bob") as ws:
        await report(ws, "idle")
        for _ in range(3):
            await ping(ws)

        assert await state(client, "bob") == ("idle", True)


async def test_reporting_active_again_makes_the_user_active(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    await create_conversation(client, "alice", "bob")

    async with ws_client(server.ws_url, "bob") as ws:
        await report(ws, "idle")
        await report(ws, "active")

        assert await state(client, "bob") == ("active", True)


async def test_one_active_connection_among_idle_ones_makes_the_user_active_across_instances(
    start_server: ServerFactory,
) -> None:
    first, second = await start_server(), await start_server()
    async with httpx.AsyncClient(base_url=first.url + API) as client:
        await create_conversation(client, "alice", "bob")
        async with (
            ws_client(first.ws_url, "bob") as desktop,
            ws_client(second.ws_url, "bob") as phone,
        ):
            await report(desktop, "idle")
            assert await state(client, "bob") == ("active", True)

            await report(phone, "idle")
            assert await state(client, "bob") == ("idle", True)

            await report(desktop, "active")
            assert await state(client, "bob") == ("active", True)


async def test_closing_the_active_connection_leaves_the_user_idle(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    await create_conversation(client, "alice", "bob")

    async with ws_client(server.ws_url, "bob") as idle_tab:
        await report(idle_tab, "idle")
        async with ws_client(server.ws_url, "bob"):
            assert await state(client, "bob") == ("active", True)

        await eventually(lambda: _is(client, "bob", ("idle", True)))


async def test_idle_user_goes_offline_when_the_connection_closes(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    await create_conversation(client, "alice", "bob")
    async with ws_client(server.ws_url, "bob") as ws:
        await report(ws, "idle")

    await eventually(lambda: _is(client, "bob", ("offline", False)))


async def _is(client: httpx.AsyncClient, user_id: str, expected: tuple[str, bool]) -> bool:
    return await state(client, user_id) == expected


# Pushes skip only active users


async def settle() -> None:
    await asyncio.sleep(SETTLE_SECONDS)


async def test_idle_recipient_is_pushed_on_all_devices(
    push_server: LiveServer, push_client: httpx.AsyncClient, providers: Providers
) -> None:
    bob = await register_all_providers(push_client, providers, "bob")
    conversation = await create_conversation(push_client, "alice", "bob")

    async with ws_client(push_server.ws_url, "bob") as forgotten_tab:
        await report(forgotten_tab, "idle")
        await send_message(push_client, "alice", conversation["id"], "Are you there?")

        fcm = await asyncio.to_thread(providers.fcm.wait_for, 1)
        apns = await asyncio.to_thread(providers.apns.wait_for, 1)
        web = await asyncio.to_thread(providers.webpush.wait_for, 1)

    assert [p.key for p in fcm] == [bob.fcm_token]
    assert [p.key for p in apns] == [bob.apns_token]
    assert [p.key for p in web] == [bob.endpoint]


async def test_active_recipient_is_not_pushed(
    push_server: LiveServer, push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "bob")
    conversation = await create_conversation(push_client, "alice", "bob")

    async with ws_client(push_server.ws_url, "bob") as ws:
        await report(ws, "idle")
        await report(ws, "active")
        await send_message(push_client, "alice", conversation["id"], "Hi")
        await settle()

    assert providers.fcm.count() == providers.apns.count() == providers.webpush.count() == 0


async def test_recipient_with_one_active_and_one_idle_connection_is_not_pushed(
    push_server: LiveServer, push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "bob")
    conversation = await create_conversation(push_client, "alice", "bob")

    async with (
        ws_client(push_server.ws_url, "bob") as desktop,
        ws_client(push_server.ws_url, "bob"),
    ):
        await report(desktop, "idle")
        await send_message(push_client, "alice", conversation["id"], "Hi")
        await settle()

    assert providers.fcm.count() == providers.apns.count() == providers.webpush.count() == 0


async def test_recipient_with_every_connection_idle_is_pushed(
    push_server: LiveServer, push_client: httpx.AsyncClient, providers: Providers
) -> None:
    bob = await register_all_providers(push_client, providers, "bob")
    conversation = await create_conversation(push_client, "alice", "bob")

    async with (
        ws_client(push_server.ws_url, "bob") as desktop,
        ws_client(push_server.ws_url, "bob") as laptop,
    ):
        await report(desktop, "idle")
        await report(laptop, "idle")
        await send_message(push_client, "alice", conversation["id"], "Hi")

        fcm = await asyncio.to_thread(providers.fcm.wait_for, 1)

    assert [p.key for p in fcm] == [bob.fcm_token]


# The store functions the push fan-out uses


@pytest.fixture
async def redis(settings: Any) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def test_fan_out_presence_counts_only_active_users_as_online(redis: Redis) -> None:
    for user_id in ("at_desk", "away", "mixed"):
        await presence_store.connect(
            redis, user_id=user_id, connection_id=f"{user_id}:1", ttl_seconds=60
        )
    await presence_store.connect(redis, user_id="mixed", connection_id="mixed:2", ttl_seconds=60)
    for user_id, connection_id in (("away", "away:1"), ("mixed", "mixed:1")):
        await presence_store.set_connection_state(
            redis,
            user_id=user_id,
            connection_id=connection_id,
            state=presence_store.ConnectionState.IDLE,
            ttl_seconds=60,
        )

    online = await presence_store.online_user_ids(redis, ["at_desk", "away", "mixed", "never"])

    assert online == {"at_desk", "mixed"}


async def test_an_idle_connection_that_expired_leaves_the_user_offline(redis: Redis) -> None:
    await presence_store.connect(
        redis, user_id="bob", connection_id="dead", ttl_seconds=60, now=0.0
    )
    await presence_store.set_connection_state(
        redis,
        user_id="bob",
        connection_id="dead",
        state=presence_store.ConnectionState.IDLE,
        ttl_seconds=60,
    )

    answer = await presence_store.presence_of(redis, ["bob"])

    assert answer["bob"].state is PresenceState.OFFLINE
    assert await presence_store.online_user_ids(redis, ["bob"]) == set()


def test_idle_key_shares_the_users_cluster_hash_tag_and_extends_the_connection_key() -> None:
    # The active-users Lua script derives the idle key from the connection key.
    assert presence_store.idle_key("bob") == "presence:{bob}:idle"
    assert presence_store.idle_key("bob") == presence_store.connections_key("bob") + ":idle"
