"""GET|PUT /notification-preferences, and the set-based questions push and email ask."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from backend.app.config import Settings
from backend.app.db import create_engine, create_sessionmaker
from backend.app.messenger.preferences import service
from backend.app.messenger.preferences.service import PushBlock
from backend.tests.conftest import bearer
from backend.tests.email_helpers import bearer_with_email, midday_zone, put_preferences

DEFAULTS = {
    "push": True,
    "email": True,
    "email_address": None,
    "quiet_hours": None,
    "digest": {"enabled": False, "time": "08:00", "timezone": "UTC"},
}


async def test_preferences_start_at_the_defaults(client: httpx.AsyncClient) -> None:
    response = await client.get("/notification-preferences", headers=bearer("alice"))
    assert response.status_code == 200
    assert response.json() == DEFAULTS


async def test_preferences_need_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/notification-preferences")).status_code == 401
    assert (await client.put("/notification-preferences", json={})).status_code == 401


async def test_put_is_partial_and_answers_the_whole_state(client: httpx.AsyncClient) -> None:
    await put_preferences(client, "alice", {"push": False})
    state = await put_preferences(
        client,
        "alice",
        {
            "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"},
            "digest": {"enabled": True, "time": "07:30"},
        },
    )
    assert state == {
        **DEFAULTS,
        "push": False,
        "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"},
        "digest": {"enabled": True, "time": "07:30", "timezone": "UTC"},
    }
    fetched = await client.get("/notification-preferences", headers=bearer("alice"))
    assert fetched.json() == state


async def test_null_clears_quiet_hours_and_the_email_address(client: httpx.AsyncClient) -> None:
    await put_preferences(
        client,
        "alice",
        {
            "email_address": "alice@example.com",
            "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "UTC"},
        },
    )
    state = await put_preferences(client, "alice", {"email_address": None, "quiet_hours": None})
    assert state["email_address"] is None and state["quiet_hours"] is None


async def test_preferences_are_per_user(client: httpx.AsyncClient) -> None:
    await put_preferences(client, "alice", {"push": False, "email": False})
    response = await client.get("/notification-preferences", headers=bearer("bob"))
    assert response.json() == DEFAULTS


@pytest.mark.parametrize(
    "body",
    [
        {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"}},
        {"quiet_hours": {"start": "25:00", "end": "07:00", "timezone": "UTC"}},
        {"quiet_hours": {"start": "7:00", "end": "07:00", "timezone": "UTC"}},
        {"quiet_hours": {"start": "22:00", "timezone": "UTC"}},
        {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "UTC\u0000"}},
        {"digest": {"time": "08:00:00"}},
        {"digest": {"timezone": "../../etc/passwd"}},
        {"digest": {"enabled": None}},
        {"digest": {"enabled": "yes"}},
        {"push": None},
        {"push": "false"},
        {"email_address": "not an address"},
        {"email_address": "eve@example.com\r\nBcc: everyone@example.com"},
        {"email_address": "a\u0000@example.com"},
        {"email_address": "x" * 300 + "@example.com"},
        {"unknown_field": True},
    ],
)
async def test_bad_preferences_are_422_and_change_nothing(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await client.put("/notification-preferences", json=body, headers=bearer("alice"))
    assert response.status_code == 422, response.text
    fetched = await client.get("/notification-preferences", headers=bearer("alice"))
    assert fetched.json() == DEFAULTS


async def test_the_email_claim_is_remembered_from_the_latest_call(
    client: httpx.AsyncClient, settings: Settings, sql: asyncpg.Connection
) -> None:
    await client.get("/notification-preferences", headers=bearer_with_email("alice", "a@one.test"))
    await client.get("/notification-preferences", headers=bearer_with_email("alice", "a@two.test"))
    await client.get("/notification-preferences", headers=bearer_with_email("bob", "b@one.test"))
    await put_preferences(client, "carol", {"email_address": "carol@mine.test"})
    await client.get("/notification-preferences", headers=bearer_with_email("carol", "c@jwt.test"))
    await put_preferences(client, "dave", {"email": False})
    await client.get("/notification-preferences", headers=bearer_with_email("dave", "d@jwt.test"))

    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session:
            recipients = await service.email_recipients(
                session, user_ids=["alice", "bob", "carol", "dave", "stranger"]
            )
    finally:
        await engine.dispose()
    # Explicit address wins over the claim; email off and never-seen users get nothing.
    assert recipients == {"alice": "a@two.test", "bob": "b@one.test", "carol": "carol@mine.test"}


async def test_a_repeated_claim_is_not_written_again(
    client: httpx.AsyncClient, sql: asyncpg.Connection
) -> None:
    headers = bearer_with_email("alice", "alice@example.com")
    await client.get("/notification-preferences", headers=headers)
    first = await sql.fetchval(
        "SELECT xmin::text FROM notification_preferences WHERE user_id = 'alice'"
    )
    for _ in range(3):
        await client.get("/notification-preferences", headers=headers)
    again = await sql.fetchval(
        "SELECT xmin::text FROM notification_preferences WHERE user_id = 'alice'"
    )
    assert again == first  # no new row version: no write


async def test_push_blockers_name_push_disabled_and_quiet_hours_now(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    now = datetime.now(UTC)
    local_noon_zone = midday_zone(now)  # it is about 12:00 there
    await put_preferences(client, "off", {"push": False})
    await put_preferences(
        client,
        "off_and_quiet",
        {"push": False, "quiet_hours": {"start": "00:00", "end": "23:59", "timezone": "UTC"}},
    )
    await put_preferences(
        client,
        "napping",
        {"quiet_hours": {"start": "11:00", "end": "13:30", "timezone": local_noon_zone}},
    )
    await put_preferences(
        client,
        "night_owl",  # quiet over midnight, awake at noon
        {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": local_noon_zone}},
    )
    await put_preferences(client, "defaults_changed", {"email": False})

    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session:
            blocked = await service.push_blockers(
                session,
                user_ids=["off", "off_and_quiet", "napping", "night_owl", "defaults_changed", "x"],
                now=now,
            )
            at_midnight_there = await service.push_blockers(
                session, user_ids=["night_owl"], now=now + timedelta(hours=12)
            )
    finally:
        await engine.dispose()
    assert blocked == {
        "off": PushBlock.PUSH_DISABLED,
        "off_and_quiet": PushBlock.PUSH_DISABLED,  # the contract's order: push_disabled first
        "napping": PushBlock.QUIET_HOURS,
    }
    assert at_midnight_there == {"night_owl": PushBlock.QUIET_HOURS}


async def test_unpaired_surrogates_are_a_client_error(client: httpx.AsyncClient) -> None:
    for raw in (
        b'{"email_address": "a\\ud800@example.com"}',
        b'{"digest": {"timezone": "\\udc00"}}',
    ):
        response = await client.put(
            "/notification-preferences",
            content=raw,
            headers={**bearer("alice"), "Content-Type": "application/json"},
        )
        assert 400 <= response.status_code < 500
    fetched = await client.get("/notification-preferences", headers=bearer("alice"))
    assert fetched.json() == DEFAULTS
