"""Writing push work into the outbox, inside the caller's transaction.

The message and its push job commit together: once a sender has the acknowledgement,
the push is durable whatever happens to this process next.
"""

from __future__ import annotations

import json
import uuid

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.push.models import PushJob
from backend.app.messenger.push.payloads import (
    TITLE_SEPARATOR,
    Notification,
    message_notification,
)
from backend.app.messenger.push.vocabulary import PushKind

# A message's push job, as a CTE of the send's one statement (messages/send_statement.py):
# inserted only when the message row was (`stored`), titled from the claimed conversation
# (`bumped`) the way `message_notification` titles it, with `message_job_parameters`. When
# the sender passed others' messages (`previous` is their old read position), the job also
# carries that range: its fan-out queues the sender's clear-on-read push
# (`clear_on_read.enqueue_sender_clear`), off the send path and as durable as the message.
MESSAGE_JOB_CTE = f"""
    job AS (
        INSERT INTO push_jobs (
            kind, message_id, conversation_id, sender_id, title, body, data, priority, created_at,
            read_from_seq, read_to_seq
        )
        SELECT '{PushKind.MESSAGE.value}', :message_id, :conversation_id, :sender_id,
            CASE WHEN coalesce(bumped.title, '') = '' THEN :push_sender
                 ELSE :push_sender || :push_title_separator || bumped.title END,
            :push_body, CAST(:push_data AS jsonb), :push_priority, stored.created_at,
            CASE WHEN passed.others THEN previous.last_read_seq END,
            CASE WHEN passed.others THEN bumped.last_seq END
        FROM stored, bumped, previous,
            LATERAL (SELECT previous.last_read_seq < bumped.last_seq - 1 AS others) AS passed
        RETURNING id
    )"""


def message_job_parameters(
    *,
    sender_name: str,
    content: str,
    include_content: bool,
    conversation_id: uuid.UUID,
    message_id: uuid.UUID,
    sender_id: str,
) -> dict[str, str]:
    """Bound parameters of `MESSAGE_JOB_CTE`. The sender's display name is captured now
    (from their token) so background work needs no profile lookup."""
    untitled = message_notification(
        sender_name=sender_name,
        conversation_title=None,
        content=content,
        include_content=include_content,
        conversation_id=str(conversation_id),
        message_id=str(message_id),
        sender_id=sender_id,
    )
    return {
        "push_sender": untitled.title,
        "push_title_separator": TITLE_SEPARATOR,
        "push_body": untitled.body,
        "push_data": json.dumps(untitled.data),
        "push_priority": untitled.priority,
    }


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
