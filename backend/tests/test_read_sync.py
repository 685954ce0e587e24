"""Real-time read sync: every open connection of the reader, on every instance, gets
`conversation.read`, whether the read came over REST or the WebSocket. Also the service
functions a later integrator builds badges and clear-on-read pushes on."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.db import create_engine, create_sessionmaker
from backend.app.messenger.conversations import read_state
from backend.app.messenger.read_state import events as read_events
from backend.tests.conftest import API, LiveServer, ServerFactory, bearer
from backend.tests.messaging import (
    create_conversation,
    ping,
    recv_json,
    send_message,
    ws_client,
)


async def sent(client: httpx.AsyncClient, sender: str, conversation_id: str, text: str) -> str:
    response = await send_message(client, sender, conversation_id, text)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def read_frame(conversation_id: str, up_to: str) -> str:
    return json.dumps(
        {"type": "conversation.read", "conversation_id": conversation_id, "up_to": up_to}
    )


async def test_rest_read_reaches_every_connection_of_the_reader_on_every_instance(
    start_server: ServerFactory,
) -> None:
    first, second = await start_server(), await start_server()
    async with httpx.AsyncClient(base_url=first.url + API) as http:
        conversation = (await create_conversation(http, "alice", "bob"))["id"]
        ids = [await sent(http, "alice", conversation, str(n)) for n in range(3)]
        async with (
            ws_client(first.ws_url, "bob") as bob_here,
            ws_client(second.ws_url, "bob") as bob_there,
            ws_client(first.ws_url, "alice") as alice,
        ):
            await http.post(
                f"/conversations/{conversation}/read", json={"up_to": ids[1]}, headers=bearer("bob")
            )

            frames = [await recv_json(bob_here), await recv_json(bob_there)]
            await ping(alice)  # alice's queue holds nothing before the pong

    expected = {
        "type": "conversation.read",
        "conversation_id": conversation,
        "last_read_message_id": ids[1],
        "unread_count": 1,
    }
    assert frames == [expected, expected]


async def test_websocket_read_answers_this_connection_and_reaches_the_others(
    start_server: ServerFactory,
) -> None:
    first, second = await start_server(), await start_server()
    async with httpx.AsyncClient(base_url=first.url + API) as http:
        conversation = (await create_conversation(http, "alice", "bob"))["id"]
        latest = [await sent(http, "alice", conversation, str(n)) for n in range(2)][-1]
        async with (
            ws_client(second.ws_url, "bob") as reader,
            ws_client(first.ws_url, "bob") as elsewhere,
        ):
            await reader.send(read_frame(conversation, latest))

            frames = [await recv_json(reader), await recv_json(elsewhere)]
        stored = (await http.get(f"/conversations/{conversation}", headers=bearer("bob"))).json()

    expected = {
        "type": "conversation.read",
        "conversation_id": conversation,
        "last_read_message_id": latest,
        "unread_count": 0,
    }
    assert frames == [expected, expected]
    assert (stored["unread_count"], stored["last_read_message_id"]) == (0, latest)


async def test_websocket_read_of_an_older_message_answers_the_current_state(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    conversation = (await create_conversation(client, "alice", "bob"))["id"]
    ids = [await sent(client, "alice", conversation, str(n)) for n in range(3)]
    async with ws_client(server.ws_url, "bob") as ws:
        await ws.send(read_frame(conversation, ids[2]))
        await recv_json(ws)

        await ws.send(read_frame(conversation, ids[0]))
        frame = await recv_json(ws)

    assert frame["last_read_message_id"] == ids[2]
    assert frame["unread_count"] == 0


INVALID_READS = {
    "missing up_to": {"type": "conversation.read", "conversation_id": str(uuid.uuid4())},
    "malformed conversation id": {
        "type": "conversation.read",
        "conversation_id": "nope",
        "up_to": str(uuid.uuid4()),
    },
    "bad presence state": {"type": "presence", "state": "away"},
    "presence without state": {"type": "presence"},
}


@pytest.mark.parametrize("frame", INVALID_READS.values(), ids=INVALID_READS.keys())
async def test_invalid_read_or_presence_frame_gets_an_error_and_the_connection_survives(
    server: LiveServer, frame: dict[str, Any]
) -> None:
    async with ws_client(server.ws_url, "bob") as ws:
        await ws.send(json.dumps(frame))

        error = await recv_json(ws)
        await ping(ws)

    assert error["type"] == "error"
    assert error["code"] == "invalid_frame"


async def test_websocket_read_of_a_foreign_conversation_gets_not_found(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    conversation = (await create_conversation(client, "alice", "bob"))["id"]
    message = await sent(client, "alice", conversation, "private")
    async with ws_client(server.ws_url, "mallory") as ws:
        await ws.send(read_frame(conversation, message))

        error = await recv_json(ws)
        await ping(ws)

    assert (error["type"], error["code"]) == ("error", "not_found")


async def test_websocket_read_up_to_a_message_elsewhere_gets_invalid_position(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    conversation = (await create_conversation(client, "alice", "bob"))["id"]
    other = (await create_conversation(client, "alice", "bob"))["id"]
    elsewhere = await sent(client, "alice", other, "there")
    async with ws_client(server.ws_url, "bob") as ws:
        await ws.send(read_frame(conversation, elsewhere))

        error = await recv_json(ws)
        await ping(ws)

    assert (error["type"], error["code"]) == ("error", "invalid_position")


# Service functions for badges and clear-on-read (used by a later integrator)


@pytest.fixture
async def session(database_url: str, clean_state: None) -> AsyncIterator[AsyncSession]:
    engine = create_engine(database_url, pool_size=1)
    try:
        async with create_sessionmaker(engine).begin() as session:
            yield session
    finally:
        await engine.dispose()


async def test_unread_totals_answers_every_user_in_one_query(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    one = (await create_conversation(client, "alice", "bob", "carol"))["id"]
    two = (await create_conversation(client, "alice", "bob"))["id"]
    await sent(client, "alice", one, "1")
    await sent(client, "alice", one, "2")
    await sent(client, "alice", two, "3")
    await sent(client, "carol", one, "4")  # carol's own: moves her past 1 and 2

    statements: list[str] = []
    sync_engine = session.bind.sync_engine  # type: ignore[union-attr]

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(sync_engine, "before_cursor_execute", count)
    try:
        totals = await read_state.unread_totals(
            session, user_ids=["alice", "bob", "carol", "stranger", "bob"]
        )
    finally:
        event.remove(sync_engine, "before_cursor_execute", count)

    assert totals == {"alice": 1, "bob": 4, "carol": 0, "stranger": 0}
    assert len(statements) == 1


async def test_a_read_that_moves_reports_the_seq_range_it_passed(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    conversation = (await create_conversation(client, "alice", "bob"))["id"]
    ids = [await sent(client, "alice", conversation, str(n)) for n in range(4)]

    moved = await read_state.mark_read(
        session, conversation_id=uuid.UUID(conversation), user_id="bob", up_to=uuid.UUID(ids[2])
    )
    stayed = await read_state.mark_read(
        session, conversation_id=uuid.UUID(conversation), user_id="bob", up_to=uuid.UUID(ids[0])
    )

    assert moved.move is not None
    assert (moved.move.previous_seq, moved.move.last_read_seq) == (0, 3)
    assert moved.move.last_read_message_id == uuid.UUID(ids[2])
    assert stayed.move is None


async def test_concurrent_reads_never_move_a_position_back(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    conversation = (await create_conversation(client, "alice", "bob"))["id"]
    ids = [await sent(client, "alice", conversation, str(n)) for n in range(10)]

    await asyncio.gather(
        *(
            client.post(
                f"/conversations/{conversation}/read", json={"up_to": up_to}, headers=bearer("bob")
            )
            for up_to in reversed(ids)
        )
    )

    body = (await client.get(f"/conversations/{conversation}", headers=bearer("bob"))).json()
    assert (body["unread_count"], body["last_read_message_id"]) == (0, ids[-1])


def test_read_frame_shape_before_anything_was_read() -> None:
    conversation = uuid.uuid4()
    result = read_state.ReadResult(
        conversation_id=conversation, last_read_message_id=None, unread_count=4, move=None
    )

    assert read_events.read_frame(result) == {
        "type": "conversation.read",
        "conversation_id": str(conversation),
        "last_read_message_id": None,
        "unread_count": 4,
    }
