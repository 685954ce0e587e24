"""The push pipeline under faults and hostile situations: database connections killed mid
fan-out, tokens that move between users, pushes that grew too old, redirecting push services."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import asyncpg
import httpx

from backend.devtools.emulators import Reply, fcm
from backend.devtools.providers import Providers
from backend.tests.conftest import API, TEST_API_KEY, LiveServer, ServerFactory, bearer
from backend.tests.messaging import create_conversation, eventually, send_message
from backend.tests.push_durability_support import offline_group, workers
from backend.tests.push_helpers import metric, register

KILL_OTHER_CONNECTIONS = """
    SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


async def delivery_of(sql: asyncpg.Connection, device_id: int) -> asyncpg.Record:
    return await sql.fetchrow(
        "SELECT status, last_error FROM push_deliveries WHERE device_id = $1", device_id
    )


async def test_database_connections_killed_mid_fan_out_push_every_device_exactly_once(
    start_server: ServerFactory,
    base_settings: dict[str, Any],
    providers: Providers,
    sql: asyncpg.Connection,
) -> None:
    api = await start_server(background=False, **providers.settings())
    async with (
        httpx.AsyncClient(base_url=api.url + API) as client,
        workers(base_settings, providers) as start_worker,
    ):
        conversation, tokens = await offline_group(client, 20)
        providers.fcm.latency = 0.1
        start_worker(push_concurrency_per_provider=2)
        await send_message(client, "alice", conversation["id"], "survives a database hiccup")

        for threshold in (3, 8, 13):
            await eventually(lambda t=threshold: providers.fcm.count() >= t, interval=0.01)
            assert await sql.fetchval(KILL_OTHER_CONNECTIONS) > 0

        await eventually(lambda: {r.key for r in providers.fcm.received} == set(tokens))
        await asyncio.sleep(1)  # anything sent twice would show up meanwhile

    assert Counter(r.key for r in providers.fcm.received) == Counter(tokens)


async def test_a_token_taken_over_by_another_user_gets_none_of_the_previous_owners_pushes(
    push_client: httpx.AsyncClient, providers: Providers, sql: asyncpg.Connection
) -> None:
    token = "fcm-moving-" + "x" * 40
    registration = {"device_token": token, "platform": "android", "provider": "fcm"}
    device = await register(push_client, "bob", registration)
    providers.fcm.script(token, fcm.quota_exceeded(retry_after=30))  # bob's push waits to retry
    conversation = await create_conversation(push_client, "alice", "bob")
    await send_message(push_client, "alice", conversation["id"], "for bob's eyes only")
    await eventually(lambda: providers.fcm.count() == 1)

    assert await register(push_client, "carol", registration) == device

    row = await delivery_of(sql, device)
    assert (row["status"], row["last_error"]) == ("failed", "token registered by another user")
    assert [r.status for r in providers.fcm.received] == [429]


async def test_a_message_push_undelivered_after_the_maximum_age_ends_as_expired(
    push_client: httpx.AsyncClient, providers: Providers, sql: asyncpg.Connection
) -> None:
    token = "fcm-stale-" + "x" * 40
    device = await register(
        push_client, "bob", {"device_token": token, "platform": "android", "provider": "fcm"}
    )
    providers.fcm.script(token, fcm.quota_exceeded(retry_after=30))
    conversation = await create_conversation(push_client, "alice", "bob")
    await send_message(push_client, "alice", conversation["id"], "old news")
    await eventually(lambda: providers.fcm.count() == 1)

    # The message was stored two hours ago (PUSH_MAX_AGE_SECONDS is one hour) and is due now.
    await sql.execute("UPDATE push_jobs SET created_at = now() - interval '2 hours'")
    await sql.execute("UPDATE push_deliveries SET next_attempt_at = now()")

    async def expired() -> bool:
        row = await delivery_of(sql, device)
        return (row["status"], row["last_error"]) == ("failed", "expired")

    await eventually(expired)
    assert providers.fcm.count() == 1


