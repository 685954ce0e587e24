"""Conversation rules of the hardening contract: leaving, MAX_PARTICIPANTS, pages of the
conversation list, and the per-user rate limits for creating/adding and for sending."""

from __future__ import annotations

from typing import Any

import httpx

from backend.tests.conftest import API, LiveServer, ServerFactory, bearer
from backend.tests.messaging import (
    create_conversation,
    recv_json,
    send_message,
    send_over_ws,
    ws_client,
)

# Leaving


async def test_leaving_answers_left_true_and_the_conversation_becomes_404(
    client: httpx.AsyncClient,
) -> None:
    conversation = await create_conversation(client, "alice", "bob")

    response = await client.delete(
        f"/conversations/{conversation['id']}/participants/me", headers=bearer("bob")
    )

    assert response.status_code == 200
    assert response.json() == {"left": True}
    gone = await client.get(f"/conversations/{conversation['id']}", headers=bearer("bob"))
    assert gone.status_code == 404
    mine = await client.get(f"/conversations/{conversation['id']}", headers=bearer("alice"))
    assert mine.json()["participant_ids"] == ["alice"]
    listed = await client.get("/conversations", headers=bearer("bob"))
    assert listed.json()["conversations"] == []


async def test_who_left_gets_no_message_new(server: LiveServer, client: httpx.AsyncClient) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    other = await create_conversation(client, "alice", "bob")
    async with ws_client(server.ws_url, "bob") as bob:
        await client.delete(
            f"/conversations/{conversation['id']}/participants/me", headers=bearer("bob")
        )
        await send_message(client, "alice", conversation["id"], "after you left")
        await send_message(client, "alice", other["id"], "still here")

        frame = await recv_json(bob)  # the first frame bob gets is from the other conversation

    assert frame["message"]["conversation_id"] == other["id"]


async def test_leaving_a_conversation_you_are_not_in_is_404(client: httpx.AsyncClient) -> None:
    conversation = await create_conversation(client, "alice", "bob")

    response = await client.delete(
        f"/conversations/{conversation['id']}/participants/me", headers=bearer("mallory")
    )

    assert response.status_code == 404


async def test_who_left_can_be_added_again(client: httpx.AsyncClient) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    await client.delete(
        f"/conversations/{conversation['id']}/participants/me", headers=bearer("bob")
    )

    response = await client.post(
        f"/conversations/{conversation['id']}/participants",
        json={"user_ids": ["bob"]},
        headers=bearer("alice"),
    )

    assert response.json()["participant_ids"] == ["alice", "bob"]


# MAX_PARTICIPANTS


async def test_a_create_past_max_participants_is_422_and_creates_nothing(
    start_server: ServerFactory, sql: Any
) -> None:
    server = await start_server(max_participants=3)
    async with httpx.AsyncClient(base_url=server.url + API) as http:
        response = await http.post(
            "/conversations",
            json={"participant_ids": ["b", "c", "d"]},
            headers=bearer("a"),
        )
    assert response.status_code == 422
    assert await sql.fetchval("SELECT count(*) FROM conversations") == 0


async def test_an_add_past_max_participants_is_422_and_adds_nobody(
    start_server: ServerFactory,
) -> None:
    server = await start_server(max_participants=3)
    async with httpx.AsyncClient(base_url=server.url + API) as http:
        conversation = await create_conversation(http, "a", "b")
        too_many = await http.post(
            f"/conversations/{conversation['id']}/participants",
            json={"user_ids": ["c", "d"]},
            headers=bearer("a"),
        )
        up_to_cap = await http.post(
            f"/conversations/{conversation['id']}/participants",
            json={"user_ids": ["c", "b"]},
            headers=bearer("a"),
        )
    assert too_many.status_code == 422
    assert up_to_cap.json()["participant_ids"] == ["a", "b", "c"]


# Pages of the conversation list


