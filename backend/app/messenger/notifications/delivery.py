"""Push and email delivery of notifications, plugged in where recipients are materialised.

`hand_off` runs inside the materialisation transaction of every batch, with the user ids that
just became recipients. Channel `push`: ONE push outbox job for the whole batch (kind
`notification`, the batch's user ids in `recipient_ids`, tied to the notification by
`notification_id`); the push workers fan it out like any push (presence unless priority is
high, the registered skip filters, every active device) and deliver it through the same
retries, dead-token handling, breaker and metrics as message pushes. Whatever is written here
commits or rolls back with the batch, so a crash neither loses nor repeats a hand-off.

Channel `email`: one email per recipient who has an address and `email: true`
(`preferences.service.email_recipients`), queued with `email.service.enqueue_notification_email`
(idempotent per notification and user) and sent, retried and counted by the email package.

Admin counts are read back from the push deliveries and the emails themselves (one grouped
query each per history page), so nothing is written per recipient.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.config import Settings
from backend.app.messenger.email.service import enqueue_notification_email
from backend.app.messenger.notifications.models import Notification
from backend.app.messenger.notifications.vocabulary import Channel
from backend.app.messenger.preferences.service import email_recipients
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
    session: AsyncSession,
    *,
    notification: Notification,
    user_ids: Sequence[str],
    settings: Settings,
) -> None:
    """Queue push and email work for these new recipients, set-based: one push outbox job for
    the batch, one query for who gets email, one INSERT for their emails."""
    if not user_ids:
        return
    if Channel.EMAIL in notification.channels:
        await enqueue_notification_email(
            session,
            settings,
            notification_id=str(notification.id),
            recipients=await email_recipients(session, user_ids=user_ids),
            title=notification.title,
            body=notification.body,
            action_url=notification.action_url,
        )
    if Channel.PUSH in notification.channels:
        await outbox.enqueue_push(
            session,
            kind=PushKind.NOTIFICATION,
            user_ids=list(user_ids),
            notification=push_payload(notification),
            notification_id=notification.id,
        )
