"""Topic subscriptions: subscribe (idempotent), unsubscribe, list; names are validated."""

from __future__ import annotations

import httpx

from backend.tests.conftest import bearer
from backend.tests.notification_helpers import subscribe


async def _topics(client: httpx.AsyncClient, user_id: str) -> list[str]:
    response = await client.get("/topics", headers=bearer(user_id))
    assert response.status_code == 200
    return response.json()["topics"]


async def test_subscribing_twice_keeps_one_subscription(client: httpx.AsyncClient) -> None:
    assert (await subscribe(client, "alice", "news")).status_code == 200
    assert (await subscribe(client, "alice", "news")).status_code == 200
    assert (await subscribe(client, "alice", "billing.v2")).status_code == 200

    assert await _topics(client, "alice") == ["billing.v2", "news"]
    assert await _topics(client, "bob") == []


async def test_unsubscribing_removes_the_topic_and_is_repeatable(
    client: httpx.AsyncClient,
) -> None:
    await subscribe(client, "alice", "news")

    for _ in range(2):
        response = await client.delete("/topics/news/subscription", headers=bearer("alice"))
        assert response.status_code == 200
    assert await _topics(client, "alice") == []


async def test_invalid_topic_names_are_422(client: httpx.AsyncClient) -> None:
    for name in ("News", "with space", "x" * 65, "a*b", "émoji"):
        response = await subscribe(client, "alice", name)
        assert response.status_code == 422, name
    assert await _topics(client, "alice") == []


async def test_topics_need_authentication(client: httpx.AsyncClient) -> None:
    assert (await client.get("/topics")).status_code == 401
    assert (await client.put("/topics/news/subscription")).status_code == 401
