"""Inbox entries older than NOTIFICATION_RETENTION_DAYS go with the daily pruning pass."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from backend.app.config import Settings
from backend.tests.notification_helpers import accepted, inbox_ids, wait_until_sent
from backend.tests.test_pruning import run_pruner


async def prune_now(sql: asyncpg.Connection, database_url: str, settings: Settings) -> None:
    """The test server pruned when it started: make the next pass due again, then run it."""
    await sql.execute("DELETE FROM maintenance_runs")
    assert await run_pruner(database_url, settings) is not None


async def test_entries_older_than_the_retention_are_pruned_and_newer_ones_kept(
    client: httpx.AsyncClient, sql: asyncpg.Connection, database_url: str, settings: Settings
) -> None:
    old = await accepted(client, user_ids=["alice"], title="old")
    await wait_until_sent(client, old)
    recent = await accepted(client, user_ids=["alice"], title="recent")
    await wait_until_sent(client, recent)
    await sql.execute(
        "UPDATE notification_inbox SET created_at = now() - interval '91 days'"
        " WHERE notification_id = $1",
        uuid.UUID(old),
    )
    await sql.execute(
        "UPDATE notification_inbox SET created_at = now() - interval '89 days'"
        " WHERE notification_id = $1",
        uuid.UUID(recent),
    )

    await prune_now(sql, database_url, settings)

    assert await inbox_ids(client, "alice") == [recent]


async def test_the_retention_is_notification_retention_days(
    client: httpx.AsyncClient, sql: asyncpg.Connection, database_url: str, settings: Settings
) -> None:
    notification_id = await accepted(client, user_ids=["alice"])
    await wait_until_sent(client, notification_id)
    await sql.execute("UPDATE notification_inbox SET created_at = now() - interval '8 days'")

    await prune_now(
        sql, database_url, settings.model_copy(update={"notification_retention_days": 7})
    )

    assert await inbox_ids(client, "alice") == []


async def test_notifications_finished_before_the_retention_leave_the_history(
    client: httpx.AsyncClient, sql: asyncpg.Connection, database_url: str, settings: Settings
) -> None:
    old = await accepted(client, user_ids=["alice", "bob", "carol"])
    await wait_until_sent(client, old)
    recent = await accepted(client, user_ids=["alice"])
    await wait_until_sent(client, recent)
    await sql.execute(
        "UPDATE notifications SET finished_at = now() - interval '91 days' WHERE id = $1",
        uuid.UUID(old),
    )

    await prune_now(sql, database_url, settings.model_copy(update={"prune_batch_size": 2}))

    assert await sql.fetchval("SELECT count(*) FROM notifications") == 1
    assert await sql.fetchval("SELECT count(*) FROM notification_recipients") == 1
    assert await inbox_ids(client, "alice") == [recent]
