"""Notification channels meet the users' preferences: `push: false` stops even high priority,
quiet hours hold normal ones back, and channel `email` goes through a real SMTP server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from backend.devtools.emulators.smtp import SmtpSink, parts
from backend.tests.conftest import API, Providers, ServerFactory
from backend.tests.email_helpers import bearer_with_email, put_preferences
from backend.tests.messaging import eventually
from backend.tests.notification_helpers import accepted, admin_entry, wait_until_sent
from backend.tests.push_helpers import register_all_providers

SETTLE_SECONDS = 0.7


def quiet_now() -> dict[str, str]:
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    return {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M"), "timezone": "UTC"}


def pushes(providers: Providers) -> int:
    return providers.fcm.count() + providers.apns.count() + providers.webpush.count()


async def test_push_false_stops_even_a_high_priority_notification(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "bob")
    await put_preferences(push_client, "bob", {"push": False})

    notification_id = await accepted(push_client, user_ids=["bob"], priority="high")
    await wait_until_sent(push_client, notification_id)
    await asyncio.sleep(SETTLE_SECONDS)

    assert pushes(providers) == 0


async def test_quiet_hours_hold_back_a_normal_notification(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "bob")
    await put_preferences(push_client, "bob", {"quiet_hours": quiet_now()})

    notification_id = await accepted(push_client, user_ids=["bob"], priority="normal")
    await wait_until_sent(push_client, notification_id)
    await asyncio.sleep(SETTLE_SECONDS)

    assert pushes(providers) == 0


async def test_high_priority_pushes_through_quiet_hours(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    bob = await register_all_providers(push_client, providers, "bob")
    await put_preferences(push_client, "bob", {"quiet_hours": quiet_now()})

    await accepted(push_client, user_ids=["bob"], priority="high")

    assert (await asyncio.to_thread(providers.fcm.wait_for, 1))[0].key == bob.fcm_token


async def test_email_channel_sends_one_escaped_email_per_recipient_with_an_address(
    start_server: ServerFactory, smtp: SmtpSink
) -> None:
    server = await start_server(**smtp.settings())
    async with httpx.AsyncClient(base_url=server.url + API, timeout=30) as client:
        await client.get("/notification-preferences", headers=bearer_with_email("ann", "a@x.test"))
        await client.get("/notification-preferences", headers=bearer_with_email("ben", "b@x.test"))
        await put_preferences(client, "ben", {"email": False})

        notification_id = await accepted(
            client,
            user_ids=["ann", "ben", "no-address"],
            channels=["email"],
            title="Invoice <ready>",
            body='Pay <script>alert("x")</script> & go',
            action_url="https://example.com/invoices?id=1&v=2",
        )

        await eventually(lambda: len(smtp.to("a@x.test")) == 1)

        async def counted() -> bool:
            return (await admin_entry(client, notification_id))["email"]["sent"] == 1

        await eventually(counted)
        entry = await admin_entry(client, notification_id)

    [mail] = smtp.to("a@x.test")
    assert mail["Subject"] == "Invoice <ready>"
    text, html = parts(mail)
    assert 'Pay <script>alert("x")</script> & go' in text
    assert "https://example.com/invoices?id=1&v=2" in text
    assert "<script>" not in html
    assert "Pay &lt;script&gt;" in html
    assert smtp.to("b@x.test") == []
    assert entry["email"] == {"sent": 1, "failed": 0, "pending": 0}
    assert entry["push"] == {"delivered": 0, "token_dead": 0, "failed": 0, "pending": 0}
