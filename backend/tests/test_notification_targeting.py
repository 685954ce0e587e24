"""Each targeting mode reaches exactly the right users, and each only once."""

from __future__ import annotations

import httpx

from backend.tests.conftest import bearer
from backend.tests.notification_helpers import (
    accepted,
    inbox_ids,
    register_fcm,
    subscribe,
    wait_until_sent,
)


async def test_user_ids_reach_exactly_those_users(client: httpx.AsyncClient) -> None:
    notification_id = await accepted(client, user_ids=["alice", "bob", "alice"])
    sent = await wait_until_sent(client, notification_id)

    assert sent["recipients"] == 2
    assert await inbox_ids(client, "alice") == [notification_id]
    assert await inbox_ids(client, "bob") == [notification_id]
    assert await inbox_ids(client, "carol") == []


async def test_never_seen_user_ids_are_valid_recipients(client: httpx.AsyncClient) -> None:
    notification_id = await accepted(client, user_ids=["brand-new-user"])
    await wait_until_sent(client, notification_id)

    assert await inbox_ids(client, "brand-new-user") == [notification_id]


async def test_topic_reaches_its_subscribers_only(client: httpx.AsyncClient) -> None:
    for user in ("alice", "bob"):
        assert (await subscribe(client, user, "release-notes")).status_code == 200
    assert (await subscribe(client, "carol", "other.topic")).status_code == 200

    notification_id = await accepted(client, topic="release-notes")
    sent = await wait_until_sent(client, notification_id)

    assert sent["recipients"] == 2
    assert sent["target"] == {"topic": "release-notes"}
    assert await inbox_ids(client, "alice") == [notification_id]
    assert await inbox_ids(client, "bob") == [notification_id]
    assert await inbox_ids(client, "carol") == []


async def test_all_reaches_users_with_an_active_device_or_an_inbox_entry(
    client: httpx.AsyncClient,
) -> None:
    await register_fcm(client, "has-device")
    earlier = await accepted(client, user_ids=["has-inbox"])
    await wait_until_sent(client, earlier)
    await subscribe(client, "only-subscribed", "news")  # neither device nor inbox: not "all"

    broadcast = await accepted(client, all=True, title="Maintenance tonight")
    sent = await wait_until_sent(client, broadcast)

    assert sent["recipients"] == 2
    assert sent["target"] == {"all": True}
    assert await inbox_ids(client, "has-device") == [broadcast]
    assert await inbox_ids(client, "has-inbox") == [broadcast, earlier]
    assert await inbox_ids(client, "only-subscribed") == []


async def test_a_broadcast_larger_than_one_batch_reaches_everyone_once(
    start_server,  # type: ignore[no-untyped-def]
) -> None:
    from backend.tests.conftest import API

    server = await start_server(notification_batch_size=7)
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        users = [f"user{i:03d}" for i in range(40)]
        notification_id = await accepted(client, user_ids=users)
        sent = await wait_until_sent(client, notification_id)
        assert sent["recipients"] == 40
        for user in (users[0], users[6], users[7], users[39]):
            assert await inbox_ids(client, user) == [notification_id]


async def test_channels_without_in_app_create_no_inbox_entry(client: httpx.AsyncClient) -> None:
    notification_id = await accepted(client, user_ids=["alice"], channels=["push"])
    sent = await wait_until_sent(client, notification_id)

    assert sent["recipients"] == 1
    assert sent["push"] == {"delivered": 0, "token_dead": 0, "failed": 0, "pending": 1}
    assert sent["in_app"] == {"read": 0, "unread": 0}
    assert await inbox_ids(client, "alice") == []
    assert (await client.get("/notifications", headers=bearer("alice"))).json()[
        "next_cursor"
    ] is None


async def test_a_small_send_does_not_wait_for_a_big_broadcast_to_finish(
    start_server,  # type: ignore[no-untyped-def]
) -> None:
    from backend.tests.conftest import API
    from backend.tests.notification_helpers import admin_entry

    server = await start_server(notification_batch_size=5)
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        big = await accepted(client, user_ids=[f"member{i:04d}" for i in range(3000)])
        small = await accepted(client, user_ids=["zed"])
        await wait_until_sent(client, small)
        assert (await admin_entry(client, big))["status"] == "sending"


async def test_an_unsubscribed_user_no_longer_gets_the_topic(client: httpx.AsyncClient) -> None:
    await subscribe(client, "alice", "news")
    await subscribe(client, "bob", "news")
    await client.delete("/topics/news/subscription", headers=bearer("bob"))

    notification_id = await accepted(client, topic="news")
    await wait_until_sent(client, notification_id)

    assert await inbox_ids(client, "alice") == [notification_id]
    assert await inbox_ids(client, "bob") == []
