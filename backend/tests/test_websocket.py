"""The WebSocket hub: authentication, ping/pong, message.send/ack/new, fan-out across
connections and instances, malformed frames, idle connections and slow clients."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from prometheus_client import REGISTRY
from starlette.websockets import WebSocketState
from websockets.asyncio.client import connect

from backend.app.auth import CurrentUser
from backend.tests.conftest import API, TEST_JWT_SECRET, LiveServer, ServerFactory, bearer
from backend.tests.messaging import (
    close_code,
    create_conversation,
    eventually,
    ping,
    recv_json,
    send_message,
    send_over_ws,
    token_of,
    ws_client,
)

# Authentication


def expired_token() -> str:
    now = int(time.time())
    return jwt.encode({"sub": "alice", "exp": now - 60}, TEST_JWT_SECRET, algorithm="HS256")


def unsigned_token() -> str:
    now = int(time.time())
    return jwt.encode({"sub": "alice", "exp": now + 600}, None, algorithm="none")


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?token=",
        "?token=not-a-jwt",
        "?token="
        + jwt.encode(
            {"sub": "alice", "exp": 4102444800}, "wrong-secret-0123456789abcdef0123456789abcdef"
        ),
        "EXPIRED",
        "UNSIGNED",
    ],
    ids=["missing", "empty", "garbage", "wrong-secret", "expired", "alg-none"],
)
async def test_bad_token_is_accepted_then_closed_with_4401(server: LiveServer, query: str) -> None:
    query = {"EXPIRED": f"?token={expired_token()}", "UNSIGNED": f"?token={unsigned_token()}"}.get(
        query, query
    )

    async with connect(server.ws_url + query) as ws:
        assert await close_code(ws) == 4401


async def test_ping_gets_pong(server: LiveServer) -> None:
    async with connect(f"{server.ws_url}?token={token_of('alice')}") as ws:
        await ws.send(json.dumps({"type": "ping"}))

        assert await recv_json(ws) == {"type": "pong"}


# Sending and delivery


async def test_send_is_acked_to_the_sender_and_delivered_to_the_other_participant(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    async with ws_client(server.ws_url, "alice") as alice, ws_client(server.ws_url, "bob") as bob:
        await send_over_ws(alice, conversation["id"], "hello bob", "c-1")

        ack = await recv_json(alice)
        new = await recv_json(bob)

    assert ack["type"] == "message.ack"
    assert ack["client_msg_id"] == "c-1"
    assert ack["message"]["content"] == "hello bob"
    assert ack["message"]["sender_id"] == "alice"
    assert ack["message"]["conversation_id"] == conversation["id"]
    assert new == {"type": "message.new", "message": ack["message"]}


async def test_message_sent_over_websocket_is_stored_like_a_rest_one(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    async with ws_client(server.ws_url, "alice") as alice:
        await send_over_ws(alice, conversation["id"], "stored?", "c-1")
        ack = await recv_json(alice)

    history = await client.get(
        f"/conversations/{conversation['id']}/messages", headers=bearer("bob")
    )
    assert history.json()["messages"] == [ack["message"]]


async def test_send_reaches_the_senders_other_connection_but_not_the_sending_one(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    async with (
        ws_client(server.ws_url, "alice") as phone,
        ws_client(server.ws_url, "alice") as laptop,
    ):
        await send_over_ws(phone, conversation["id"], "from my phone", "c-1")

        ack = await recv_json(phone)
        on_laptop = await recv_json(laptop)
        await ping(phone)  # a message.new for the phone would have come before this pong

    assert ack["type"] == "message.ack"
    assert on_laptop == {"type": "message.new", "message": ack["message"]}


async def test_rest_send_reaches_every_connection_of_every_participant(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    async with (
        ws_client(server.ws_url, "alice") as alice,
        ws_client(server.ws_url, "bob") as bob_1,
        ws_client(server.ws_url, "bob") as bob_2,
    ):
        sent = await send_message(client, "alice", conversation["id"], "via REST")

        frames = [await recv_json(ws) for ws in (alice, bob_1, bob_2)]

    assert frames == [{"type": "message.new", "message": sent.json()}] * 3


async def test_non_participant_connections_receive_nothing(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    async with ws_client(server.ws_url, "alice") as alice, ws_client(server.ws_url, "eve") as eve:
        await send_over_ws(alice, conversation["id"], "secret", "c-1")
        await recv_json(alice)
        mine = await create_conversation(client, "alice", "eve")
        await send_over_ws(alice, mine["id"], "for eve", "c-2")

        first_for_eve = await recv_json(eve)

    assert first_for_eve["message"]["content"] == "for eve"


async def test_repeated_client_msg_id_is_acked_with_the_original_and_delivers_nothing(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    async with ws_client(server.ws_url, "alice") as alice, ws_client(server.ws_url, "bob") as bob:
        await send_over_ws(alice, conversation["id"], "once", "dup")
        first_ack = await recv_json(alice)
        await send_over_ws(alice, conversation["id"], "once", "dup")
        second_ack = await recv_json(alice)
        await send_over_ws(alice, conversation["id"], "next", "other")
        await recv_json(alice)

        bob_frames = [await recv_json(bob), await recv_json(bob)]

    assert second_ack == first_ack
    assert [f["message"]["content"] for f in bob_frames] == ["once", "next"]


async def test_send_without_client_msg_id_is_acked_with_null(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    async with ws_client(server.ws_url, "alice") as alice:
        await alice.send(
            json.dumps(
                {"type": "message.send", "conversation_id": conversation["id"], "content": "hi"}
            )
        )
        ack = await recv_json(alice)

    assert ack["type"] == "message.ack"
    assert ack["client_msg_id"] is None
    assert ack["message"]["client_msg_id"] is None


# Several instances


async def test_websocket_send_on_one_instance_reaches_a_client_on_another(
    start_server: ServerFactory,
) -> None:
    first, second = await start_server(), await start_server()
    async with httpx.AsyncClient(base_url=first.url + API) as http:
        conversation = await create_conversation(http, "alice", "bob")
    async with (
        ws_client(first.ws_url, "alice") as alice,
        ws_client(second.ws_url, "bob") as bob,
        ws_client(second.ws_url, "alice") as alice_elsewhere,
    ):
        await send_over_ws(bob, conversation["id"], "across", "c-1")
        ack = await recv_json(bob)

        on_first = await recv_json(alice)
        on_second = await recv_json(alice_elsewhere)

    assert on_first == {"type": "message.new", "message": ack["message"]}
    assert on_second == on_first


async def test_rest_send_on_one_instance_reaches_clients_on_another(
    start_server: ServerFactory,
) -> None:
    first, second = await start_server(), await start_server()
    async with (
        httpx.AsyncClient(base_url=second.url + API) as http,
        ws_client(first.ws_url, "alice") as alice,
        ws_client(first.ws_url, "bob") as bob,
    ):
        conversation = await create_conversation(http, "alice", "bob")
        sent = await send_message(http, "bob", conversation["id"], "hi from B")

        frames = [await recv_json(alice), await recv_json(bob)]

    assert frames == [{"type": "message.new", "message": sent.json()}] * 2


# Invalid frames: an error frame, and the connection stays usable


def send_frame(**fields: Any) -> str:
    return json.dumps({"type": "message.send", **fields})


MALFORMED = {
    "not-json": ("{nope", "invalid_json"),
    "json-array": ("[1, 2]", "invalid_frame"),
    "json-string": ('"ping"', "invalid_frame"),
    "no-type": ('{"conversation_id": "x"}', "invalid_frame"),
    "non-string-type": ('{"type": 7}', "invalid_frame"),
    "unknown-type": ('{"type": "message.delete"}', "unknown_type"),
    "oversized": (json.dumps({"type": "ping", "pad": "x" * (64 * 1024)}), "frame_too_large"),
    "binary": (b'{"type": "ping"}', "invalid_frame"),
    "send-missing-conversation": (send_frame(content="hi", client_msg_id="c"), "invalid_frame"),
    "send-bad-conversation-id": (
        send_frame(conversation_id="nope", content="hi", client_msg_id="c"),
        "invalid_frame",
    ),
    "send-empty-content": (
        send_frame(conversation_id=str(uuid.uuid4()), content="", client_msg_id="c"),
        "invalid_frame",
    ),
    "send-too-long-content": (
        send_frame(conversation_id=str(uuid.uuid4()), content="x" * 10_001, client_msg_id="c"),
        "invalid_frame",
    ),
    "send-nul-content": (
        send_frame(conversation_id=str(uuid.uuid4()), content="a\x00b", client_msg_id="c"),
        "invalid_frame",
    ),
    "send-non-string-content": (
        send_frame(conversation_id=str(uuid.uuid4()), content=42, client_msg_id="c"),
        "invalid_frame",
    ),
    "send-non-string-client-msg-id": (
        send_frame(conversation_id=str(uuid.uuid4()), content="hi", client_msg_id=5),
        "invalid_frame",
    ),
    "send-unknown-conversation": (
        send_frame(conversation_id=str(uuid.uuid4()), content="hi", client_msg_id="c"),
        "not_found",
    ),
}


@pytest.mark.parametrize("frame, code", MALFORMED.values(), ids=MALFORMED.keys())
async def test_invalid_frame_gets_an_error_frame_and_the_connection_survives(
    server: LiveServer, frame: str | bytes, code: str
) -> None:
    async with ws_client(server.ws_url, "alice") as ws:
        await ws.send(frame)

        error = await recv_json(ws)
        await ping(ws)

    assert error["type"] == "error"
    assert error["code"] == code
    assert isinstance(error["detail"], str) and error["detail"]


async def test_send_to_a_conversation_the_user_is_not_in_gets_not_found(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    async with (
        ws_client(server.ws_url, "mallory") as mallory,
        ws_client(server.ws_url, "bob") as bob,
    ):
        await send_over_ws(mallory, conversation["id"], "let me in", "m-1")
        error = await recv_json(mallory)
        await ping(bob)  # nothing was delivered to bob before this pong

    assert error == {
        "type": "error",
        "code": "not_found",
        "detail": "Conversation not found",
        "client_msg_id": "m-1",
    }
    history = await client.get(
        f"/conversations/{conversation['id']}/messages", headers=bearer("alice")
    )
    assert history.json()["messages"] == []


async def test_client_msg_id_reused_in_another_conversation_gets_conflict(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    first = await create_conversation(client, "alice", "bob")
    second = await create_conversation(client, "alice", "carol")
    async with ws_client(server.ws_url, "alice") as alice:
        await send_over_ws(alice, first["id"], "a", "k")
        await recv_json(alice)
        await send_over_ws(alice, second["id"], "a", "k")

        error = await recv_json(alice)

    assert (error["type"], error["code"]) == ("error", "conflict")


# Connection lifetime


async def test_silent_connection_is_closed_after_the_presence_ttl(
    start_server: ServerFactory,
) -> None:
    server = await start_server(presence_ttl_seconds=2)
    async with ws_client(server.ws_url, "alice") as ws:
        assert await close_code(ws) == 4408


def open_connections() -> float | None:
    return REGISTRY.get_sample_value("messenger_websocket_connections")


async def test_open_connections_are_counted_in_the_gauge(server: LiveServer) -> None:
    before = open_connections()
    async with ws_client(server.ws_url, "alice"), ws_client(server.ws_url, "bob"):
        during = open_connections()

    await eventually(lambda: open_connections() == before)
    assert during == before + 2


# A slow client never holds up the others (the hub's bounded per-connection queue)


class StuckWebSocket:
    """A client that never reads: every send blocks forever."""

    client_state = application_state = WebSocketState.CONNECTED

    def __init__(self) -> None:
        self.sent: list[str] = []
        self._messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send_text(self, frame: str) -> None:
        await asyncio.Event().wait()

    async def receive(self) -> dict[str, Any]:
        return await self._messages.get()

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        await asyncio.Event().wait()


class ReadingWebSocket(StuckWebSocket):
    async def send_text(self, frame: str) -> None:
        self.sent.append(frame)


async def test_a_client_that_cannot_keep_up_is_disconnected_without_blocking_others(
    settings: Any,
) -> None:
    from redis.asyncio import Redis

    from backend.app.messenger.realtime.hub import Hub

    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    hub = Hub(settings=settings, redis=redis, send_queue_size=4)
    await hub.start()
    stuck, reading = StuckWebSocket(), ReadingWebSocket()

    async def ignore(*_: Any) -> None:
        return None

    try:
        slow = asyncio.create_task(hub.serve(stuck, CurrentUser("bob", None, frozenset()), ignore))  # type: ignore[arg-type]
        fast = asyncio.create_task(
            hub.serve(reading, CurrentUser("bob", None, frozenset()), ignore)  # type: ignore[arg-type]
        )
        await eventually(lambda: hub.connection_count() == 2)

        for index in range(20):
            await hub.publish({"type": "message.new", "n": index}, ["bob"])
        async with asyncio.timeout(20):
            await slow  # the stuck client's connection ended

        await eventually(lambda: len(reading.sent) == 20)
        assert hub.connection_count() == 1
    finally:
        fast.cancel()
        await asyncio.gather(fast, return_exceptions=True)
        await hub.stop()
        await redis.aclose()


def test_broadcast_channel_is_per_redis_database() -> None:
    """Pub/sub ignores database numbers: services on other databases must not hear us."""
    from redis.asyncio import Redis

    from backend.app.messenger.realtime.broadcast import broadcast_channel

    assert broadcast_channel(Redis.from_url("redis://127.0.0.1:6379/0")) != broadcast_channel(
        Redis.from_url("redis://127.0.0.1:6379/3")
    )
