"""`notification.new` over the WebSocket, across instances; admin history with its counts."""

from __future__ import annotations

from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

from backend.tests.conftest import API, ServerFactory, bearer
from backend.tests.messaging import recv_json, ws_client
from backend.tests.notification_helpers import accepted, admin_entry, inbox, wait_until_sent


async def next_notification(ws: ClientConnection) -> dict[str, Any]:
    """The next `notification.new` frame (Redis pub/sub spans databases: other test sessions'
    frames for a user of the same name may arrive too)."""
    while True:
        frame = await recv_json(ws)
        if frame.get("type") == "notification.new":
            return frame


async def test_recipients_connected_to_another_instance_get_notification_new(
    start_server: ServerFactory,
) -> None:
    await start_server()  # does the background work
    api_only = await start_server(background=False)
    async with (
        httpx.AsyncClient(base_url=api_only.url + API) as client,
        ws_client(api_only.ws_url, "alice") as alice_ws,
    ):
        notification_id = await accepted(
            client, user_ids=["alice", "bob"], title="Export ready", data={"id": "7"}
        )
        frame = await next_notification(alice_ws)
        [entry] = (await inbox(client, "alice"))["notifications"]
    assert frame == {"type": "notification.new", "notification": entry}
    assert entry["notification_id"] == notification_id


async def test_non_recipients_get_no_frame(client: httpx.AsyncClient, server) -> None:  # type: ignore[no-untyped-def]
    async with ws_client(server.ws_url, "carol") as carol_ws:
        first = await accepted(client, user_ids=["alice"])
        await wait_until_sent(client, first)
        mine = await accepted(client, user_ids=["carol"])
        frame = await next_notification(carol_ws)
    assert frame["notification"]["notification_id"] == mine


async def test_admin_history_counts_recipients_and_read_state(client: httpx.AsyncClient) -> None:
    notification_id = await accepted(
        client, user_ids=["alice", "bob", "carol"], channels=["in_app", "push", "email"]
    )
    await wait_until_sent(client, notification_id)
    [entry] = (await inbox(client, "alice"))["notifications"]
    await client.post(f"/notifications/{entry['id']}/read", headers=bearer("alice"))

    history = await admin_entry(client, notification_id)
    assert history["recipients"] == 3
    assert history["in_app"] == {"read": 1, "unread": 2}
    # Nobody has a device (pending until the fan-out drops them) or an email address.
    assert {k: v for k, v in history["push"].items() if k != "pending"} == {
        "delivered": 0,
        "token_dead": 0,
        "failed": 0,
    }
    assert history["email"] == {"sent": 0, "failed": 0, "pending": 0}
    assert history["target"] == {"user_ids": ["alice", "bob", "carol"]}
    assert history["type"] == "general"
    assert {"title", "created_at", "send_at"} <= set(history)


async def test_admin_history_pages_newest_first(client: httpx.AsyncClient) -> None:
    sent = [await accepted(client, user_ids=["alice"], title=f"n{i}") for i in range(3)]

    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = await client.get(
            "/admin/notifications", params=params, headers=bearer("root", admin=True)
        )
        assert response.status_code == 200
        seen += [n["id"] for n in response.json()["notifications"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(sent))


async def test_admin_history_needs_the_admin_role(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin/notifications", headers=bearer("alice"))
    assert response.status_code == 403
