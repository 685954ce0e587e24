"""A user's in-app inbox: keyset pages newest first, mark one read, mark all read."""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.notifications.models import InboxEntry, Notification


def entry_json(
    entry_id: int, notification: Notification, created_at: Any, read_at: Any
) -> dict[str, Any]:
    """The inbox entry as the API and the `notification.new` frame show it."""
    return {
        "id": entry_id,
        "notification_id": str(notification.id),
        "type": notification.type,
        "title": notification.title,
        "body": notification.body,
        "priority": notification.priority,
        "action_url": notification.action_url,
        "data": notification.data,
        "created_at": created_at.isoformat() if hasattr(created_at, "isoformat") else created_at,
        "read_at": read_at.isoformat() if hasattr(read_at, "isoformat") else read_at,
    }


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"inbox:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Opaque to clients; raises ValueError for anything we did not hand out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("invalid cursor") from exc
    prefix, _, value = raw.partition(":")
    if prefix != "inbox" or not value.isascii() or not value.isdigit() or int(value) >= 2**63:
        raise ValueError("invalid cursor")
    return int(value)


async def list_entries(
    session: AsyncSession, *, user_id: str, unread_only: bool, limit: int, before_id: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    query = (
        select(InboxEntry.id, InboxEntry.created_at, InboxEntry.read_at, Notification)
        .join(Notification, Notification.id == InboxEntry.notification_id)
        .where(InboxEntry.user_id == user_id)
        .order_by(InboxEntry.id.desc())
        .limit(limit + 1)
    )
    if unread_only:
        query = query.where(InboxEntry.read_at.is_(None))
    if before_id is not None:
        query = query.where(InboxEntry.id < before_id)
    rows = (await session.execute(query)).all()
    entries = [entry_json(r.id, r.Notification, r.created_at, r.read_at) for r in rows[:limit]]
    next_id = rows[limit - 1].id if len(rows) > limit else None
    return entries, next_id


async def mark_read(session: AsyncSession, *, user_id: str, entry_id: int) -> dict[str, Any] | None:
    """Idempotent (the first read time stays); None when the entry is not the caller's."""
    read = (
        await session.execute(
            update(InboxEntry)
            .where(InboxEntry.id == entry_id, InboxEntry.user_id == user_id)
            .values(read_at=func.coalesce(InboxEntry.read_at, func.now()))
            .returning(InboxEntry.id, InboxEntry.created_at, InboxEntry.read_at)
        )
    ).first()
    if read is None:
        return None
    notification = await session.scalar(
        select(Notification)
        .join(InboxEntry, InboxEntry.notification_id == Notification.id)
        .where(InboxEntry.id == entry_id)
    )
    assert notification is not None
    return entry_json(read.id, notification, read.created_at, read.read_at)


async def mark_all_read(session: AsyncSession, *, user_id: str) -> int:
    result = await session.execute(
        update(InboxEntry)
        .where(InboxEntry.user_id == user_id, InboxEntry.read_at.is_(None))
        .values(read_at=func.now())
    )
    return result.rowcount
