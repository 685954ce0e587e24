"""Reading a conversation silently clears its pushes on the reader's devices they reached."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import httpx
from sqlalchemy import text

from backend.app.db import autocommit, create_engine, create_sessionmaker
from backend.app.messenger.push.clear_on_read import enqueue_sender_clear
from backend.devtools.emulators.base import Received
from backend.tests.conftest import LiveServer, Providers, bearer
from backend.tests.messaging import (
    create_conversation,
    eventually,
    send_message,
    ws_client,
)
from backend.tests.push_helpers import register, register_all_providers

SETTLE_SECONDS = 0.7  # how long "nothing arrives" is watched for (several sweep intervals)
BOB_FCM = "fcm-bob-phone-" + "x" * 32


async def read(client: httpx.AsyncClient, user: str, conversation_id: str, up_to: str) -> None:
    response = await client.post(
        f"/conversations/{conversation_id}/read", json={"up_to": up_to}, headers=bearer(user)
    )
    assert response.status_code == 200, response.text


async def pushed_devices_recorded(client: httpx.AsyncClient, user: str, count: int) -> None:
    """Wait until `count` of the user's devices have a recorded successful push."""

    async def recorded() -> bool:
        devices = (await client.get("/devices", headers=bearer(user))).json()["devices"]
        return sum(d["last_used_at"] is not None for d in devices) >= count

    await eventually(recorded)


def clears(pushes: list[Received]) -> list[Received]:
    return [p for p in pushes if _data(p).get("type") == "conversation.read"]


def _data(push: Received) -> dict[str, Any]:
    return push.payload.get("data", push.payload)


async def test_read_sends_each_pushed_device_one_silent_push_of_the_contract_shape(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "bob")
    conversation = await create_conversation(push_client, "alice", "bob")
    message = (await send_message(push_client, "alice", conversation["id"], "Hi")).json()
    await pushed_devices_recorded(push_client, "bob", 3)

    await read(push_client, "bob", conversation["id"], message["id"])

    data = {
        "type": "conversation.read",
        "conversation_id": conversation["id"],
        "last_read_message_id": message["id"],
    }
    fcm_push = (await asyncio.to_thread(providers.fcm.wait_for, 2))[1]
    assert "notification" not in fcm_push.payload
    assert fcm_push.payload["android"] == {"priority": "normal"}
    assert fcm_push.payload["data"] == {**data, "unread_total": "0"}
    apns_push = (await asyncio.to_thread(providers.apns.wait_for, 2))[1]
    assert apns_push.headers["apns-push-type"] == "background"
    assert apns_push.headers["apns-priority"] == "5"
    assert apns_push.payload == {"aps": {"content-available": 1, "badge": 0}, **data}
    web_push = (await asyncio.to_thread(providers.webpush.wait_for, 2))[1]
    assert web_push.payload == {
        "type": "conversation.read",
        "data": {**data, "unread_total": "0"},
    }
    assert web_push.headers["urgency"] == "normal"