async def test_a_web_push_redirect_is_failed_and_not_followed(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    subscription = providers.webpush.subscribe()
    elsewhere = providers.webpush.subscribe()["endpoint"]
    providers.webpush.always(subscription["endpoint"], Reply(307, None, {"Location": elsewhere}))
    await register(
        push_client,
        "alice",
        {"device_token": json.dumps(subscription), "platform": "web", "provider": "web_push"},
    )

    response = await push_client.post("/devices/test", headers=bearer("alice"))

    assert [r["outcome"] for r in response.json()["results"]] == ["failed"]
    assert [r.key for r in providers.webpush.received] == [subscription["endpoint"]]


async def test_a_job_whose_fan_out_keeps_failing_is_parked_and_blocks_nobody(
    push_client: httpx.AsyncClient,
    push_server: LiveServer,
    providers: Providers,
    sql: asyncpg.Connection,
) -> None:
    broken = await sql.fetchval(
        "INSERT INTO push_jobs (kind, title, body, data) VALUES ('message', 't', 'b', '{}') "
        "RETURNING id"
    )
    token = "fcm-after-" + "x" * 40
    await register(
        push_client, "bob", {"device_token": token, "platform": "android", "provider": "fcm"}
    )
    conversation = await create_conversation(push_client, "alice", "bob")
    await send_message(push_client, "alice", conversation["id"], "still delivered")

    await eventually(lambda: providers.fcm.count() == 1)

    async def parked() -> bool:
        return await sql.fetchval(
            "SELECT failed_at IS NOT NULL FROM push_jobs WHERE id = $1", broken
        )

    await eventually(parked)
    async with httpx.AsyncClient(base_url=push_server.url) as root:
        assert await metric(root, "messenger_push_jobs_parked_total") >= 1


async def test_pushes_are_also_counted_by_kind(
    push_client: httpx.AsyncClient, push_server: LiveServer
) -> None:
    await register(
        push_client, "alice", {"device_token": "f" * 40, "platform": "android", "provider": "fcm"}
    )
    labels = {"kind": "test", "provider": "fcm", "outcome": "delivered"}
    async with httpx.AsyncClient(base_url=push_server.url) as root:
        before = await metric(root, "messenger_pushes_by_kind_total", **labels)

        await push_client.post("/devices/test", headers=bearer("alice"))

        assert await metric(root, "messenger_pushes_by_kind_total", **labels) == before + 1


async def test_a_burst_of_direct_pushes_does_not_hold_up_message_pushes(
    start_server: ServerFactory, providers: Providers
) -> None:
    capacity = {"push_interactive_concurrency": 1, "push_concurrency_per_provider": 2}
    server = await start_server(**providers.settings(), **capacity)
    alice_token, bob_token = "fcm-alice-" + "a" * 40, "fcm-bob-" + "b" * 40
    async with httpx.AsyncClient(base_url=server.url + API, timeout=60) as client:
        for user, token in (("alice", alice_token), ("bob", bob_token)):
            await register(
                client, user, {"device_token": token, "platform": "android", "provider": "fcm"}
            )
        conversation = await create_conversation(client, "alice", "bob")
        providers.fcm.latency = 0.3
        notify = {"user_id": "alice", "title": "t", "body": "b", "priority": "high"}
        burst = [
            asyncio.create_task(
                client.post("/internal/notify", json=notify, headers={"X-API-Key": TEST_API_KEY})
            )
            for _ in range(8)
        ]
        await eventually(lambda: providers.fcm.count() >= 1)

        await send_message(client, "alice", conversation["id"], "not stuck behind the burst")
        await eventually(lambda: any(r.key == bob_token for r in providers.fcm.received))

        direct_so_far = sum(r.key == alice_token for r in providers.fcm.received)
        await asyncio.gather(*burst)
    assert direct_so_far < len(burst)


async def test_a_job_for_a_set_of_users_is_fanned_out_to_each_of_their_devices(
    push_client: httpx.AsyncClient, providers: Providers, sql: asyncpg.Connection
) -> None:
    """The seam later push kinds use (notification pushes): `outbox.enqueue_push`."""
    tokens = {user: f"fcm-{user}-" + "x" * 40 for user in ("bob", "carol", "dave")}
    for user, token in tokens.items():
        await register(
            push_client, user, {"device_token": token, "platform": "android", "provider": "fcm"}
        )

    await sql.execute(
        "INSERT INTO push_jobs (kind, title, body, data, recipient_ids) "
        "VALUES ('notification', 'Maintenance', 'Tonight', '{}', ARRAY['bob', 'carol'])"
    )

    await eventually(lambda: providers.fcm.count() == 2)
    assert {r.key for r in providers.fcm.received} == {tokens["bob"], tokens["carol"]}


async def test_a_recipient_who_blocked_the_sender_gets_no_push(
    push_client: httpx.AsyncClient, push_server: LiveServer, providers: Providers
) -> None:
    for user in ("bob", "carol"):
        await register(
            push_client,
            user,
            {"device_token": f"fcm-{user}-" + "x" * 40, "platform": "android", "provider": "fcm"},
        )
    conversation = await create_conversation(push_client, "alice", "bob", "carol")
    assert (await push_client.put("/blocks/alice", headers=bearer("bob"))).status_code == 200
    async with httpx.AsyncClient(base_url=push_server.url) as root:
        before = await metric(root, "messenger_push_skipped_total", reason="blocked")

        await send_message(push_client, "alice", conversation["id"], "hello both")

        await eventually(lambda: providers.fcm.count() == 1)
        await asyncio.sleep(0.5)  # bob's push would have arrived meanwhile
        assert [r.key for r in providers.fcm.received] == ["fcm-carol-" + "x" * 40]
        assert await metric(root, "messenger_push_skipped_total", reason="blocked") == before + 1
