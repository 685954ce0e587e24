"""Each member's notification settings for a conversation, and the one mute rule.

The API reads and writes the caller's own settings; the push fan-out reads everyone's but
the sender's in one query (`recipient_settings`). Nothing commits here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.conversations.models import Participant
from backend.app.messenger.conversations.service import ConversationNotFound


@dataclass(frozen=True, slots=True)
class NotificationSettingsView:
    muted: bool
    muted_until: datetime | None
    push_enabled: bool


def effectively_muted(participant: Any = Participant) -> ColumnElement[bool]:
    """The one mute rule (the push fan-out uses it through `recipient_settings`), on the database clock:
    a `muted_until` decides when set (muted while it is ahead), otherwise `muted` does.

    Writes keep `muted=false` free of a `muted_until` (see `update_notification_settings`),
    so this equals "muted AND (muted_until IS NULL OR muted_until > now())".
    """
    return func.coalesce(participant.muted_until > func.now(), participant.muted)


_SETTINGS_COLUMNS = (
    effectively_muted().label("muted"),
    Participant.muted_until,
    Participant.push_enabled,
)


async def get_notification_settings(
    session: AsyncSession, *, conversation_id: uuid.UUID, user_id: str
) -> NotificationSettingsView:
    """`muted` is reported as in effect now: a `muted_until` in the past reads as not muted."""
    row = (
        await session.execute(
            select(*_SETTINGS_COLUMNS).where(
                Participant.conversation_id == conversation_id, Participant.user_id == user_id
            )
        )
    ).one_or_none()
    if row is None:
        raise ConversationNotFound(conversation_id)
    return NotificationSettingsView(
        muted=row.muted, muted_until=row.muted_until, push_enabled=row.push_enabled
    )


async def update_notification_settings(
    session: AsyncSession,
    *,
    conversation_id: uuid.UUID,
    user_id: str,
    changes: dict[str, Any],
) -> NotificationSettingsView:
    """Apply a partial update, keeping the stored pair unambiguous:
    `muted: false` clears `muted_until` (an unmuted conversation has no mute end), and a
    `muted_until` sent without `muted` means "mute until then" (sets `muted: true`).
    """
    values = dict(changes)
    if values.get("muted") is False:
        values["muted_until"] = None
    elif values.get("muted_until") is not None and "muted" not in values:
        values["muted"] = True
    if not values:
        return await get_notification_settings(
            session, conversation_id=conversation_id, user_id=user_id
        )
    row = (
        await session.execute(
            update(Participant)
            .where(Participant.conversation_id == conversation_id, Participant.user_id == user_id)
            .values(**values)
            .returning(*_SETTINGS_COLUMNS)
        )
    ).one_or_none()
    if row is None:
        raise ConversationNotFound(conversation_id)
    return NotificationSettingsView(
        muted=row.muted, muted_until=row.muted_until, push_enabled=row.push_enabled
    )


@dataclass(frozen=True, slots=True)
class RecipientSettings:
    user_id: str
    muted: bool  # in effect now (the one mute rule, `effectively_muted`)
    push_enabled: bool


# One page of them, in user id order after `after` (keyset: the primary key's index).
_RECIPIENT_SETTINGS = (
    select(Participant.user_id, effectively_muted().label("muted"), Participant.push_enabled)
    .where(
        Participant.conversation_id == bindparam("conversation_id"),
        Participant.user_id != bindparam("sender_id"),
        Participant.user_id > bindparam("after"),
    )
    .order_by(Participant.user_id)
    .limit(bindparam("limit"))
)


async def recipient_settings(
    session: AsyncSession,
    *,
    conversation_id: uuid.UUID,
    sender_id: str,
    after: str = "",
    limit: int | None = None,
) -> list[RecipientSettings]:
    """The participants but the sender with their notification settings, in user id order: the
    next `limit` after `after` (all without a limit), one query (a page of a push fan-out)."""
    rows = await session.execute(
        _RECIPIENT_SETTINGS,
        {
            "conversation_id": conversation_id,
            "sender_id": sender_id,
            "after": after,
            "limit": limit,
        },
    )
    return [RecipientSettings(r.user_id, bool(r.muted), r.push_enabled) for r in rows]
