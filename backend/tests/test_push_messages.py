"""A sent message pushes every offline, unmuted, push-enabled recipient on all their devices."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx

from backend.devtools.providers import Providers
from backend.tests.conftest import LiveServer, ServerFactory, bearer
from backend.tests.messaging import create_conversation, send_message, send_over_ws, ws_client
from backend.tests.push_helpers import register_all_providers

SETTLE_SECONDS = 0.7  # how long "nothing arrives" is watched for (several sweep intervals)


async def settle() -> None:
    await asyncio.sleep(SETTLE_SECONDS)


async def test_offline_recipient_gets_all_three_pushes_with_the_contract_payload(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    bob = await register_all_providers(push_client, providers, "bob")
    conversation = await create_conversation(push_client, "alice", "bob", title="Team")

    response = await send_message(push_client, "alice", conversation["id"], "Lunch?", name="Alice")

    assert response.status_code == 201
    message = response.json()
    data = {
        "type": "message.new",
        "conversation_id": conversation["id"],
        "message_id": message["id"],
        "sender_id": "alice",
    }
    fcm_push = (await asyncio.to_thread(providers.fcm.wait_for, 1))[0]
    assert fcm_push.key == bob.fcm_token
    assert fcm_push.payload["notification"] == {"title": "Alice • Team", "body": "Lunch?"}
    assert fcm_push.payload["data"] == {**data, "unread_total": "1"}
    assert fcm_push.payload["android"]["priority"] == "high"

    apns_push = (await asyncio.to_thread(providers.apns.wait_for, 1))[0]
    assert apns_push.key == bob.apns_token
    assert apns_push.headers["apns-topic"] == providers.apns.topic
    assert apns_push.headers["apns-push-type"] == "alert"
    assert apns_push.headers["apns-priority"] == "10"
    assert apns_push.payload == {
        "aps": {
            "alert": {"title": "Alice • Team", "body": "Lunch?"},
            "sound": "default",
            "badge": 1,
            "thread-id": conversation["id"],
        },
        **data,
    }

    web_push = (await asyncio.to_thread(providers.webpush.wait_for, 1))[0]
    assert web_push.key == bob.endpoint
    assert web_push.payload == {
        "title": "Alice • Team",
        "body": "Lunch?",
        "data": {**data, "unread_total": "1"},
    }
    assert web_push.headers["ttl"] == "86400"
    assert web_push.headers["urgency"] == "high"


async def test_title_is_the_sender_name_alone_without_a_conversation_title(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "bob")
    conversation = await create_conversation(push_client, "alice", "bob")

    await send_message(push_client, "alice", conversation["id"], "Hi")

    push = (await asyncio.to_thread(providers.fcm.wait_for, 1))[0]
    assert push.payload["notification"]["title"] == "alice"  # no `name` claim: the user id


async def test_online_recipient_and_sender_get_no_push(
    push_server: LiveServer, push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "alice")
    await register_all_providers(push_client, providers, "bob")
    conversation = await create_conversation(push_client, "alice", "bob")

    async with ws_client(push_server.ws_url, "bob"):
        await send_message(push_client, "alice", conversation["id"], "You there?")
        await settle()

    assert providers.fcm.count() == providers.apns.count() == providers.webpush.count() == 0


async def test_muted_conversation_sends_no_push(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "bob")
    conversation = await create_conversation(push_client, "alice", "bob")
    settings_url = f"/conversations/{conversation['id']}/notification-settings"
    await push_client.put(settings_url, json={"muted": True}, headers=bearer("bob"))

    await send_message(push_client, "alice", conversation["id"], "Shh")
    await settle()

    assert providers.fcm.count() == providers.apns.count() == providers.webpush.count() == 0


async def test_push_disabled_conversation_sends_no_push(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "bob")
    conversation = await create_conversation(push_client, "alice", "bob")
    settings_url = f"/conversations/{conversation['id']}/notification-settings"
    await push_client.put(settings_url, json={"push_enabled": False}, headers=bearer("bob"))

    await send_message(push_client, "alice", conversation["id"], "Quiet")
    await settle()

    assert providers.fcm.count() == providers.apns.count() == providers.webpush.count() == 0


async def test_expired_mute_pushes_again(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "bob")
    conversation = await create_conversation(push_client, "alice", "bob")
    settings_url = f"/conversations/{conversation['id']}/notification-settings"
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    await push_client.put(
        settings_url, json={"muted": True, "muted_until": past}, headers=bearer("bob")
    )

    await send_message(push_client, "alice", conversation["id"], "Back?")

    assert len(await asyncio.to_thread(providers.fcm.wait_for, 1)) == 1


async def test_message_sent_over_websocket_pushes_offline_recipients(
    push_server: LiveServer, push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "bob")
    conversation = await create_conversation(push_client, "alice", "bob")

    async with ws_client(push_server.ws_url, "alice", name="Alice") as ws:
        await send_over_ws(ws, conversation["id"], "From the socket", "c-1")
        ack = json.loads(await ws.recv())
        assert ack["type"] == "message.ack"

    push = (await asyncio.to_thread(providers.webpush.wait_for, 1))[0]
    assert push.payload["body"] == "From the socket"
    assert push.payload["data"]["message_id"] == ack["message"]["id"]


async def test_repeated_client_msg_id_pushes_only_once(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "bob")
    conversation = await create_conversation(push_client, "alice", "bob")

    for _ in range(3):
        await send_message(push_client, "alice", conversation["id"], "Once", client_msg_id="m-1")
    await asyncio.to_thread(providers.fcm.wait_for, 1)
    await settle()

    assert providers.fcm.count() == 1


async def test_long_multibyte_message_is_cut_and_fits_every_provider(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "bob")
    conversation = await create_conversation(push_client, "alice", "bob", title="ü" * 200)
    content = "😀" * 10_000

    await send_message(push_client, "alice", conversation["id"], content, name="Ä" * 300)

    expected_body = "😀" * 199 + "…"
    assert (await asyncio.to_thread(providers.fcm.wait_for, 1))[0].payload["notification"][
        "body"
    ] == expected_body
    apns_push = (await asyncio.to_thread(providers.apns.wait_for, 1))[0]
    assert apns_push.status == 200 and apns_push.payload["aps"]["alert"]["body"] == expected_body
    web_push = (await asyncio.to_thread(providers.webpush.wait_for, 1))[0]
    assert web_push.status == 201 and web_push.payload["body"] == expected_body


async def test_content_hidden_when_push_include_content_is_false(
    start_server: ServerFactory, providers: Providers
) -> None:
    server = await start_server(**providers.settings(), push_include_content=False)
    async with httpx.AsyncClient(base_url=server.url + "/api/v1/messenger") as client:
        await register_all_providers(client, providers, "bob")
        conversation = await create_conversation(client, "alice", "bob")
        await send_message(client, "alice", conversation["id"], "secret plans")

    push = (await asyncio.to_thread(providers.fcm.wait_for, 1))[0]
    assert push.payload["notification"]["body"] == "New message"


async def test_dead_token_device_gets_nothing_afterwards(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    from backend.devtools.emulators import fcm

    bob = await register_all_providers(push_client, providers, "bob")
    providers.fcm.always(bob.fcm_token, fcm.unregistered())
    conversation = await create_conversation(push_client, "alice", "bob")

    await send_message(push_client, "alice", conversation["id"], "one")
    await asyncio.to_thread(providers.fcm.wait_for, 1)
    await asyncio.to_thread(providers.webpush.wait_for, 1)
    await settle()
    await send_message(push_client, "alice", conversation["id"], "two")
    await asyncio.to_thread(providers.webpush.wait_for, 2)
    await settle()

    assert providers.fcm.count() == 1
