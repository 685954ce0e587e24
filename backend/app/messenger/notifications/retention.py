"""Retention: inbox entries older than NOTIFICATION_RETENTION_DAYS go, in bounded batches (each
its own short transaction), from the daily pruning pass. Notifications finished longer ago
than that go too (their recipient rows with them): the admin history covers the same window."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.messenger.notifications.models import InboxEntry, Notification

log = logging.getLogger(__name__)


async def prune_notifications(
    sessionmaker: async_sessionmaker[AsyncSession], *, retention_days: int, batch_size: int
) -> int:
    """Returns how many inbox entries went."""
    cutoff = func.now() - timedelta(days=retention_days)
    removed = 0
    while True:
        async with sessionmaker.begin() as session:
            old = (
                select(InboxEntry.id)
                .where(InboxEntry.created_at < cutoff)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
            result = await session.execute(
                delete(InboxEntry).where(InboxEntry.id.in_(old.scalar_subquery()))
            )
        removed += result.rowcount
        if result.rowcount < batch_size:
            break
    while True:
        # One notification's recipients cascade with it: keep the batch of notifications small.
        async with sessionmaker.begin() as session:
            old_notifications = (
                select(Notification.id)
                .where(Notification.finished_at < cutoff)
                .limit(max(1, batch_size // 1000))
                .with_for_update(skip_locked=True)
            )
            result = await session.execute(
                delete(Notification).where(Notification.id.in_(old_notifications.scalar_subquery()))
            )
        if result.rowcount < max(1, batch_size // 1000):
            break
    log.info("pruned %d inbox entries older than %d days", removed, retention_days)
    return removed
