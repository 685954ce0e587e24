"""Admin history: notifications newest first with their recipients' per-channel counts."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.email.service import notification_email_counts
from backend.app.messenger.notifications.models import (
    InboxEntry,
    Notification,
    NotificationRecipient,
)
from backend.app.messenger.notifications.vocabulary import EmailStatus, PushStatus, TargetKind
from backend.app.messenger.push.service import notification_push_counts


def encode_cursor(created_at: datetime, notification_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{notification_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, _, notification_id = raw.partition("|")
        parsed = datetime.fromisoformat(created_at)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed, uuid.UUID(notification_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("invalid cursor") from exc


def _target(notification: Notification) -> dict[str, Any]:
    if notification.target_kind == TargetKind.USER_IDS:
        return {"user_ids": notification.target_user_ids}
    if notification.target_kind == TargetKind.TOPIC:
        return {"topic": notification.target_topic}
    return {"all": True}


async def list_history(
    session: AsyncSession, *, limit: int, before: tuple[datetime, uuid.UUID] | None
) -> tuple[list[dict[str, Any]], tuple[datetime, uuid.UUID] | None]:
    query = (
        select(Notification)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(tuple_(Notification.created_at, Notification.id) < before)
    rows = list(await session.scalars(query))
    page = rows[:limit]
    following = (page[-1].created_at, page[-1].id) if len(rows) > limit else None
    ids = [n.id for n in page]
    recipients = {r.notification_id: r for r in await _recipient_counts(session, ids)}
    inbox = {r.notification_id: r for r in await _inbox_counts(session, ids)}
    pushes = await notification_push_counts(session, notification_ids=ids)
    emails = await notification_email_counts(session, notification_ids=ids)
    items = []
    for n in page:
        rec, box = recipients.get(n.id), inbox.get(n.id)
        items.append(
            {
                "id": n.id,
                "title": n.title,
                "type": n.type,
                "target": _target(n),
                "created_at": n.created_at,
                "send_at": n.send_at,
                "status": n.status,
                "recipients": rec.total if rec else 0,
                # Device pushes by outcome, from the push deliveries themselves.
                "push": {s.value: pushes.get(n.id, {}).get(s.value, 0) for s in PushStatus},
                "in_app": {"read": box.read if box else 0, "unread": box.unread if box else 0},
                # Emails queued for it by status (recipients without an address get none).
                "email": {s.value: emails.get(n.id, {}).get(s.value, 0) for s in EmailStatus},
            }
        )
    return items, following


async def _recipient_counts(session: AsyncSession, ids: list[uuid.UUID]) -> list[Any]:
    if not ids:
        return []
    r = NotificationRecipient
    columns = [func.count().label("total")]
    result = await session.execute(
        select(r.notification_id, *columns)
        .where(r.notification_id.in_(ids))
        .group_by(r.notification_id)
    )
    return list(result)


async def _inbox_counts(session: AsyncSession, ids: list[uuid.UUID]) -> list[Any]:
    if not ids:
        return []
    result = await session.execute(
        select(
            InboxEntry.notification_id,
            func.count().filter(InboxEntry.read_at.is_not(None)).label("read"),
            func.count().filter(InboxEntry.read_at.is_(None)).label("unread"),
        )
        .where(InboxEntry.notification_id.in_(ids))
        .group_by(InboxEntry.notification_id)
    )
    return list(result)
