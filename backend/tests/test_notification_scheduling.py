"""`send_at` holds a notification until then (surviving restarts); DELETE cancels it until it
has started (then 409)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from backend.tests.conftest import API, ServerFactory
from backend.tests.notification_helpers import (
    SERVICE,
    accepted,
    admin_entry,
    inbox_ids,
    notify,
    wait_until_sent,
)


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def test_a_future_send_at_is_scheduled_and_sent_when_due(client: httpx.AsyncClient) -> None:
    response = await notify(client, user_ids=["alice"], send_at=in_seconds(1.5))
    notification_id = response.json()["notification_id"]

    assert response.status_code == 202
    assert response.json()["status"] == "scheduled"
    assert (await admin_entry(client, notification_id))["status"] == "scheduled"
    assert await inbox_ids(client, "alice") == []

    await wait_until_sent(client, notification_id)
    assert await inbox_ids(client, "alice") == [notification_id]


async def test_a_past_send_at_is_queued_at_once(client: httpx.AsyncClient) -> None:
    response = await notify(client, user_ids=["alice"], send_at="2020-01-01T00:00:00Z")

    assert response.json()["status"] == "queued"
    await wait_until_sent(client, response.json()["notification_id"])


async def test_a_cancelled_notification_is_never_sent(client: httpx.AsyncClient) -> None:
    cancelled = await accepted(client, user_ids=["alice"], send_at=in_seconds(1))
    response = await client.delete(f"/internal/notifications/{cancelled}", headers=SERVICE)
    assert response.status_code == 200
    assert response.json() == {"notification_id": cancelled, "status": "cancelled"}

    # A later one to the same user: once it is sent, the cancelled one's time has long passed.
    later = await accepted(client, user_ids=["alice"], send_at=in_seconds(1.5))
    await wait_until_sent(client, later)
    assert await inbox_ids(client, "alice") == [later]
    assert (await admin_entry(client, cancelled))["status"] == "cancelled"
    assert (await admin_entry(client, cancelled))["recipients"] == 0


async def test_cancelling_twice_is_still_200(client: httpx.AsyncClient) -> None:
    notification_id = await accepted(client, user_ids=["alice"], send_at=in_seconds(3600))
    for _ in range(2):
        response = await client.delete(
            f"/internal/notifications/{notification_id}", headers=SERVICE
        )
        assert response.status_code == 200


async def test_cancelling_once_started_is_409(client: httpx.AsyncClient) -> None:
    notification_id = await accepted(client, user_ids=["alice"])
    await wait_until_sent(client, notification_id)

    response = await client.delete(f"/internal/notifications/{notification_id}", headers=SERVICE)
    assert response.status_code == 409
    assert await inbox_ids(client, "alice") == [notification_id]


async def test_cancelling_an_unknown_notification_is_404(client: httpx.AsyncClient) -> None:
    for notification_id in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        response = await client.delete(
            f"/internal/notifications/{notification_id}", headers=SERVICE
        )
        assert response.status_code == 404


async def test_cancelling_needs_the_api_key(client: httpx.AsyncClient) -> None:
    notification_id = await accepted(client, user_ids=["alice"], send_at=in_seconds(3600))
    response = await client.delete(f"/internal/notifications/{notification_id}")
    assert response.status_code == 401


async def test_a_scheduled_send_survives_a_restart(start_server: ServerFactory) -> None:
    first = await start_server()
    async with httpx.AsyncClient(base_url=first.url + API) as client:
        notification_id = await accepted(client, user_ids=["alice"], send_at=in_seconds(1.5))
    await first.stop()

    second = await start_server()
    async with httpx.AsyncClient(base_url=second.url + API) as client:
        await wait_until_sent(client, notification_id)
        assert await inbox_ids(client, "alice") == [notification_id]
