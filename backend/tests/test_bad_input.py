"""Limits and bad input: oversized bodies, NUL and lone surrogates anywhere, deep nesting,
dates out of range. Each is a 4xx, never a 5xx, and writes nothing."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import asyncpg
import httpx
import pytest

from backend.devtools.subscriptions import web_push_subscription
from backend.tests.conftest import API, TEST_API_KEY, LiveServer, bearer
from backend.tests.messaging import HANG_GUARD_SECONDS, create_conversation

FCM_TOKEN = f"{secrets.token_urlsafe(8)}:APA91b{secrets.token_urlsafe(110)}"


async def rows(sql: asyncpg.Connection) -> dict[str, int]:
    """How many rows each table holds: what "writes nothing" is checked against."""
    counts = {}
    for table in ("conversations", "conversation_participants", "messages", "device_tokens"):
        counts[table] = await sql.fetchval(f"SELECT count(*) FROM {table}")
    return counts


def raw_json(text: str, user: str = "alice") -> dict[str, Any]:
    """Send `text` byte for byte (httpx would refuse to encode a lone surrogate)."""
    return {
        "content": text.encode(),
        "headers": {**bearer(user), "Content-Type": "application/json"},
    }


# Oversized bodies


async def test_a_body_over_max_body_bytes_is_413_before_authentication(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/conversations", content=b"x" * 70_000)  # no token at all

    assert response.status_code == 413


async def test_a_chunked_body_over_max_body_bytes_is_413_without_reading_the_rest(
    server: LiveServer,
) -> None:
    """Chunks are sent one at a time until the server answers; it must answer 413 long
    before the client would have finished (the client has 1 MB to send)."""
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST {API}/devices/register HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    )
    status_line = asyncio.create_task(reader.readline())
    sent = 0
    try:
        async with asyncio.timeout(HANG_GUARD_SECONDS):
            while not status_line.done() and sent < 1_000_000:
                writer.write(b"2000\r\n" + b"[" * 0x2000 + b"\r\n")
                await writer.drain()
                sent += 0x2000
                await asyncio.wait([status_line], timeout=0.05)
            line = await status_line
    except ConnectionError:
        line = await status_line
    finally:
        writer.close()
    assert line.split()[1] == b"413"
    assert sent < 1_000_000


async def test_a_body_within_the_limit_is_served(
    client: httpx.AsyncClient, sql: asyncpg.Connection
) -> None:
    response = await client.post(
        "/conversations",
        json={"title": "t" * 100, "participant_ids": ["bob"]},
        headers=bearer("alice"),
    )

    assert response.status_code == 201


async def test_max_body_bytes_is_configurable(start_server: Any) -> None:
    server: LiveServer = await start_server(max_body_bytes=2048)
    async with httpx.AsyncClient(base_url=server.url + API) as http:
        response = await http.post(
            "/conversations",
            json={"title": "t" * 3000, "participant_ids": []},
            headers=bearer("alice"),
        )
    assert response.status_code == 413


# NUL and unpaired surrogates


async def test_nul_in_a_device_path_is_4xx(client: httpx.AsyncClient) -> None:
    response = await client.delete("/devices/%00", headers=bearer("alice"))

    assert response.status_code in (404, 422)


async def test_nul_in_a_query_parameter_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/presence?user_ids=bob%00", headers=bearer("alice"))

    assert response.status_code == 422


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/conversations", '{"title": "a\\u0000b", "participant_ids": []}'),
        ("/conversations", '{"title": "a\\ud800b", "participant_ids": []}'),
        ("/conversations", '{"title": null, "participant_ids": ["\\udfff"]}'),
        ("/conversations", '{"title": null, "participant_ids": ["bob\\u0000"]}'),
    ],
)
async def test_nul_or_a_lone_surrogate_in_a_body_is_422_and_writes_nothing(
    client: httpx.AsyncClient, sql: asyncpg.Connection, path: str, body: str
) -> None:
    before = await rows(sql)

    response = await client.post(path, **raw_json(body))

    assert response.status_code == 422, response.text
    assert await rows(sql) == before


async def test_a_lone_surrogate_in_message_content_is_422_and_writes_nothing(
    client: httpx.AsyncClient, sql: asyncpg.Connection
) -> None:
    conversation = await create_conversation(client, "alice", "bob")
    before = await rows(sql)

    response = await client.post(
        f"/conversations/{conversation['id']}/messages",
        **raw_json('{"content": "hi \\ud83d", "client_msg_id": "\\u0000"}'),
    )

    assert response.status_code == 422
    assert await rows(sql) == before


async def test_nul_in_internal_notify_user_id_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/internal/notify",
        json={"user_id": "bob\x00", "title": "t", "body": "b", "priority": "high"},
        headers={"X-API-Key": TEST_API_KEY},
    )

    assert response.status_code == 422


async def test_a_non_ascii_api_key_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/internal/notify",
        json={"user_id": "bob", "title": "t", "body": "b", "priority": "high"},
        headers={"X-API-Key": "clé-ünïcødé".encode()},
    )

    assert response.status_code == 401


# Deep nesting


async def test_deeply_nested_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/conversations", **raw_json("[" * 5000 + "]" * 5000))

    assert response.status_code == 422


async def test_a_web_push_token_of_5000_nested_brackets_is_422_and_writes_nothing(
    client: httpx.AsyncClient, sql: asyncpg.Connection
) -> None:
    response = await client.post(
        "/devices/register",
        json={"device_token": "[" * 5000, "platform": "web", "provider": "web_push"},
        headers=bearer("alice"),
    )

    assert response.status_code == 422
    assert (await rows(sql))["device_tokens"] == 0


async def test_a_nul_inside_a_web_push_subscription_is_422(
    client: httpx.AsyncClient, sql: asyncpg.Connection
) -> None:
    subscription = json.loads(web_push_subscription())
    subscription["endpoint"] += "\x00"

    response = await client.post(
        "/devices/register",
        json={"device_token": json.dumps(subscription), "platform": "web", "provider": "web_push"},
        headers=bearer("alice"),
    )

    assert response.status_code == 422
    assert (await rows(sql))["device_tokens"] == 0


# Dates out of range


@pytest.mark.parametrize(
    "muted_until",
    ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+00:00", "1969-12-31T23:59:59Z"],
)
async def test_a_date_outside_1970_to_9999_in_utc_is_422(
    client: httpx.AsyncClient, muted_until: str
) -> None:
    conversation = await create_conversation(client, "alice", "bob")

    response = await client.put(
        f"/conversations/{conversation['id']}/notification-settings",
        json={"muted_until": muted_until},
        headers=bearer("alice"),
    )

    assert response.status_code == 422
    settings = await client.get(
        f"/conversations/{conversation['id']}/notification-settings", headers=bearer("alice")
    )
    assert settings.json()["muted_until"] is None


async def test_a_date_at_the_edge_of_the_range_is_accepted(client: httpx.AsyncClient) -> None:
    conversation = await create_conversation(client, "alice", "bob")

    response = await client.put(
        f"/conversations/{conversation['id']}/notification-settings",
        json={"muted_until": "9999-12-31T11:59:59-12:00"},
        headers=bearer("alice"),
    )

    assert response.status_code == 200
    assert response.json()["muted_until"].startswith("9999-12-31T23:59:59")


# Device names


async def test_a_device_name_of_255_characters_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/devices/register",
        json={
            "device_token": FCM_TOKEN,
            "platform": "android",
            "provider": "fcm",
            "device_name": "n" * 255,
        },
        headers=bearer("alice"),
    )

    assert response.status_code == 201
    devices = (await client.get("/devices", headers=bearer("alice"))).json()["devices"]
    assert devices[0]["device_name"] == "n" * 255


async def test_a_device_name_of_256_characters_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/devices/register",
        json={
            "device_token": FCM_TOKEN,
            "platform": "android",
            "provider": "fcm",
            "device_name": "n" * 256,
        },
        headers=bearer("alice"),
    )

    assert response.status_code == 422
