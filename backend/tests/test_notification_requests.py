"""`POST /internal/notifications`: authentication, validation (422, nothing written) and
idempotency (a repeated key answers the first answer with 200 and sends nothing again)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from backend.tests.conftest import API, ServerFactory
from backend.tests.notification_helpers import accepted, inbox_ids, notify, wait_until_sent


async def test_accepts_with_202_and_queued(client: httpx.AsyncClient) -> None:
    response = await notify(client, user_ids=["alice"], body="It is ready", type="export")

    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert set(response.json()) == {"notification_id", "status"}


async def test_requires_the_api_key(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/internal/notifications", json={"user_ids": ["alice"], "title": "x"}
    )
    assert response.status_code == 401


INVALID_BODIES: list[dict[str, Any]] = [
    {},  # no target
    {"user_ids": ["alice"], "topic": "news"},
    {"user_ids": ["alice"], "all": True},
    {"topic": "news", "all": True},
    {"all": False},
    {"user_ids": []},
    {"user_ids": [""]},
    {"user_ids": ["x" * 65]},
    {"topic": "Not-Lowercase"},
    {"topic": "x" * 65},
    {"user_ids": ["alice"], "title": ""},
    {"user_ids": ["alice"], "title": "x" * 201},
    {"user_ids": ["alice"], "body": "x" * 2001},
    {"user_ids": ["alice"], "type": ""},
    {"user_ids": ["alice"], "type": "x" * 65},
    {"user_ids": ["alice"], "priority": "urgent"},
    {"user_ids": ["alice"], "action_url": "http://example.com/x"},
    {"user_ids": ["alice"], "action_url": "javascript:alert(1)"},
    {"user_ids": ["alice"], "action_url": "relative/path"},
    {"user_ids": ["alice"], "data": {"n": 1}},
    {"user_ids": ["alice"], "data": ["a"]},
    {"user_ids": ["alice"], "channels": ["sms"]},
    {"user_ids": ["alice"], "channels": []},
    {"user_ids": ["alice"], "send_at": "not a date"},
    {"user_ids": ["alice"], "send_at": "2030-01-01T00:00:00"},  # no time zone
    {"user_ids": ["alice"], "title": "nul \u0000 inside"},
    {"user_ids": ["al\u0000ice"]},
]


@pytest.mark.parametrize("body", INVALID_BODIES)
async def test_invalid_requests_are_422_and_write_nothing(
    client: httpx.AsyncClient, sql: asyncpg.Connection, body: dict[str, Any]
) -> None:
    response = await notify(client, **body)

    assert response.status_code == 422, response.text
    assert await sql.fetchval("SELECT count(*) FROM notifications") == 0


async def test_action_url_may_be_https_or_a_path(client: httpx.AsyncClient) -> None:
    for url in ("https://example.com/exports/1", "/exports/1"):
        assert (await notify(client, user_ids=["a"], action_url=url)).status_code == 202


async def test_a_repeated_idempotency_key_returns_the_first_answer_and_sends_nothing_again(
    client: httpx.AsyncClient,
) -> None:
    key = {"Idempotency-Key": "export-42-ready"}
    first = await notify(client, user_ids=["alice"], headers=key)
    again = await notify(client, user_ids=["alice"], headers=key)

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == first.json()
    await wait_until_sent(client, first.json()["notification_id"])
    assert await inbox_ids(client, "alice") == [first.json()["notification_id"]]


async def test_concurrent_requests_with_one_key_queue_one_notification(
    client: httpx.AsyncClient, sql: asyncpg.Connection
) -> None:
    key = {"Idempotency-Key": "race"}
    responses = await asyncio.gather(
        *(notify(client, user_ids=["alice"], headers=key) for _ in range(8))
    )

    assert sorted(r.status_code for r in responses) == [200] * 7 + [202]
    assert len({r.json()["notification_id"] for r in responses}) == 1
    assert await sql.fetchval("SELECT count(*) FROM notifications") == 1


async def test_an_idempotency_key_older_than_24_hours_queues_a_new_notification(
    client: httpx.AsyncClient, sql: asyncpg.Connection
) -> None:
    key = {"Idempotency-Key": "daily-report"}
    first = await notify(client, user_ids=["alice"], headers=key)
    await sql.execute("UPDATE notifications SET created_at = now() - interval '25 hours'")
    later = await notify(client, user_ids=["alice"], headers=key)

    assert later.status_code == 202
    assert later.json()["notification_id"] != first.json()["notification_id"]


async def test_different_keys_are_different_notifications(client: httpx.AsyncClient) -> None:
    one = await accepted(client, user_ids=["alice"], headers={"Idempotency-Key": "a"})
    two = await accepted(client, user_ids=["alice"], headers={"Idempotency-Key": "b"})
    assert one != two


async def test_a_malformed_idempotency_key_is_422(
    client: httpx.AsyncClient, sql: asyncpg.Connection
) -> None:
    response = await notify(client, user_ids=["alice"], headers={"Idempotency-Key": "x" * 256})
    assert response.status_code == 422
    assert await sql.fetchval("SELECT count(*) FROM notifications") == 0


async def test_at_most_10000_user_ids(start_server: ServerFactory) -> None:
    # 10,000 ids exceed the default MAX_BODY_BYTES: a host sending that many raises it.
    server = await start_server(max_body_bytes=1_000_000)
    async with httpx.AsyncClient(base_url=server.url + API, timeout=30) as client:
        too_many = await notify(client, user_ids=[f"u{i}" for i in range(10_001)])
        most = await notify(client, user_ids=[f"u{i}" for i in range(10_000)])
    assert too_many.status_code == 422
    assert most.status_code == 202
