"""Accepting and cancelling notifications, and the unread counts other packages read.

Accepting is one small INSERT whatever the audience: recipients are materialised later by the
background loop (`materialize.py`), so a broadcast to everyone is answered in milliseconds.
Functions take the session and never commit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import String, any_, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.notifications.models import InboxEntry, Notification
from backend.app.messenger.notifications.schemas import CreateNotificationRequest
from backend.app.messenger.notifications.vocabulary import (
    CANCELLABLE,
    NotificationStatus,
    TargetKind,
)

IDEMPOTENCY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Acceptance:
    notification_id: uuid.UUID
    status: str  # "queued" | "scheduled", as first answered
    created: bool  # False: an Idempotency-Key repeat, nothing new was queued


def _target(request: CreateNotificationRequest) -> dict[str, object]:
    if request.user_ids is not None:
        return {
            "target_kind": TargetKind.USER_IDS,
            "target_user_ids": sorted(set(request.user_ids)),
        }
    if request.topic is not None:
        return {"target_kind": TargetKind.TOPIC, "target_topic": request.topic}
    return {"target_kind": TargetKind.ALL}


async def accept(
    session: AsyncSession, *, request: CreateNotificationRequest, idempotency_key: str | None
) -> Acceptance:
    """Store the notification as durable work. Race-safe idempotency: the key is a unique column,
    so of two concurrent requests with one key exactly one inserts and the other reads its row."""
    now = (await session.execute(select(func.now()))).scalar_one()
    send_at = request.send_at if request.send_at is not None else now
    status = NotificationStatus.SCHEDULED if send_at > now else NotificationStatus.QUEUED
    if idempotency_key is not None:
        # A key past its window may name a new notification: release it from the old one.
        await session.execute(
            update(Notification)
            .where(
                Notification.idempotency_key == idempotency_key,
                Notification.created_at < now - IDEMPOTENCY_WINDOW,
            )
            .values(idempotency_key=None)
        )
    statement = insert(Notification).values(
        id=uuid.uuid4(),
        type=request.type,
        title=request.title,
        body=request.body,
        priority=request.priority,
        action_url=request.action_url,
        data=request.data,
        channels=list(request.channels),
        status=status,
        accepted_status=status,
        idempotency_key=idempotency_key,
        send_at=send_at,
        **_target(request),
    )
    if idempotency_key is not None:
        statement = statement.on_conflict_do_nothing(index_elements=["idempotency_key"])
    inserted = (await session.execute(statement.returning(Notification.id))).scalar_one_or_none()
    if inserted is not None:
        return Acceptance(notification_id=inserted, status=status, created=True)
    first = (
        await session.execute(
            select(Notification.id, Notification.accepted_status).where(
                Notification.idempotency_key == idempotency_key
            )
        )
    ).one()
    return Acceptance(notification_id=first.id, status=first.accepted_status, created=False)


class CancelOutcome(StrEnum):
    CANCELLED = "cancelled"
    ALREADY_STARTED = "already_started"
    NOT_FOUND = "not_found"


async def cancel(session: AsyncSession, *, notification_id: uuid.UUID) -> CancelOutcome:
    """Cancel unless materialisation has begun. The loop holds the row lock while it writes a
    batch, so this UPDATE waits for it and then sees `sending`: no half-sent cancellation."""
    cancelled = await session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.status.in_(CANCELLABLE))
        .values(status=NotificationStatus.CANCELLED, finished_at=func.now())
        .returning(Notification.id)
    )
    if cancelled.first() is not None:
        return CancelOutcome.CANCELLED
    current = await session.scalar(
        select(Notification.status).where(Notification.id == notification_id)
    )
    if current is None:
        return CancelOutcome.NOT_FOUND
    if current == NotificationStatus.CANCELLED:
        return CancelOutcome.CANCELLED  # idempotent
    return CancelOutcome.ALREADY_STARTED


async def unread_count(session: AsyncSession, *, user_id: str) -> int:
    """Unread inbox notifications of one user (for `GET /unread` and push badges)."""
    return (
        await session.execute(
            select(func.count())
            .select_from(InboxEntry)
            .where(InboxEntry.user_id == user_id, InboxEntry.read_at.is_(None))
        )
    ).scalar_one()


async def unread_counts(session: AsyncSession, *, user_ids: list[str]) -> dict[str, int]:
    """Unread inbox notifications of many users in one query (one array parameter, whatever
    the count); every asked user has a key."""
    counts = dict.fromkeys(user_ids, 0)
    if not user_ids:
        return counts
    rows = await session.execute(
        select(InboxEntry.user_id, func.count())
        .where(
            InboxEntry.user_id == any_(literal(sorted(set(user_ids)), ARRAY(String(64)))),
            InboxEntry.read_at.is_(None),
        )
        .group_by(InboxEntry.user_id)
    )
    for user_id, count in rows:
        counts[user_id] = count
    return counts


@dataclass(frozen=True, slots=True)
class UnreadInbox:
    count: int
    newest_at: datetime
    titles: list[str]  # newest first, at most `titles_per_user`


_UNREAD_INBOX = text(
    """
    SELECT e.user_id, count(*) AS unread, max(e.created_at) AS newest_at,
           (array_agg(n.title ORDER BY e.id DESC))[1:CAST(:titles AS int)] AS titles
      FROM notification_inbox AS e
      JOIN notifications AS n ON n.id = e.notification_id
     WHERE e.user_id = ANY(CAST(:users AS varchar[])) AND e.read_at IS NULL
     GROUP BY e.user_id
    """
)


async def unread_inbox(
    session: AsyncSession, *, user_ids: list[str], titles_per_user: int = 10
) -> dict[str, UnreadInbox]:
    """Unread inbox entries of many users in one query, for the daily digest: how many, the
    newest one's time, and the newest titles. Users with nothing unread are absent."""
    if not user_ids:
        return {}
    rows = await session.execute(
        _UNREAD_INBOX, {"users": sorted(set(user_ids)), "titles": titles_per_user}
    )
    return {
        row.user_id: UnreadInbox(row.unread, row.newest_at, list(row.titles or [])) for row in rows
    }
