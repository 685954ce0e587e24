"""PostgreSQL connections that die under the service: requests still get through."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from backend.app.db import PING_AFTER_IDLE_SECONDS
from backend.tests.messaging import create_conversation, send_message
from backend.tests.test_push_hardening import KILL_OTHER_CONNECTIONS


async def test_pooled_connections_killed_while_idle_are_replaced_before_use(
    client: httpx.AsyncClient, sql: asyncpg.Connection
) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    await send_message(client, "alice", conversation["id"], "before")  # the pool holds a connection
    await asyncio.sleep(PING_AFTER_IDLE_SECONDS + 0.5)
    assert await sql.fetchval(KILL_OTHER_CONNECTIONS) > 0

    sent = await send_message(client, "alice", conversation["id"], "after")

    assert sent.status_code == 201, sent.text
