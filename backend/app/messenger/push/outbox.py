"""Writing push work into the outbox, inside the caller's transaction.

The message and its push job commit together: once a sender has the acknowledgement,
the push is durable whatever happens to this process next.
"""

from __future__ import annotations

import uuid

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.messages.models import Message
from backend.app.messenger.push.models import PushJob
from backend.app.messenger.push.payloads import Notification, message_notification
from backend.app.messenger.push.vocabulary import PushKind


async def enqueue_message_push(
    session: AsyncSession,
    *,
    message: Message,
    sender_name: str,
    conversation_title: str | None,
    include_content: bool,
) -> int:
    """Record that `message` must be pushed to its offline recipients; returns the job id.

    The sender's display name is captured now (from their token) so background work
    needs no profile lookup.
    """
    notification = message_notification(
        sender_name=sender_name,
        conversation_title=conversation_title,
        content=message.content,
        include_content=include_content,
        conversation_id=str(message.conversation_id),
        message_id=str(message.id),
        sender_id=message.sender_id,
    )
    return await _insert_job(
        session,
        notification,
        kind=PushKind.MESSAGE.value,
        message_id=message.id,
        conversation_id=message.conversation_id,
        sender_id=message.sender_id,
        created_at=message.created_at,
    )


async def enqueue_direct_push(
    session: AsyncSession, *, user_id: str, notification: Notification, kind: PushKind
) -> int:
    """A push to every active device of one user, presence ignored (`/devices/test`, `/internal/notify`)."""
    return await _insert_job(session, notification, kind=kind.value, target_user_id=user_id)


async def enqueue_push(
    session: AsyncSession,
    *,
    kind: PushKind,
    user_ids: list[str],
    notification: Notification,
    notification_id: uuid.UUID | None = None,
) -> int:
    """A push of `kind` to a set of users, fanned out by the workers (`FanOutPolicy` decides
    who of them gets it). The seam for notification and clear-on-read pushes;
    `notification_id` ties a notification-center push to its notification (admin counts)."""
    return await _insert_job(
        session,
        notification,
        kind=kind.value,
        recipient_ids=user_ids,
        notification_id=notification_id,
    )


async def _insert_job(session: AsyncSession, notification: Notification, **columns: object) -> int:
    values = {
        "title": notification.title,
        "body": notification.body,
        "data": notification.data,
        "priority": notification.priority,
        **{k: v for k, v in columns.items() if v is not None},
    }
    return (await session.execute(_INSERT_JOB, values)).scalar_one()


# Built once, parameters bound per call: `insert(...).values(...)` per send built and
# cache-keyed a new statement every time (a tenth of the send path's CPU).
_INSERT_JOB = insert(PushJob).returning(PushJob.id)