async def test_clear_push_carries_what_is_still_unread_elsewhere(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register(
        push_client, "bob", {"device_token": BOB_FCM, "platform": "android", "provider": "fcm"}
    )
    team = await create_conversation(push_client, "alice", "bob")
    other = await create_conversation(push_client, "carol", "bob")
    await send_message(push_client, "carol", other["id"], "still unread")
    message = (await send_message(push_client, "alice", team["id"], "Hi")).json()
    await asyncio.to_thread(providers.fcm.wait_for, 2)
    await pushed_devices_recorded(push_client, "bob", 1)

    await read(push_client, "bob", team["id"], message["id"])

    pushes = await asyncio.to_thread(providers.fcm.wait_for, 3)
    assert [_data(p)["unread_total"] for p in clears(pushes)] == ["1"]


async def test_only_devices_the_message_push_reached_get_the_clear_push(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register(
        push_client, "bob", {"device_token": BOB_FCM, "platform": "android", "provider": "fcm"}
    )
    conversation = await create_conversation(push_client, "alice", "bob")
    message = (await send_message(push_client, "alice", conversation["id"], "Hi")).json()
    await pushed_devices_recorded(push_client, "bob", 1)
    later = await register_all_providers(push_client, providers, "bob")  # after the push

    await read(push_client, "bob", conversation["id"], message["id"])

    pushes = await asyncio.to_thread(providers.fcm.wait_for, 2)
    await asyncio.sleep(SETTLE_SECONDS)
    assert [p.key for p in clears(providers.fcm.received)] == [BOB_FCM]
    assert later.fcm_token not in {p.key for p in pushes}
    assert providers.apns.count() == providers.webpush.count() == 0


async def test_reading_messages_that_were_never_pushed_sends_nothing(
    push_server: LiveServer, push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "bob")
    conversation = await create_conversation(push_client, "alice", "bob")
    async with ws_client(push_server.ws_url, "bob"):  # online: no push
        message = (await send_message(push_client, "alice", conversation["id"], "Hi")).json()
        await asyncio.sleep(SETTLE_SECONDS)

    await read(push_client, "bob", conversation["id"], message["id"])
    await asyncio.sleep(SETTLE_SECONDS)

    assert providers.fcm.count() == providers.apns.count() == providers.webpush.count() == 0


async def test_a_burst_of_reads_coalesces_and_the_last_clear_push_has_the_latest_position(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register(
        push_client, "bob", {"device_token": BOB_FCM, "platform": "android", "provider": "fcm"}
    )
    conversation = await create_conversation(push_client, "alice", "bob")
    messages = [
        (await send_message(push_client, "alice", conversation["id"], f"m{i}")).json()["id"]
        for i in range(20)
    ]
    await asyncio.to_thread(providers.fcm.wait_for, 20)
    await pushed_devices_recorded(push_client, "bob", 1)
    await asyncio.sleep(SETTLE_SECONDS)  # the last outcomes are recorded too
    providers.fcm.latency = 0.3  # each clear push stays in flight a while

    for message_id in messages:
        await read(push_client, "bob", conversation["id"], message_id)

    async def latest_arrived() -> bool:
        sent = clears(providers.fcm.received)
        return bool(sent) and _data(sent[-1])["last_read_message_id"] == messages[-1]

    await eventually(latest_arrived)
    await asyncio.sleep(SETTLE_SECONDS)
    sent = clears(providers.fcm.received)
    assert _data(sent[-1])["last_read_message_id"] == messages[-1]
    assert _data(sent[-1])["unread_total"] == "0"
    assert len(sent) < len(messages)  # coalesced: fewer pushes than reads
    # At most one in flight: each answer comes a full latency after the previous one.
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(sent)]
    assert all(gap >= 0.25 for gap in gaps), gaps


async def _bob_pushed_once(push_client: httpx.AsyncClient, providers: Providers) -> str:
    """Bob's phone got Alice's message as a push; returns the conversation id."""
    await register(
        push_client, "bob", {"device_token": BOB_FCM, "platform": "android", "provider": "fcm"}
    )
    conversation = await create_conversation(push_client, "alice", "bob")
    await send_message(push_client, "alice", conversation["id"], "Hi")
    await asyncio.to_thread(providers.fcm.wait_for, 1)
    await pushed_devices_recorded(push_client, "bob", 1)
    return conversation["id"]


async def _bob_replied(push_client: httpx.AsyncClient, providers: Providers) -> tuple[str, str]:
    """Bob replied to Alice's pushed message and his phone got the reply's clear push;
    returns the conversation and the reply."""
    conversation_id = await _bob_pushed_once(push_client, providers)
    reply = (await send_message(push_client, "bob", conversation_id, "Hello")).json()
    await asyncio.to_thread(providers.fcm.wait_for, 2)
    return conversation_id, reply["id"]


async def _sender_clear_of_reply(
    server: LiveServer, conversation_id: str, reply_id: str, *, range_back: bool
) -> tuple[int | None, tuple[str, int] | None]:
    """Run the reply's fan-out step that queues Bob's clear (again, as if redone; with
    `range_back`, as if it came only now: the job's range is put back first). Returns the
    clear job queued and its (last_read_message_id, read_to_seq)."""
    put_back = "UPDATE push_jobs SET read_from_seq = 0, read_to_seq = 2 WHERE message_id = :id"
    engine = create_engine(server.settings.database_url, pool_size=1)
    try:
        async with autocommit(create_sessionmaker(engine)) as session:
            if range_back:
                await session.execute(text(put_back), {"id": reply_id})
            job_id = (
                await session.execute(
                    text("SELECT id FROM push_jobs WHERE message_id = :id"), {"id": reply_id}
                )
            ).scalar_one()
            queued = await enqueue_sender_clear(
                session, job_id=job_id, sender_id="bob", conversation_id=uuid.UUID(conversation_id)
            )
            if queued is None:
                return None, None
            row = (
                await session.execute(
                    text(
                        "SELECT data->>'last_read_message_id', read_to_seq FROM push_jobs "
                        "WHERE id = :id"
                    ),
                    {"id": queued},
                )
            ).one()
            return queued, (row[0], row[1])
    finally:
        await engine.dispose()


async def test_a_reply_clears_the_pushes_it_passed_on_the_senders_devices(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    conversation_id = await _bob_pushed_once(push_client, providers)

    reply = (await send_message(push_client, "bob", conversation_id, "Hello")).json()

    pushes = await asyncio.to_thread(providers.fcm.wait_for, 2)
    assert [p.key for p in clears(pushes)] == [BOB_FCM]
    assert _data(clears(pushes)[0])["last_read_message_id"] == reply["id"]


async def test_a_send_after_the_senders_own_message_sends_no_clear_push(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    conversation_id = await _bob_pushed_once(push_client, providers)
    await send_message(push_client, "bob", conversation_id, "Hello")
    await asyncio.to_thread(providers.fcm.wait_for, 2)  # the reply's clear push

    await send_message(push_client, "bob", conversation_id, "Anyone?")

    await asyncio.sleep(SETTLE_SECONDS)
    assert len(clears(providers.fcm.received)) == 1


async def test_a_replys_fan_out_redone_queues_the_senders_clear_only_once(
    push_server: LiveServer, push_client: httpx.AsyncClient, providers: Providers
) -> None:
    conversation_id, reply_id = await _bob_replied(push_client, providers)

    again, _ = await _sender_clear_of_reply(
        push_server, conversation_id, reply_id, range_back=False
    )

    assert again is None
    await asyncio.sleep(SETTLE_SECONDS)
    assert len(clears(providers.fcm.received)) == 1


async def test_a_replys_clear_queued_after_later_reads_carries_the_senders_position_now(
    push_server: LiveServer, push_client: httpx.AsyncClient, providers: Providers
) -> None:
    conversation_id, reply_id = await _bob_replied(push_client, providers)
    later = (await send_message(push_client, "alice", conversation_id, "And?")).json()
    await read(push_client, "bob", conversation_id, later["id"])  # bob reads on

    queued, position = await _sender_clear_of_reply(
        push_server, conversation_id, reply_id, range_back=True
    )

    assert queued is not None
    assert position == (later["id"], 3)
