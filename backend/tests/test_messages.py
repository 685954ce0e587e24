"""Messages over REST: sending, idempotency on client_msg_id, access rules and history pages."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import asyncpg
import httpx
import pytest

from backend.tests.conftest import bearer
from backend.tests.messaging import create_conversation, send_message


async def count_rows(database_url: str, table: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetchval(f"SELECT count(*) FROM {table}")
    finally:
        await connection.close()


async def test_send_message_answers_201_with_the_message(client: httpx.AsyncClient) -> None:
    conversation = await create_conversation(client, "alice", "bob")

    response = await send_message(client, "alice", conversation["id"], "hello", client_msg_id="c1")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "conversation_id",
        "sender_id",
        "content",
        "created_at",
        "client_msg_id",
    }
    uuid.UUID(body["id"])
    assert body["conversation_id"] == conversation["id"]
    assert body["sender_id"] == "alice"
    assert body["content"] == "hello"
    assert body["client_msg_id"] == "c1"
    datetime.fromisoformat(body["created_at"])


async def test_send_message_without_client_msg_id(client: httpx.AsyncClient) -> None:
    conversation = await create_conversation(client, "alice", "bob")

    first = await send_message(client, "alice", conversation["id"], "same")
    second = await send_message(client, "alice", conversation["id"], "same")

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["client_msg_id"] is None
    assert first.json()["id"] != second.json()["id"]


async def test_repeated_client_msg_id_answers_200_with_the_original(
    client: httpx.AsyncClient,
) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    original = await send_message(client, "alice", conversation["id"], "hi", client_msg_id="k")

    repeat = await send_message(client, "alice", conversation["id"], "hi", client_msg_id="k")

    assert repeat.status_code == 200
    assert repeat.json() == original.json()


async def test_repeated_client_msg_id_stores_and_enqueues_nothing_new(
    client: httpx.AsyncClient, database_url: str
) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    await send_message(client, "alice", conversation["id"], "hi", client_msg_id="k")

    await send_message(client, "alice", conversation["id"], "hi again", client_msg_id="k")

    assert await count_rows(database_url, "messages") == 1
    assert await count_rows(database_url, "push_jobs") == 1


async def test_concurrent_repeats_of_a_client_msg_id_store_one_message(
    client: httpx.AsyncClient, database_url: str
) -> None:
    conversation = await create_conversation(client, "alice", "bob")

    responses = await asyncio.gather(
        *(
            send_message(client, "alice", conversation["id"], "once", client_msg_id="race")
            for _ in range(8)
        )
    )

    assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await count_rows(database_url, "messages") == 1


async def test_client_msg_id_is_scoped_to_the_sender(client: httpx.AsyncClient) -> None:
    conversation = await create_conversation(client, "alice", "bob")

    mine = await send_message(client, "alice", conversation["id"], "a", client_msg_id="same")
    theirs = await send_message(client, "bob", conversation["id"], "b", client_msg_id="same")

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]


async def test_client_msg_id_reused_in_another_conversation_is_409(
    client: httpx.AsyncClient,
) -> None:
    first = await create_conversation(client, "alice", "bob")
    second = await create_conversation(client, "alice", "carol")
    await send_message(client, "alice", first["id"], "a", client_msg_id="k")

    response = await send_message(client, "alice", second["id"], "a", client_msg_id="k")

    assert response.status_code == 409


async def test_push_job_is_titled_with_the_senders_name_claim(
    client: httpx.AsyncClient, database_url: str
) -> None:
    conversation = await create_conversation(client, "alice", "bob", title="Trip")

    await send_message(client, "alice", conversation["id"], "hi", name="Alice A.")

    connection = await asyncpg.connect(database_url)
    try:
        title = await connection.fetchval("SELECT title FROM push_jobs")
    finally:
        await connection.close()
    assert title == "Alice A. • Trip"


@pytest.mark.parametrize(
    "content", ["", "x" * 10_001, "nul \x00 inside"], ids=["empty", "10001", "nul"]
)
async def test_content_outside_1_to_10000_characters_is_422_and_changes_nothing(
    client: httpx.AsyncClient, database_url: str, content: str
) -> None:
    conversation = await create_conversation(client, "alice", "bob")

    response = await send_message(client, "alice", conversation["id"], content)

    assert response.status_code == 422
    assert await count_rows(database_url, "messages") == 0
    assert await count_rows(database_url, "push_jobs") == 0


async def test_client_msg_id_with_a_nul_character_is_422(client: httpx.AsyncClient) -> None:
    conversation = await create_conversation(client, "alice", "bob")

    response = await send_message(client, "alice", conversation["id"], "hi", client_msg_id="a\x00")

    assert response.status_code == 422


async def test_content_of_10000_characters_is_accepted(client: httpx.AsyncClient) -> None:
    conversation = await create_conversation(client, "alice", "bob")

    response = await send_message(client, "alice", conversation["id"], "é" * 10_000)

    assert response.status_code == 201


async def test_non_participant_gets_404_for_sending(
    client: httpx.AsyncClient, database_url: str
) -> None:
    conversation = await create_conversation(client, "alice", "bob")

    response = await send_message(client, "mallory", conversation["id"], "let me in")

    assert response.status_code == 404
    assert await count_rows(database_url, "messages") == 0


async def test_sending_to_an_unknown_conversation_is_404(client: httpx.AsyncClient) -> None:
    response = await send_message(client, "alice", str(uuid.uuid4()), "anyone?")

    assert response.status_code == 404


# History


def history_url(conversation_id: str) -> str:
    return f"/conversations/{conversation_id}/messages"


async def send_many(client: httpx.AsyncClient, conversation_id: str, count: int) -> list[str]:
    ids = []
    for index in range(count):
        response = await send_message(client, "alice", conversation_id, f"m{index}")
        ids.append(response.json()["id"])
    return ids


async def test_history_is_newest_first(client: httpx.AsyncClient) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    ids = await send_many(client, conversation["id"], 3)

    response = await client.get(history_url(conversation["id"]), headers=bearer("bob"))

    assert response.status_code == 200
    assert [m["id"] for m in response.json()["messages"]] == ids[::-1]
    assert response.json()["next_before"] is None


async def test_history_messages_look_like_sent_ones(client: httpx.AsyncClient) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    sent = await send_message(client, "alice", conversation["id"], "hi", client_msg_id="k")

    response = await client.get(history_url(conversation["id"]), headers=bearer("bob"))

    assert response.json()["messages"] == [sent.json()]


async def test_history_pages_through_everything_once_with_before(
    client: httpx.AsyncClient,
) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    ids = await send_many(client, conversation["id"], 5)
    pages: list[list[str]] = []
    cursors: list[str | None] = []
    params: dict[str, str | int] = {"limit": 2}

    while True:
        response = await client.get(
            history_url(conversation["id"]), params=params, headers=bearer("alice")
        )
        body = response.json()
        pages.append([m["id"] for m in body["messages"]])
        cursors.append(body["next_before"])
        if body["next_before"] is None:
            break
        params = {"limit": 2, "before": body["next_before"]}

    assert pages == [ids[4:2:-1], ids[2:0:-1], ids[0:1]]
    assert cursors == [ids[3], ids[1], None]


async def test_history_full_last_page_still_names_next_before(client: httpx.AsyncClient) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    ids = await send_many(client, conversation["id"], 2)

    response = await client.get(
        history_url(conversation["id"]), params={"limit": 2}, headers=bearer("alice")
    )
    after = await client.get(
        history_url(conversation["id"]),
        params={"limit": 2, "before": ids[0]},
        headers=bearer("alice"),
    )

    assert response.json()["next_before"] == ids[0]
    assert after.json() == {"messages": [], "next_before": None}


async def test_history_defaults_to_50_messages(client: httpx.AsyncClient) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    await send_many(client, conversation["id"], 51)

    response = await client.get(history_url(conversation["id"]), headers=bearer("alice"))

    assert len(response.json()["messages"]) == 50
    assert response.json()["next_before"] is not None


@pytest.mark.parametrize("limit", [0, 201])
async def test_history_limit_outside_1_to_200_is_422(client: httpx.AsyncClient, limit: int) -> None:
    conversation = await create_conversation(client, "alice", "bob")

    response = await client.get(
        history_url(conversation["id"]), params={"limit": limit}, headers=bearer("alice")
    )

    assert response.status_code == 422


async def test_history_before_from_another_conversation_is_422(
    client: httpx.AsyncClient,
) -> None:
    mine = await create_conversation(client, "alice", "bob")
    other = await create_conversation(client, "alice", "carol")
    foreign = (await send_message(client, "alice", other["id"], "elsewhere")).json()["id"]

    response = await client.get(
        history_url(mine["id"]), params={"before": foreign}, headers=bearer("bob")
    )

    assert response.status_code == 422


async def test_non_participant_gets_404_for_history(client: httpx.AsyncClient) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    await send_message(client, "alice", conversation["id"], "private")

    response = await client.get(history_url(conversation["id"]), headers=bearer("mallory"))

    assert response.status_code == 404


async def test_push_job_of_an_untitled_conversation_is_titled_with_the_sender_alone(
    client: httpx.AsyncClient, database_url: str
) -> None:
    conversation = await create_conversation(client, "alice", "bob")

    await send_message(client, "alice", conversation["id"], "hi", name="Alice A.")

    connection = await asyncpg.connect(database_url)
    try:
        job = await connection.fetchrow("SELECT title, body, data FROM push_jobs")
    finally:
        await connection.close()
    assert job["title"] == "Alice A."
    assert job["body"] == "hi"
