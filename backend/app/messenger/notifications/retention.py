"""Retention: inbox entries older than NOTIFICATION_RETENTION_DAYS go, in bounded batches (each
its own short transaction), from the daily pruning pass. Notifications finished longer ago
than that go too (their recipient rows with them): the admin history covers the same window."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.messenger.notifications.models import (
    InboxEntry,
    Notification,
    NotificationRecipient,
)

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
        async with sessionmaker.begin() as session:
            expired = await session.scalar(
                select(Notification.id).where(Notification.finished_at < cutoff).limit(1)
            )
        if expired is None:
            break
        await _drop_notification(sessionmaker, expired, batch_size)
    log.info("pruned %d inbox entries older than %d days", removed, retention_days)
    return removed


async def _drop_notification(
    sessionmaker: async_sessionmaker[AsyncSession], notification_id: object, batch_size: int
) -> None:
    """A broadcast has as many recipient rows as users: delete them in batches, then the row."""
    recipients = NotificationRecipient
    while True:
        async with sessionmaker.begin() as session:
            batch = (
                select(recipients.user_id)
                .where(recipients.notification_id == notification_id)
                .limit(batch_size)
            )
            result = await session.execute(
                delete(recipients).where(
                    recipients.notification_id == notification_id,
                    recipients.user_id.in_(batch.scalar_subquery()),
                )
            )
        if result.rowcount < batch_size:
            break
    async with sessionmaker.begin() as session:
        await session.execute(delete(Notification).where(Notification.id == notification_id))
