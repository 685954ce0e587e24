"""Materialising recipients: one bounded batch per transaction, resumable at any point.

Each batch, in ONE transaction: lock the due notification that progressed least recently (`FOR UPDATE SKIP LOCKED`,
so several workers cooperate, each on a different notification at a time), select the next
`batch_size` audience members after its keyset position `cursor_user_id`, and in one statement
`INSERT ... SELECT` their recipient rows and (channel `in_app`) inbox entries; then advance the
cursor. A crash rolls the whole batch back, cursor included; the (notification, user) keys
make a repeat impossible even if that reasoning were wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, String, func, literal, select, union
from sqlalchemy.dialects.postgresql import ARRAY, UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.config import Settings
from backend.app.messenger.devices.service import users_with_active_devices_after
from backend.app.messenger.notifications import delivery
from backend.app.messenger.notifications.models import (
    InboxEntry,
    Notification,
    NotificationRecipient,
)
from backend.app.messenger.notifications.vocabulary import (
    UNFINISHED,
    Channel,
    EmailStatus,
    NotificationStatus,
    PushStatus,
    TargetKind,
)
from backend.app.messenger.topics.service import subscribers_after


@dataclass(slots=True)
class Batch:
    notification: Notification
    created_at: datetime
    new_recipients: list[str] = field(default_factory=list)
    inbox: list[tuple[int, str]] = field(default_factory=list)  # (entry id, user id)


def _users_with_inbox_after(after: str | None, limit: int) -> Select[tuple[str]]:
    query = select(InboxEntry.user_id.label("user_id")).distinct()
    if after is not None:
        query = query.where(InboxEntry.user_id > after)
    return query.order_by(InboxEntry.user_id).limit(limit)


def audience_after(notification: Notification, limit: int) -> Select[tuple[str]]:
    """The next `limit` audience members in user-id order after the notification's cursor."""
    after = notification.cursor_user_id
    if notification.target_kind == TargetKind.TOPIC:
        assert notification.target_topic is not None
        return subscribers_after(notification.target_topic, after, limit)
    if notification.target_kind == TargetKind.USER_IDS:
        ids = func.unnest(literal(notification.target_user_ids, ARRAY(String(64))))
        user_id = ids.column_valued("user_id")
        query = select(user_id)
        if after is not None:
            query = query.where(user_id > after)
        return query.order_by(user_id).limit(limit)
    # Everyone with an active device or an inbox entry: each side reads its index in order.
    devices = users_with_active_devices_after(after, limit).subquery()
    inboxed = _users_with_inbox_after(after, limit).subquery()
    both = union(select(devices.c.user_id), select(inboxed.c.user_id)).subquery()
    return select(both.c.user_id).order_by(both.c.user_id).limit(limit)


_DUE = (Notification.status.in_(UNFINISHED), Notification.send_at <= func.now())


async def any_due(session: AsyncSession) -> bool:
    """Is any notification due? A plain read, so an idle loop's poll locks nothing."""
    return bool(await session.scalar(select(select(Notification.id).where(*_DUE).exists())))


async def next_batch(session: AsyncSession, *, batch_size: int, settings: Settings) -> Batch | None:
    """Materialise one batch of the oldest due notification; None when nothing is due."""
    notification = await session.scalar(
        select(Notification)
        .where(*_DUE)
        .order_by(func.coalesce(Notification.progressed_at, Notification.send_at))
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if notification is None:
        return None
    channels = set(notification.channels)
    batch = audience_after(notification, batch_size).cte("batch")
    recipients = (
        insert(NotificationRecipient)
        .from_select(
            ["notification_id", "user_id", "push_status", "email_status"],
            select(
                literal(notification.id, UUID(as_uuid=True)),
                batch.c.user_id,
                literal(PushStatus.PENDING if Channel.PUSH in channels else None, String),
                literal(EmailStatus.PENDING if Channel.EMAIL in channels else None, String),
            ),
        )
        .on_conflict_do_nothing()
        .returning(NotificationRecipient.user_id)
        .cte("recipients")
    )
    columns = [
        func.now().label("now"),
        select(func.max(batch.c.user_id)).scalar_subquery().label("last_user_id"),
        select(func.count()).select_from(batch).scalar_subquery().label("taken"),
        select(func.array_agg(recipients.c.user_id)).scalar_subquery().label("new_user_ids"),
    ]
    if Channel.IN_APP in channels:
        inbox = (
            insert(InboxEntry)
            .from_select(
                ["notification_id", "user_id"],
                select(literal(notification.id, UUID(as_uuid=True)), recipients.c.user_id),
            )
            .on_conflict_do_nothing()
            .returning(InboxEntry.id, InboxEntry.user_id)
            .cte("inbox")
        )
        columns.append(
            select(func.array_agg(func.json_build_array(inbox.c.id, inbox.c.user_id)))
            .scalar_subquery()
            .label("inbox")
        )
    row = (await session.execute(select(*columns))).one()
    result = Batch(notification=notification, created_at=row.now)
    result.new_recipients = list(row.new_user_ids or [])
    if Channel.IN_APP in channels:
        result.inbox = [(int(entry_id), user_id) for entry_id, user_id in row.inbox or []]

    if row.last_user_id is not None:
        notification.cursor_user_id = row.last_user_id
    notification.recipient_count += len(result.new_recipients)
    # clock_timestamp, not the transaction's now(): the turn order must follow real time.
    notification.progressed_at = func.clock_timestamp()
    if notification.started_at is None:
        notification.started_at = row.now
    notification.status = NotificationStatus.SENDING
    if row.taken < batch_size:
        notification.status = NotificationStatus.SENT
        notification.finished_at = row.now
    if result.new_recipients:
        await delivery.hand_off(
            session, notification=notification, user_ids=result.new_recipients, settings=settings
        )
    await session.flush()
    return result
