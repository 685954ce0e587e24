"""The seam where push and email delivery of notifications plug in.

`hand_off` runs inside the materialisation transaction of every batch, with the user ids that
just became recipients (their `notification_recipients` rows exist, `push_status` /
`email_status` = 'pending' for the requested channels). The push integration will enqueue
outbox work here (channel `push`: data `type="notification"`, `notification_id`,
`notification_type`) and report outcomes back with `record_push_outcomes`; the email
integration likewise. Whatever it writes commits or rolls back with the batch, so a crash
neither loses nor repeats a hand-off.

Until then nothing is delivered outside the inbox, and the admin counts show push and email
as pending.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.notifications.models import Notification, NotificationRecipient
from backend.app.messenger.notifications.vocabulary import EmailStatus, PushStatus


async def hand_off(
    session: AsyncSession, *, notification: Notification, user_ids: Sequence[str]
) -> None:
    """Queue push/email work for these new recipients (set-based). Intentionally empty for now."""
    return None


async def record_push_outcomes(
    session: AsyncSession, *, notification_id: object, outcomes: dict[str, PushStatus]
) -> None:
    """For the push integration: store each recipient's push outcome (for the admin counts)."""
    for status in set(outcomes.values()):
        await session.execute(
            update(NotificationRecipient)
            .where(
                NotificationRecipient.notification_id == notification_id,
                NotificationRecipient.user_id.in_([u for u, s in outcomes.items() if s == status]),
            )
            .values(push_status=status)
        )


async def record_email_outcomes(
    session: AsyncSession, *, notification_id: object, outcomes: dict[str, EmailStatus]
) -> None:
    """For the email integration: store each recipient's email outcome."""
    for status in set(outcomes.values()):
        await session.execute(
            update(NotificationRecipient)
            .where(
                NotificationRecipient.notification_id == notification_id,
                NotificationRecipient.user_id.in_([u for u, s in outcomes.items() if s == status]),
            )
            .values(email_status=status)
        )
