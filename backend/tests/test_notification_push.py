"""Channel `push` of notifications: the right devices, the contract's data, presence by priority,
and the admin history counting what the providers received."""

from __future__ import annotations

import asyncio

import httpx

from backend.devtools.emulators import fcm
from backend.tests.conftest import LiveServer, Providers
from backend.tests.messaging import eventually, ws_client
from backend.tests.notification_helpers import accepted, admin_entry, subscribe, wait_until_sent
from backend.tests.push_helpers import register_all_providers

SETTLE_SECONDS = 0.7


def pushed_keys(providers: Providers) -> set[str]:
    return {
        r.key for r in providers.fcm.received + providers.apns.received + providers.webpush.received
    }


async def test_notification_to_user_ids_pushes_every_device_with_the_notification_data(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    bob = await register_all_providers(push_client, providers, "bob")
    carol = await register_all_providers(push_client, providers, "carol")

    notification_id = await accepted(
        push_client,
        user_ids=["bob", "carol", "never-seen"],
        title="Invoice ready",
        body="Your March invoice",
        type="billing",
        data={"invoice": "42"},
    )

    data = {
        "invoice": "42",
        "type": "notification",
        "notification_id": notification_id,
        "notification_type": "billing",
    }
    fcm = await asyncio.to_thread(providers.fcm.wait_for, 2)
    assert {p.key for p in fcm} == {bob.fcm_token, carol.fcm_token}
    assert all(p.payload["data"] == data for p in fcm)
    assert all(
        p.payload["notification"] == {"title": "Invoice ready", "body": "Your March invoice"}
        for p in fcm
    )
    apns = await asyncio.to_thread(providers.apns.wait_for, 2)
    assert {p.key for p in apns} == {bob.apns_token, carol.apns_token}
    assert all({k: v for k, v in p.payload.items() if k != "aps"} == data for p in apns)
    web = await asyncio.to_thread(providers.webpush.wait_for, 2)
    assert {p.key for p in web} == {bob.endpoint, carol.endpoint}
    assert all(p.payload["data"] == data for p in web)


async def test_topic_notification_pushes_only_the_subscribers(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    bob = await register_all_providers(push_client, providers, "bob")
    await register_all_providers(push_client, providers, "carol")
    await subscribe(push_client, "bob", "releases")

    notification_id = await accepted(push_client, topic="releases", title="v2 is out")
    await wait_until_sent(push_client, notification_id)

    await asyncio.to_thread(providers.fcm.wait_for, 1)
    await asyncio.sleep(SETTLE_SECONDS)
    assert pushed_keys(providers) == {bob.fcm_token, bob.apns_token, bob.endpoint}


async def test_broadcast_to_all_pushes_every_user_with_a_device_once(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    bob = await register_all_providers(push_client, providers, "bob")
    carol = await register_all_providers(push_client, providers, "carol")

    await accepted(push_client, all=True, title="Scheduled maintenance")

    await asyncio.to_thread(providers.fcm.wait_for, 2)
    await asyncio.to_thread(providers.apns.wait_for, 2)
    await asyncio.to_thread(providers.webpush.wait_for, 2)
    await asyncio.sleep(SETTLE_SECONDS)
    assert providers.fcm.count() == providers.apns.count() == providers.webpush.count() == 2
    assert pushed_keys(providers) == {
        bob.fcm_token,
        bob.apns_token,
        bob.endpoint,
        carol.fcm_token,
        carol.apns_token,
        carol.endpoint,
    }


async def test_channels_without_push_send_no_push(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "bob")

    notification_id = await accepted(push_client, user_ids=["bob"], channels=["in_app"])
    sent = await wait_until_sent(push_client, notification_id)
    await asyncio.sleep(SETTLE_SECONDS)

    assert providers.fcm.count() == providers.apns.count() == providers.webpush.count() == 0
    assert sent["push"] == {"delivered": 0, "token_dead": 0, "failed": 0, "pending": 0}


async def test_normal_priority_skips_an_active_user(
    push_server: LiveServer, push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "bob")

    async with ws_client(push_server.ws_url, "bob"):
        notification_id = await accepted(push_client, user_ids=["bob"], priority="normal")
        await wait_until_sent(push_client, notification_id)
        await asyncio.sleep(SETTLE_SECONDS)

    assert providers.fcm.count() == providers.apns.count() == providers.webpush.count() == 0


async def test_high_priority_pushes_an_active_user(
    push_server: LiveServer, push_client: httpx.AsyncClient, providers: Providers
) -> None:
    bob = await register_all_providers(push_client, providers, "bob")

    async with ws_client(push_server.ws_url, "bob"):
        await accepted(push_client, user_ids=["bob"], priority="high")
        push = (await asyncio.to_thread(providers.fcm.wait_for, 1))[0]

    assert push.key == bob.fcm_token


async def test_admin_history_counts_the_pushes_the_providers_received(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "bob")
    await register_all_providers(push_client, providers, "carol")

    notification_id = await accepted(push_client, user_ids=["bob", "carol", "nobody"])

    async def all_settled() -> bool:
        entry = await admin_entry(push_client, notification_id)
        return entry["push"]["pending"] == 0 and entry["push"]["delivered"] > 0

    await eventually(all_settled)
    received = providers.fcm.count() + providers.apns.count() + providers.webpush.count()
    entry = await admin_entry(push_client, notification_id)
    assert received == 6
    assert entry["recipients"] == 3
    assert entry["push"] == {"delivered": 6, "token_dead": 0, "failed": 0, "pending": 0}


async def test_admin_history_counts_a_dead_token(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    bob = await register_all_providers(push_client, providers, "bob")
    providers.fcm.always(bob.fcm_token, fcm.unregistered())

    notification_id = await accepted(push_client, user_ids=["bob"])

    async def all_settled() -> bool:
        entry = await admin_entry(push_client, notification_id)
        return entry["push"]["pending"] == 0 and entry["push"]["token_dead"] == 1

    await eventually(all_settled)
    entry = await admin_entry(push_client, notification_id)
    assert entry["push"] == {"delivered": 2, "token_dead": 1, "failed": 0, "pending": 0}
