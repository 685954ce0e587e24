"""Push and email delivery of notifications, plugged in where recipients are materialised.

`hand_off` runs inside the materialisation transaction of every batch, with the user ids that
just became recipients. Channel `push`: ONE push outbox job for the whole batch (kind
`notification`, the batch's user ids in `recipient_ids`, tied to the notification by
`notification_id`); the push workers fan it out like any push (presence unless priority is
high, the registered skip filters, every active device) and deliver it through the same
retries, dead-token handling, breaker and metrics as message pushes. Whatever is written here
commits or rolls back with the batch, so a crash neither loses nor repeats a hand-off.

Admin push counts are read back from the push deliveries (`push.service.notification_push_counts`),
one grouped query per history page, so nothing is written per recipient.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.notifications.models import Notification, NotificationRecipient
from backend.app.messenger.notifications.vocabulary import Channel, EmailStatus, PushStatus
from backend.app.messenger.push import outbox
from backend.app.messenger.push.payloads import BODY_LIMIT, cut
from backend.app.messenger.push.payloads import Notification as PushPayload
from backend.app.messenger.push.vocabulary import PushKind

PUSH_DATA_TYPE = "notification"


def push_payload(notification: Notification) -> PushPayload:
    """Title and body as for messages (body cut to 200 code points); data: the notification's
    own data, then `type`, `notification_id` and `notification_type` (ours win on a clash)."""
    data = {str(k): str(v) for k, v in (notification.data or {}).items()}
    data.update(
        type=PUSH_DATA_TYPE,
        notification_id=str(notification.id),
        notification_type=notification.type,
    )
    return PushPayload(
        title=notification.title,
        body=cut(notification.body, BODY_LIMIT),
        data=data,
        priority=notification.priority,
    )


async def hand_off(
    session: AsyncSession, *, notification: Notification, user_ids: Sequence[str]
) -> None:
    """Queue push work for these new recipients: one outbox job per batch, never per user."""
    if not user_ids:
        return
    if Channel.PUSH in notification.channels:
        await outbox.enqueue_push(
            session,
            kind=PushKind.NOTIFICATION,
            user_ids=list(user_ids),
            notification=push_payload(notification),
            notification_id=notification.id,
        )


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
