"""Read state: per-participant read positions, unread counts on conversation objects,
`POST /conversations/{id}/read` and `GET /unread`."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from backend.tests.conftest import bearer
from backend.tests.messaging import create_conversation, eventually, send_message
from backend.tests.notification_helpers import accepted, inbox_ids


async def sent(client: httpx.AsyncClient, sender: str, conversation_id: str, text: str) -> str:
    response = await send_message(client, sender, conversation_id, text)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def conversation_of(client: httpx.AsyncClient, user: str, conversation_id: str) -> Any:
    response = await client.get(f"/conversations/{conversation_id}", headers=bearer(user))
    assert response.status_code == 200, response.text
    return response.json()


async def read(
    client: httpx.AsyncClient, user: str, conversation_id: str, up_to: str
) -> httpx.Response:
    return await client.post(
        f"/conversations/{conversation_id}/read", json={"up_to": up_to}, headers=bearer(user)
    )


async def unread(client: httpx.AsyncClient, user: str) -> Any:
    response = await client.get("/unread", headers=bearer(user))
    assert response.status_code == 200, response.text
    return response.json()


# Conversation objects


async def test_new_conversation_has_nothing_unread_and_no_read_position(
    client: httpx.AsyncClient,
) -> None:
    created = await create_conversation(client, "alice", "bob")

    fetched = await conversation_of(client, "bob", created["id"])

    for body in (created, fetched):
        assert body["unread_count"] == 0
        assert body["last_read_message_id"] is None


async def test_messages_from_others_are_unread(client: httpx.AsyncClient) -> None:
    conversation = (await create_conversation(client, "alice", "bob"))["id"]
    for text in ("one", "two", "three"):
        await sent(client, "alice", conversation, text)

    body = await conversation_of(client, "bob", conversation)

    assert body["unread_count"] == 3
    assert body["last_read_message_id"] is None


async def test_own_messages_are_never_unread_and_move_the_senders_position(
    client: httpx.AsyncClient,
) -> None:
    conversation = (await create_conversation(client, "alice", "bob"))["id"]
    await sent(client, "alice", conversation, "question?")
    answer = await sent(client, "bob", conversation, "answer")

    body = await conversation_of(client, "bob", conversation)

    assert body["unread_count"] == 0
    assert body["last_read_message_id"] == answer


async def test_messages_after_the_senders_own_count_again(client: httpx.AsyncClient) -> None:
    conversation = (await create_conversation(client, "alice", "bob"))["id"]
    await sent(client, "bob", conversation, "mine")
    await sent(client, "alice", conversation, "reply 1")
    await sent(client, "alice", conversation, "reply 2")

    assert (await conversation_of(client, "bob", conversation))["unread_count"] == 2
    assert (await conversation_of(client, "alice", conversation))["unread_count"] == 0


async def test_conversation_list_carries_each_conversations_read_state(
    client: httpx.AsyncClient,
) -> None:
    busy = (await create_conversation(client, "alice", "bob"))["id"]
    quiet = (await create_conversation(client, "carol", "bob"))["id"]
    first = await sent(client, "alice", busy, "1")
    await sent(client, "alice", busy, "2")
    await read(client, "bob", busy, first)

    response = await client.get("/conversations", headers=bearer("bob"))

    states = {
        c["id"]: (c["unread_count"], c["last_read_message_id"])
        for c in response.json()["conversations"]
    }
    assert states == {busy: (1, first), quiet: (0, None)}


async def test_added_participant_starts_caught_up_and_counts_what_follows(
    client: httpx.AsyncClient,
) -> None:
    conversation = (await create_conversation(client, "alice", "bob"))["id"]
    await sent(client, "alice", conversation, "before carol")
    latest = await sent(client, "alice", conversation, "still before carol")

    added = await client.post(
        f"/conversations/{conversation}/participants",
        json={"user_ids": ["carol"]},
        headers=bearer("bob"),
    )
    joined = await conversation_of(client, "carol", conversation)
    await sent(client, "alice", conversation, "welcome carol")

    assert added.status_code == 200
    assert (added.json()["unread_count"], added.json()["last_read_message_id"]) == (2, None)
    assert (joined["unread_count"], joined["last_read_message_id"]) == (0, latest)
    assert (await conversation_of(client, "carol", conversation))["unread_count"] == 1


async def test_repeated_client_msg_id_adds_no_unread_message(client: httpx.AsyncClient) -> None:
    conversation = (await create_conversation(client, "alice", "bob"))["id"]
    for _ in range(3):
        await send_message(client, "alice", conversation, "once", client_msg_id="c-1")
    await sent(client, "alice", conversation, "twice")

    assert (await conversation_of(client, "bob", conversation))["unread_count"] == 2


# POST /conversations/{id}/read


async def test_read_moves_the_position_and_answers_the_remaining_count(
    client: httpx.AsyncClient,
) -> None:
    conversation = (await create_conversation(client, "alice", "bob"))["id"]
    ids = [await sent(client, "alice", conversation, str(n)) for n in range(4)]

    response = await read(client, "bob", conversation, ids[1])

    assert response.status_code == 200
    assert response.json() == {
        "conversation_id": conversation,
        "last_read_message_id": ids[1],
        "unread_count": 2,
    }
    body = await conversation_of(client, "bob", conversation)
    assert (body["unread_count"], body["last_read_message_id"]) == (2, ids[1])


async def test_reading_the_latest_message_leaves_nothing_unread(
    client: httpx.AsyncClient,
) -> None:
    conversation = (await create_conversation(client, "alice", "bob"))["id"]
    await sent(client, "alice", conversation, "a")
    latest = await sent(client, "alice", conversation, "b")

    response = await read(client, "bob", conversation, latest)

    assert response.json()["unread_count"] == 0
    assert await unread(client, "bob") == {"total": 0, "conversations": {}, "notifications": 0}


async def test_an_older_up_to_changes_nothing_and_answers_the_current_state(
    client: httpx.AsyncClient,
) -> None:
    conversation = (await create_conversation(client, "alice", "bob"))["id"]
    ids = [await sent(client, "alice", conversation, str(n)) for n in range(3)]
    await read(client, "bob", conversation, ids[1])

    response = await read(client, "bob", conversation, ids[0])

    assert response.status_code == 200
    assert response.json() == {
        "conversation_id": conversation,
        "last_read_message_id": ids[1],
        "unread_count": 1,
    }


async def test_reading_ones_own_older_message_does_not_move_back(
    client: httpx.AsyncClient,
) -> None:
    conversation = (await create_conversation(client, "alice", "bob"))["id"]
    mine = await sent(client, "bob", conversation, "mine")
    theirs = await sent(client, "alice", conversation, "theirs")
    await read(client, "bob", conversation, theirs)

    response = await read(client, "bob", conversation, mine)

    assert response.json()["last_read_message_id"] == theirs
    assert response.json()["unread_count"] == 0


async def test_reading_leaves_other_participants_untouched(client: httpx.AsyncClient) -> None:
    conversation = (await create_conversation(client, "alice", "bob", "carol"))["id"]
    latest = await sent(client, "alice", conversation, "hello both")

    await read(client, "bob", conversation, latest)

    assert (await conversation_of(client, "carol", conversation))["unread_count"] == 1


async def test_up_to_from_another_conversation_is_422_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    conversation = (await create_conversation(client, "alice", "bob"))["id"]
    other = (await create_conversation(client, "alice", "bob"))["id"]
    await sent(client, "alice", conversation, "here")
    elsewhere = await sent(client, "alice", other, "there")

    response = await read(client, "bob", conversation, elsewhere)

    assert response.status_code == 422
    assert (await conversation_of(client, "bob", conversation))["unread_count"] == 1


async def test_up_to_that_is_no_message_is_422(client: httpx.AsyncClient) -> None:
    conversation = (await create_conversation(client, "alice", "bob"))["id"]

    unknown = await read(client, "bob", conversation, str(uuid.uuid4()))
    malformed = await read(client, "bob", conversation, "not-a-uuid")
    missing = await client.post(
        f"/conversations/{conversation}/read", json={}, headers=bearer("bob")
    )

    assert [r.status_code for r in (unknown, malformed, missing)] == [422, 422, 422]


async def test_read_by_a_non_participant_is_404(client: httpx.AsyncClient) -> None:
    conversation = (await create_conversation(client, "alice", "bob"))["id"]
    message = await sent(client, "alice", conversation, "private")

    stranger = await read(client, "mallory", conversation, message)
    unknown = await read(client, "bob", str(uuid.uuid4()), message)

    assert stranger.status_code == unknown.status_code == 404


async def test_read_requires_a_token(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"/conversations/{uuid.uuid4()}/read", json={"up_to": str(uuid.uuid4())}
    )

    assert response.status_code == 401


# GET /unread


async def test_unread_lists_only_conversations_with_unread_messages_and_sums_them(
    client: httpx.AsyncClient,
) -> None:
    two = (await create_conversation(client, "alice", "bob"))["id"]
    one = (await create_conversation(client, "carol", "bob"))["id"]
    read_all = (await create_conversation(client, "dave", "bob"))["id"]
    await create_conversation(client, "erin", "bob")  # no messages at all
    await sent(client, "alice", two, "a")
    await sent(client, "alice", two, "b")
    await sent(client, "carol", one, "c")
    await read(client, "bob", read_all, await sent(client, "dave", read_all, "d"))

    assert await unread(client, "bob") == {
        "total": 3,
        "conversations": {two: 2, one: 1},
        "notifications": 0,
    }


async def test_unread_of_a_user_in_no_conversation_is_zero(client: httpx.AsyncClient) -> None:
    assert await unread(client, "nobody") == {"total": 0, "conversations": {}, "notifications": 0}


async def test_unread_requires_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/unread")).status_code == 401


async def test_concurrent_sends_are_each_counted_once(client: httpx.AsyncClient) -> None:
    conversation = (await create_conversation(client, "alice", "bob", "carol"))["id"]

    responses = await asyncio.gather(
        *(send_message(client, sender, conversation, "race") for sender in ["alice", "bob"] * 10)
    )

    assert all(r.status_code == 201 for r in responses)
    assert (await conversation_of(client, "carol", conversation))["unread_count"] == 20
    history = (
        await client.get(
            f"/conversations/{conversation}/messages", params={"limit": 50}, headers=bearer("carol")
        )
    ).json()["messages"][::-1]
    for sender in ("alice", "bob"):
        last_own = max(i for i, m in enumerate(history) if m["sender_id"] == sender)
        body = await conversation_of(client, sender, conversation)
        assert body["last_read_message_id"] == history[last_own]["id"]
        assert body["unread_count"] == len(history) - 1 - last_own


async def test_unread_counts_unread_inbox_notifications_in_the_total(
    client: httpx.AsyncClient,
) -> None:
    conversation = (await create_conversation(client, "alice", "bob"))["id"]
    await sent(client, "alice", conversation, "hi")
    for title in ("Export ready", "Invoice"):
        await accepted(client, user_ids=["bob"], title=title, channels=["in_app"])
    await eventually(lambda: _inbox_size(client, "bob", 2))

    assert await unread(client, "bob") == {
        "total": 3,
        "conversations": {conversation: 1},
        "notifications": 2,
    }


async def _inbox_size(client: httpx.AsyncClient, user_id: str, size: int) -> bool:
    return len(await inbox_ids(client, user_id)) == size
