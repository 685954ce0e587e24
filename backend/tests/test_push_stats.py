"""`GET /admin/push/stats`: finished device pushes per time bucket, provider and outcome, message
and notification pushes alike; the statistics outlive the raw delivery rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from backend.app.config import Settings
from backend.devtools.emulators import fcm
from backend.tests.conftest import Providers, bearer
from backend.tests.messaging import create_conversation, eventually, send_message
from backend.tests.notification_helpers import accepted, admin_entry
from backend.tests.push_helpers import register_all_providers
from backend.tests.test_notification_retention import prune_now

ADMIN = bearer("root", admin=True)


async def stats(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/admin/push/stats", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()["buckets"]


def totals(buckets: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    summed: dict[str, dict[str, int]] = {}
    for bucket in buckets:
        for provider, outcomes in bucket["by_provider"].items():
            for outcome, count in outcomes.items():
                summed.setdefault(provider, {}).setdefault(outcome, 0)
                summed[provider][outcome] += count
    return summed


async def settled(client: httpx.AsyncClient, expected: int) -> None:
    async def done() -> bool:
        counted = totals(await stats(client))
        return sum(sum(o.values()) for o in counted.values()) >= expected

    await eventually(done)


async def test_message_and_notification_pushes_are_counted_per_provider_and_outcome(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    bob = await register_all_providers(push_client, providers, "bob")
    providers.fcm.always(bob.fcm_token, fcm.unregistered())
    conversation = await create_conversation(push_client, "alice", "bob")
    await send_message(push_client, "alice", conversation["id"], "hello")
    await settled(push_client, 3)
    await register_all_providers(push_client, providers, "carol")
    await accepted(push_client, user_ids=["carol"])

    await settled(push_client, 6)

    assert totals(await stats(push_client)) == {
        "fcm": {"token_dead": 1, "delivered": 1},
        "apns": {"delivered": 2},
        "web_push": {"delivered": 2},
    }


async def test_hourly_buckets_cover_the_range_and_start_on_the_hour(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "carol")
    await accepted(push_client, user_ids=["carol"])
    await settled(push_client, 3)
    now = datetime.now(UTC)

    buckets = await stats(
        push_client,
        since=(now - timedelta(hours=5)).isoformat(),
        until=(now + timedelta(minutes=1)).isoformat(),
        bucket="hour",
    )

    starts = [datetime.fromisoformat(b["start"]) for b in buckets]
    assert len(starts) in (6, 7)  # 5 hours back, plus the current hour (and the next)
    assert all(s.minute == s.second == 0 for s in starts)
    assert starts == sorted(starts)
    current = now.replace(minute=0, second=0, microsecond=0)
    assert totals([b for b in buckets if datetime.fromisoformat(b["start"]) == current]) == {
        "fcm": {"delivered": 1},
        "apns": {"delivered": 1},
        "web_push": {"delivered": 1},
    }


async def test_daily_buckets_start_at_midnight_utc(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    await register_all_providers(push_client, providers, "carol")
    await accepted(push_client, user_ids=["carol"])
    await settled(push_client, 3)

    buckets = await stats(push_client, bucket="day")

    starts = [datetime.fromisoformat(b["start"]) for b in buckets]
    assert all(s.hour == s.minute == 0 for s in starts)
    assert totals(buckets)["fcm"] == {"delivered": 1}


@pytest.mark.parametrize(
    "params",
    [
        {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        {"since": "1969-12-31T00:00:00Z", "until": "1970-01-02T00:00:00Z"},
        {"since": "2026-01-01T00:00:00Z", "until": "10000-01-01T00:00:00Z"},
        {"since": "2020-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z", "bucket": "hour"},
        {"bucket": "week"},
        {"since": "yesterday"},
    ],
)
async def test_bad_ranges_are_422(push_client: httpx.AsyncClient, params: dict[str, str]) -> None:
    response = await push_client.get("/admin/push/stats", params=params, headers=ADMIN)

    assert response.status_code == 422, response.text


async def test_stats_are_for_admins_only(push_client: httpx.AsyncClient) -> None:
    response = await push_client.get("/admin/push/stats", headers=bearer("alice"))

    assert response.status_code == 403


async def test_statistics_and_admin_counts_outlive_the_pruned_delivery_rows(
    push_client: httpx.AsyncClient,
    providers: Providers,
    sql: asyncpg.Connection,
    database_url: str,
    settings: Settings,
) -> None:
    await register_all_providers(push_client, providers, "carol")
    notification_id = await accepted(push_client, user_ids=["carol"])
    await settled(push_client, 3)
    before = totals(await stats(push_client))
    await sql.execute("UPDATE push_jobs SET created_at = now() - interval '8 days'")

    await prune_now(sql, database_url, settings)

    assert await sql.fetchval("SELECT count(*) FROM push_deliveries") == 0
    assert totals(await stats(push_client)) == before
    entry = await admin_entry(push_client, notification_id)
    assert entry["push"] == {"delivered": 3, "token_dead": 0, "failed": 0, "pending": 0}


async def test_recent_push_work_is_kept_by_the_pruning_pass(
    push_client: httpx.AsyncClient,
    providers: Providers,
    sql: asyncpg.Connection,
    database_url: str,
    settings: Settings,
) -> None:
    await register_all_providers(push_client, providers, "carol")
    await accepted(push_client, user_ids=["carol"])
    await settled(push_client, 3)

    await prune_now(sql, database_url, settings)

    assert await sql.fetchval("SELECT count(*) FROM push_deliveries") == 3
    assert await sql.fetchval("SELECT count(*) FROM push_stats_hourly") == 0
