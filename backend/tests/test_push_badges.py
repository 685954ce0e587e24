"""Every message push carries the recipient's unread total (messages + inbox) as the badge."""

from __future__ import annotations

import asyncio

import httpx

from backend.devtools.emulators.base import Received
from backend.tests.conftest import Providers, bearer
from backend.tests.messaging import create_conversation, eventually, send_message
from backend.tests.notification_helpers import accepted, inbox_ids
from backend.tests.push_helpers import register_all_providers


def of_message(pushes: list[Received], message_id: str) -> Received:
    """The push of this message (providers may answer two jobs out of order)."""
    return next(
        p for p in pushes if p.payload.get("data", p.payload).get("message_id") == message_id
    )


async def test_message_push_badge_counts_unread_messages_and_inbox_notifications(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "bob")
    notification_id = await accepted(push_client, user_ids=["bob"], channels=["in_app"])

    async def in_inbox() -> bool:
        return notification_id in await inbox_ids(push_client, "bob")

    await eventually(in_inbox)
    team = await create_conversation(push_client, "alice", "bob", title="Team")
    other = await create_conversation(push_client, "carol", "bob")
    await send_message(push_client, "carol", other["id"], "one")
    await asyncio.to_thread(providers.fcm.wait_for, 1)
    second = (await send_message(push_client, "alice", team["id"], "two")).json()["id"]

    # 2 unread messages in two conversations + 1 unread inbox notification.
    fcm_push = of_message(await asyncio.to_thread(providers.fcm.wait_for, 2), second)
    assert fcm_push.payload["android"]["notification"]["notification_count"] == 3
    assert fcm_push.payload["data"]["unread_total"] == "3"
    apns_push = of_message(await asyncio.to_thread(providers.apns.wait_for, 2), second)
    assert apns_push.payload["aps"]["badge"] == 3
    web_push = of_message(await asyncio.to_thread(providers.webpush.wait_for, 2), second)
    assert web_push.payload["data"]["unread_total"] == "3"


async def test_badge_drops_after_the_recipient_reads(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "bob")
    conversation = await create_conversation(push_client, "alice", "bob")
    first = (await send_message(push_client, "alice", conversation["id"], "one")).json()
    await asyncio.to_thread(providers.fcm.wait_for, 1)
    read = await push_client.post(
        f"/conversations/{conversation['id']}/read",
        json={"up_to": first["id"]},
        headers=bearer("bob"),
    )
    assert read.status_code == 200, read.text

    await send_message(push_client, "alice", conversation["id"], "two")

    pushes = await asyncio.to_thread(providers.fcm.wait_for, 2)
    assert [p.payload["data"]["unread_total"] for p in pushes] == ["1", "1"]  # read, then one new
