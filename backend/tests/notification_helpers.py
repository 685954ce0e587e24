"""Helpers for the notification center tests: the calls a host application and its users make."""

from __future__ import annotations

from typing import Any

import httpx

from backend.tests.conftest import TEST_API_KEY, bearer
from backend.tests.messaging import eventually

SERVICE = {"X-API-Key": TEST_API_KEY}


async def notify(
    client: httpx.AsyncClient, *, headers: dict[str, str] | None = None, **body: Any
) -> httpx.Response:
    body.setdefault("title", "Your export is ready")
    return await client.post(
        "/internal/notifications", json=body, headers={**SERVICE, **(headers or {})}
    )


async def accepted(client: httpx.AsyncClient, **body: Any) -> str:
    response = await notify(client, **body)
    assert response.status_code == 202, response.text
    return response.json()["notification_id"]


async def inbox(client: httpx.AsyncClient, user_id: str, **params: Any) -> dict[str, Any]:
    response = await client.get("/notifications", params=params, headers=bearer(user_id))
    assert response.status_code == 200, response.text
    return response.json()


async def inbox_ids(client: httpx.AsyncClient, user_id: str) -> list[str]:
    """Notification ids in the user's inbox, newest first."""
    page = await inbox(client, user_id, limit=200)
    return [entry["notification_id"] for entry in page["notifications"]]


async def admin_entry(client: httpx.AsyncClient, notification_id: str) -> dict[str, Any]:
    response = await client.get(
        "/admin/notifications", params={"limit": 200}, headers=bearer("root", admin=True)
    )
    assert response.status_code == 200, response.text
    return next(n for n in response.json()["notifications"] if n["id"] == notification_id)


async def wait_until_sent(client: httpx.AsyncClient, notification_id: str) -> dict[str, Any]:
    async def sent() -> bool:
        return (await admin_entry(client, notification_id))["status"] == "sent"

    await eventually(sent)
    return await admin_entry(client, notification_id)


async def subscribe(client: httpx.AsyncClient, user_id: str, topic: str) -> httpx.Response:
    return await client.put(f"/topics/{topic}/subscription", headers=bearer(user_id))


async def register_fcm(client: httpx.AsyncClient, user_id: str) -> None:
    response = await client.post(
        "/devices/register",
        json={
            "device_token": f"fcm-{user_id}-" + "x" * 32,
            "platform": "android",
            "provider": "fcm",
        },
        headers=bearer(user_id),
    )
    assert response.status_code in (200, 201), response.text
