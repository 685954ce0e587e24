"""Preferences stop message pushes (push_disabled, quiet_hours) in the contract's skip order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from backend.tests.conftest import LiveServer, Providers, bearer
from backend.tests.messaging import create_conversation, eventually, send_message
from backend.tests.push_helpers import metric, register

SETTLE_SECONDS = 0.5  # a skipped recipient's push would have arrived meanwhile
ZONE = "Asia/Kathmandu"  # UTC+05:45: quiet hours only match when the zone is honoured


def token(user: str) -> str:
    return f"fcm-{user}-" + "x" * 40


async def setup(client: httpx.AsyncClient, *users: str) -> str:
    for user in users:
        body = {"device_token": token(user), "platform": "android", "provider": "fcm"}
        await register(client, user, body)
    return (await create_conversation(client, "alice", *users))["id"]


async def prefer(client: httpx.AsyncClient, user: str, **body: object) -> None:
    response = await client.put("/notification-preferences", json=body, headers=bearer(user))
    assert response.status_code == 200, response.text


def quiet_now() -> dict[str, str]:
    """A quiet window around the current wall-clock time in ZONE."""
    local = datetime.now(UTC).astimezone(ZoneInfo(ZONE))
    return {
        "start": (local - timedelta(hours=1)).strftime("%H:%M"),
        "end": (local + timedelta(hours=1)).strftime("%H:%M"),
        "timezone": ZONE,
    }


async def skipped(server: LiveServer, reason: str) -> float:
    async with httpx.AsyncClient(base_url=server.url) as root:
        return await metric(root, "messenger_push_skipped_total", reason=reason)


async def test_push_disabled_preference_stops_message_pushes(
    push_client: httpx.AsyncClient, push_server: LiveServer, providers: Providers
) -> None:
    conversation_id = await setup(push_client, "bob", "carol")
    await prefer(push_client, "bob", push=False)
    before = await skipped(push_server, "push_disabled")

    await send_message(push_client, "alice", conversation_id, "hello")

    await eventually(lambda: providers.fcm.count() == 1)
    await asyncio.sleep(SETTLE_SECONDS)
    assert [r.key for r in providers.fcm.received] == [token("carol")]
    assert await skipped(push_server, "push_disabled") == before + 1


async def test_quiet_hours_in_the_recipients_time_zone_stop_message_pushes(
    push_client: httpx.AsyncClient, push_server: LiveServer, providers: Providers
) -> None:
    conversation_id = await setup(push_client, "bob", "carol")
    await prefer(push_client, "bob", quiet_hours=quiet_now())
    before = await skipped(push_server, "quiet_hours")

    await send_message(push_client, "alice", conversation_id, "hello")

    await eventually(lambda: providers.fcm.count() == 1)
    await asyncio.sleep(SETTLE_SECONDS)
    assert [r.key for r in providers.fcm.received] == [token("carol")]
    assert await skipped(push_server, "quiet_hours") == before + 1


async def test_skip_reasons_count_the_first_that_applies(
    push_client: httpx.AsyncClient, push_server: LiveServer, providers: Providers
) -> None:
    # bob: push off and blocked alice -> push_disabled; carol: blocked alice and in quiet
    # hours -> blocked; dave: only quiet hours -> quiet_hours; erin gets the push.
    conversation_id = await setup(push_client, "bob", "carol", "dave", "erin")
    await prefer(push_client, "bob", push=False)
    for user in ("carol", "dave"):
        await prefer(push_client, user, quiet_hours=quiet_now())
    for user in ("bob", "carol"):
        blocked = await push_client.put("/blocks/alice", headers=bearer(user))
        assert blocked.status_code == 200
    reasons = ("push_disabled", "blocked", "quiet_hours")
    before = {reason: await skipped(push_server, reason) for reason in reasons}

    await send_message(push_client, "alice", conversation_id, "hello")

    await eventually(lambda: providers.fcm.count() == 1)
    await asyncio.sleep(SETTLE_SECONDS)
    assert [r.key for r in providers.fcm.received] == [token("erin")]
    after = {reason: await skipped(push_server, reason) for reason in reasons}
    assert {reason: after[reason] - before[reason] for reason in reasons} == {
        "push_disabled": 1,
        "blocked": 1,
        "quiet_hours": 1,
    }