async def test_conversations_come_in_pages_newest_activity_first(
    client: httpx.AsyncClient,
) -> None:
    created = [await create_conversation(client, "alice", f"u{i}") for i in range(5)]
    await send_message(client, "alice", created[1]["id"], "bump")  # now the most recent
    expected = [created[1]["id"], created[4]["id"], created[3]["id"], created[2]["id"]]
    expected.append(created[0]["id"])

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/conversations", params=params, headers=bearer("alice"))).json()
        seen += [c["id"] for c in page["conversations"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == expected
    assert pages == 3


async def test_the_default_page_holds_50(client: httpx.AsyncClient, sql: Any) -> None:
    for _ in range(51):
        await sql.execute(
            "WITH c AS (INSERT INTO conversations (id, created_by) "
            "VALUES (gen_random_uuid(), 'alice') RETURNING id) "
            "INSERT INTO conversation_participants (conversation_id, user_id) "
            "SELECT id, 'alice' FROM c"
        )

    page = (await client.get("/conversations", headers=bearer("alice"))).json()

    assert len(page["conversations"]) == 50
    assert page["next_cursor"] is not None


async def test_a_page_limit_outside_1_to_200_or_a_foreign_cursor_is_422(
    client: httpx.AsyncClient,
) -> None:
    for params in ({"limit": 0}, {"limit": 201}, {"cursor": "not-a-cursor"}):
        response = await client.get("/conversations", params=params, headers=bearer("alice"))
        assert response.status_code == 422, params


# Rate limits


async def test_conversation_creations_and_additions_share_one_limit(
    start_server: ServerFactory,
) -> None:
    server = await start_server(conversation_rate_per_minute=3)
    async with httpx.AsyncClient(base_url=server.url + API) as http:
        conversation = await create_conversation(http, "alice", "bob")
        await create_conversation(http, "alice", "carol")
        added = await http.post(
            f"/conversations/{conversation['id']}/participants",
            json={"user_ids": ["dave"]},
            headers=bearer("alice"),
        )
        refused = await http.post(
            "/conversations", json={"participant_ids": ["eve"]}, headers=bearer("alice")
        )
        other_user = await http.post(
            "/conversations", json={"participant_ids": ["eve"]}, headers=bearer("bob")
        )
    assert added.status_code == 200
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert other_user.status_code == 201


async def test_message_sends_over_rest_and_websocket_share_one_limit(
    start_server: ServerFactory,
) -> None:
    server = await start_server(message_rate_per_minute=2)
    async with httpx.AsyncClient(base_url=server.url + API) as http:
        conversation = await create_conversation(http, "alice", "bob")
        first = await send_message(http, "alice", conversation["id"], "one")
        async with ws_client(server.ws_url, "alice") as ws:
            await send_over_ws(ws, conversation["id"], "two", "c2")
            ack = await recv_json(ws)
            await send_over_ws(ws, conversation["id"], "three", "c3")
            refused_ws = await recv_json(ws)
        refused_rest = await send_message(http, "alice", conversation["id"], "four")
        history = await http.get(
            f"/conversations/{conversation['id']}/messages", headers=bearer("bob")
        )

    assert first.status_code == 201
    assert ack["type"] == "message.ack"
    assert refused_ws["type"] == "error"
    assert refused_ws["code"] == "rate_limited"
    assert refused_ws["client_msg_id"] == "c3"
    assert 1 <= refused_ws["retry_after"] <= 60
    assert refused_rest.status_code == 429
    assert "Retry-After" in refused_rest.headers
    assert [m["content"] for m in history.json()["messages"]] == ["two", "one"]


async def test_device_test_pushes_are_limited_to_6_a_minute(client: httpx.AsyncClient) -> None:
    answers = [
        (await client.post("/devices/test", headers=bearer("alice"))).status_code for _ in range(7)
    ]

    assert answers == [200] * 6 + [429]


async def test_rate_limits_let_requests_through_when_redis_is_down(
    start_server: ServerFactory,
) -> None:
    server = await start_server(
        redis_url="redis://127.0.0.1:1/0", message_rate_per_minute=1, redis_timeout_seconds=0.2
    )
    async with httpx.AsyncClient(base_url=server.url + API) as http:
        conversation = await create_conversation(http, "alice", "bob")
        answers = [
            (await send_message(http, "alice", conversation["id"], f"m{i}")).status_code
            for i in range(3)
        ]
    assert answers == [201, 201, 201]


async def test_who_left_gets_no_push(push_client: httpx.AsyncClient, providers: Any) -> None:
    import asyncio

    from backend.tests.push_helpers import register_all_providers

    bob = await register_all_providers(push_client, providers, "bob")
    carol = await register_all_providers(push_client, providers, "carol")
    conversation = await create_conversation(push_client, "alice", "bob", "carol")
    await push_client.delete(
        f"/conversations/{conversation['id']}/participants/me", headers=bearer("bob")
    )

    await send_message(push_client, "alice", conversation["id"], "bob is gone")

    # Carol's push arriving proves the fan-out ran; bob's device got nothing from it.
    pushes = await asyncio.to_thread(providers.fcm.wait_for, 1)
    assert [p.key for p in pushes] == [carol.fcm_token]
    await asyncio.sleep(0.7)  # a few sweeps: nothing more arrives
    assert bob.fcm_token not in [p.key for p in providers.fcm.received]
