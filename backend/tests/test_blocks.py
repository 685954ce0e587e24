"""Blocking: the endpoints, and what a block changes for the blocked user."""

from __future__ import annotations

from typing import Any

import httpx

from backend.app.messenger.blocks.service import users_blocking
from backend.tests.conftest import LiveServer, bearer
from backend.tests.messaging import create_conversation, presence, ws_client


async def test_blocking_is_idempotent_and_listed(client: httpx.AsyncClient) -> None:
    first = await client.put("/blocks/bob", headers=bearer("alice"))
    again = await client.put("/blocks/bob", headers=bearer("alice"))
    await client.put("/blocks/adam", headers=bearer("alice"))

    listed = await client.get("/blocks", headers=bearer("alice"))

    assert first.status_code == again.status_code == 200
    assert first.json() == {"user_id": "bob", "blocked": True}
    assert listed.json() == {"user_ids": ["adam", "bob"]}
    assert (await client.get("/blocks", headers=bearer("bob"))).json() == {"user_ids": []}


async def test_unblocking_is_idempotent(client: httpx.AsyncClient) -> None:
    await client.put("/blocks/bob", headers=bearer("alice"))

    first = await client.delete("/blocks/bob", headers=bearer("alice"))
    again = await client.delete("/blocks/bob", headers=bearer("alice"))

    assert first.json() == again.json() == {"user_id": "bob", "blocked": False}
    assert (await client.get("/blocks", headers=bearer("alice"))).json() == {"user_ids": []}


async def test_blocking_yourself_is_422(client: httpx.AsyncClient) -> None:
    response = await client.put("/blocks/alice", headers=bearer("alice"))

    assert response.status_code == 422


async def test_a_blocked_user_cannot_add_the_blocker_to_a_conversation(
    client: httpx.AsyncClient,
) -> None:
    await client.put("/blocks/bob", headers=bearer("alice"))
    conversation = await create_conversation(client, "bob", "carol")

    added = await client.post(
        f"/conversations/{conversation['id']}/participants",
        json={"user_ids": ["alice", "dave"]},
        headers=bearer("bob"),
    )
    created = await create_conversation(client, "bob", "alice", "carol")

    assert added.json()["participant_ids"] == ["bob", "carol", "dave"]
    assert created["participant_ids"] == ["bob", "carol"]


async def test_someone_else_may_still_add_the_blocker(client: httpx.AsyncClient) -> None:
    await client.put("/blocks/bob", headers=bearer("alice"))

    created = await create_conversation(client, "carol", "alice", "bob")

    assert created["participant_ids"] == ["alice", "bob", "carol"]


async def test_the_blockers_presence_reads_offline_to_the_blocked_user(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    await create_conversation(client, "alice", "bob", "carol")
    await client.put("/blocks/bob", headers=bearer("alice"))
    async with ws_client(server.ws_url, "alice"):
        to_bob = await presence(client, "bob", "alice")
        to_carol = await presence(client, "carol", "alice")

    assert to_bob["alice"]["online"] is False
    assert to_bob["alice"]["last_seen"] is None
    assert to_carol["alice"]["online"] is True


async def test_messages_in_a_shared_conversation_stay_visible_after_a_block(
    client: httpx.AsyncClient,
) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    await client.post(
        f"/conversations/{conversation['id']}/messages",
        json={"content": "hello"},
        headers=bearer("bob"),
    )
    await client.put("/blocks/bob", headers=bearer("alice"))

    history = await client.get(
        f"/conversations/{conversation['id']}/messages", headers=bearer("alice")
    )

    assert [m["content"] for m in history.json()["messages"]] == ["hello"]


async def test_users_blocking_answers_which_candidates_blocked_a_user(
    client: httpx.AsyncClient, server: LiveServer
) -> None:
    await client.put("/blocks/bob", headers=bearer("alice"))
    await client.put("/blocks/bob", headers=bearer("carol"))
    await client.put("/blocks/dave", headers=bearer("erin"))
    runtime: Any = server.server.config.app.state.runtime  # type: ignore[attr-defined]

    async with runtime.sessionmaker() as session:
        blockers = await users_blocking(
            session, blocked_id="bob", candidates=["alice", "carol", "erin", "zed"]
        )

    assert blockers == {"alice", "carol"}
