"""Helpers for the conversation, message, WebSocket and presence tests: talk to the app the
way a client would (HTTP and WebSocket), with hang guards only, never timing assertions."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from backend.tests.conftest import bearer

HANG_GUARD_SECONDS = 20  # only stops a hung test; no test asserts on elapsed time


def token_of(user_id: str, *, name: str | None = None) -> str:
    return bearer(user_id, name=name)["Authorization"].removeprefix("Bearer ")


async def create_conversation(
    client: httpx.AsyncClient, owner: str, *others: str, title: str | None = None
) -> dict[str, Any]:
    response = await client.post(
        "/conversations",
        json={"title": title, "participant_ids": list(others)},
        headers=bearer(owner),
    )
    assert response.status_code == 201, response.text
    return response.json()


async def send_message(
    client: httpx.AsyncClient,
    sender: str,
    conversation_id: str,
    content: str,
    *,
    client_msg_id: str | None = None,
    name: str | None = None,
) -> httpx.Response:
    return await client.post(
        f"/conversations/{conversation_id}/messages",
        json={"content": content, "client_msg_id": client_msg_id},
        headers=bearer(sender, name=name),
    )


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(HANG_GUARD_SECONDS):
        return json.loads(await ws.recv())


async def ping(ws: ClientConnection) -> None:
    """Round trip a ping: everything the server queued for us before it arrives first."""
    await ws.send(json.dumps({"type": "ping"}))
    assert await recv_json(ws) == {"type": "pong"}


@asynccontextmanager
async def ws_client(
    ws_url: str, user_id: str, *, name: str | None = None
) -> AsyncIterator[ClientConnection]:
    """An authenticated connection, registered by the server (a ping was answered)."""
    async with connect(f"{ws_url}?token={token_of(user_id, name=name)}") as ws:
        await ping(ws)
        yield ws


async def send_over_ws(
    ws: ClientConnection, conversation_id: str, content: str, client_msg_id: str | None
) -> None:
    await ws.send(
        json.dumps(
            {
                "type": "message.send",
                "conversation_id": conversation_id,
                "content": content,
                "client_msg_id": client_msg_id,
            }
        )
    )


async def close_code(ws: ClientConnection) -> int | None:
    """Wait until the server closes the connection; the code it closed with."""
    async with asyncio.timeout(HANG_GUARD_SECONDS):
        await ws.wait_closed()
    return ws.close_code


async def presence(
    client: httpx.AsyncClient, caller: str, *user_ids: str
) -> dict[str, dict[str, Any]]:
    response = await client.get(
        "/presence", params={"user_ids": ",".join(user_ids)}, headers=bearer(caller)
    )
    assert response.status_code == 200, response.text
    return response.json()["presence"]


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], *, interval: float = 0.05
) -> None:
    """Poll until `check()` holds; the guard only stops a test that would hang."""
    async with asyncio.timeout(HANG_GUARD_SECONDS):
        while True:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await asyncio.sleep(interval)
