"""Conversations, membership and per-member notification settings.

Functions take the session and explicit arguments and never commit. Everything a caller
is not a participant of is reported as `ConversationNotFound`, whether it exists or not.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Select,
    String,
    and_,
    any_,
    bindparam,
    delete,
    func,
    literal,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID, aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from backend.app.messenger.blocks.service import users_blocking
from backend.app.messenger.conversations.cursor import ConversationCursor
from backend.app.messenger.conversations.models import Conversation, Participant
from backend.app.messenger.messages.models import Message


class ConversationNotFound(LookupError):
    """Unknown conversation, or one the caller does not take part in (indistinguishable)."""


class TooManyParticipants(ValueError):
    """The create or add would take the conversation past MAX_PARTICIPANTS."""


@dataclass(frozen=True, slots=True)
class ConversationView:
    id: uuid.UUID
    title: str | None
    participant_ids: list[str]
    created_at: datetime
    # The viewer's read state (see read_state.py): messages from others after their position.
    unread_count: int = 0
    last_read_message_id: uuid.UUID | None = None


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


def participant_ids_of(conversation_id: Any) -> ColumnElement[list[str]]:
    """Correlated subquery: the sorted member ids of a conversation (primary-key lookup)."""
    member = aliased(Participant)
    return (
        select(func.array_agg(aggregate_order_by(member.user_id, member.user_id)))
        .where(member.conversation_id == conversation_id)
        .scalar_subquery()
    )


def _conversations_of(user_id: str) -> Select[Any]:
    """The caller's conversations with their members and last activity, one row each."""
    last_message = (
        select(Message.created_at)
        .where(Message.conversation_id == Conversation.id)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
        .lateral("last_message")
    )
    return (
        select(
            Conversation.id,
            Conversation.title,
            Conversation.created_at,
            participant_ids_of(Conversation.id).label("participant_ids"),
            func.coalesce(last_message.c.created_at, Conversation.created_at).label("activity"),
            (Conversation.last_seq - Participant.last_read_seq).label("unread_count"),
            Participant.last_read_message_id,
        )
        .join(
            Participant,
            and_(Participant.conversation_id == Conversation.id, Participant.user_id == user_id),
        )
        .outerjoin(last_message, true())
    )


def _view(row: Any) -> ConversationView:
    return ConversationView(
        id=row.id,
        title=row.title,
        participant_ids=list(row.participant_ids or []),
        created_at=row.created_at,
        unread_count=max(row.unread_count, 0),
        last_read_message_id=row.last_read_message_id,
    )


async def create_conversation(
    session: AsyncSession,
    *,
    creator_id: str,
    title: str | None,
    participant_ids: Sequence[str],
    max_participants: int,
) -> ConversationView:
    """The creator always takes part; duplicate ids count once; users who blocked the
    creator are left out silently (the answer shows who is really in)."""
    invited = set(participant_ids) - {creator_id}
    invited -= await users_blocking(session, blocked_id=creator_id, candidates=list(invited))
    members = sorted({creator_id, *invited})
    if len(members) > max_participants:
        raise TooManyParticipants(f"a conversation holds at most {max_participants} participants")
    conversation_id = uuid.uuid4()
    created_at = (
        await session.execute(
            insert(Conversation)
            .values(id=conversation_id, title=title, created_by=creator_id)
            .returning(Conversation.created_at)
        )
    ).scalar_one()
    await session.execute(
        insert(Participant).values(
            [{"conversation_id": conversation_id, "user_id": user_id} for user_id in members]
        )
    )
    return ConversationView(
        id=conversation_id, title=title, participant_ids=members, created_at=created_at
    )


async def list_conversations(
    session: AsyncSession, *, user_id: str, limit: int, after: ConversationCursor | None = None
) -> tuple[list[ConversationView], ConversationCursor | None]:
    """One page, newest activity first (the latest message's time, else the creation time),
    strictly after `after`; the second value is the cursor of the next page, None on the last."""
    page = _conversations_of(user_id).subquery("page")
    query = select(page)
    if after is not None:
        query = query.where(
            tuple_(page.c.activity, page.c.id)
            < tuple_(
                bindparam("after_activity", after.activity, type_=DateTime(timezone=True)),
                bindparam("after_id", after.id, type_=UUID(as_uuid=True)),
            )
        )
    order = (page.c.activity.desc(), page.c.id.desc())
    rows = (await session.execute(query.order_by(*order).limit(limit + 1))).all()
    views = [_view(row) for row in rows[:limit]]
    if len(rows) <= limit:
        return views, None
    last = rows[limit - 1]
    return views, ConversationCursor(activity=last.activity, id=last.id)


async def get_conversation(
    session: AsyncSession, *, conversation_id: uuid.UUID, user_id: str
) -> ConversationView:
    row = (
        await session.execute(_conversations_of(user_id).where(Conversation.id == conversation_id))
    ).one_or_none()
    if row is None:
        raise ConversationNotFound(conversation_id)
    return _view(row)


async def ensure_participant(
    session: AsyncSession, *, conversation_id: uuid.UUID, user_id: str
) -> None:
    found = await session.scalar(
        select(literal(1)).where(
            Participant.conversation_id == conversation_id, Participant.user_id == user_id
        )
    )
    if found is None:
        raise ConversationNotFound(conversation_id)


def caught_up_position(conversation_id: uuid.UUID) -> dict[str, Any]:
    """Column values putting a new member's read position at the conversation's latest
    message (scalar subqueries on primary keys; last_read_message_id NULL before any)."""
    last_seq = (
        select(Conversation.last_seq).where(Conversation.id == conversation_id).scalar_subquery()
    )
    last_message = (
        select(Message.id)
        .where(Message.conversation_id == conversation_id, Message.seq == last_seq)
        .scalar_subquery()
    )
    return {"last_read_seq": last_seq, "last_read_message_id": last_message}


async def add_participants(
    session: AsyncSession,
    *,
    conversation_id: uuid.UUID,
    user_id: str,
    new_user_ids: Sequence[str],
    max_participants: int,
) -> ConversationView:
    """Any participant may add others; ids already in are left as they are (settings kept).
    Users who blocked the adder are left out silently. Past MAX_PARTICIPANTS nothing changes.
    Newcomers start caught up (position = the latest message): history from before they
    joined is readable but not "unread".
    """
    await ensure_participant(session, conversation_id=conversation_id, user_id=user_id)
    # Serialise additions to one conversation, so concurrent ones cannot pass the cap together.
    await session.execute(
        select(Conversation.id).where(Conversation.id == conversation_id).with_for_update()
    )
    wanted = set(new_user_ids)
    wanted -= await users_blocking(session, blocked_id=user_id, candidates=list(wanted))
    current = set(
        await session.scalars(
            select(Participant.user_id).where(Participant.conversation_id == conversation_id)
        )
    )
    joining = wanted - current
    if len(current) + len(joining) > max_participants:
        raise TooManyParticipants(f"a conversation holds at most {max_participants} participants")
    if joining:
        position = caught_up_position(conversation_id)
        await session.execute(
            insert(Participant)
            .values(
                [
                    {"conversation_id": conversation_id, "user_id": new, **position}
                    for new in joining
                ]
            )
            .on_conflict_do_nothing(
                index_elements=[Participant.conversation_id, Participant.user_id]
            )
        )
    return await get_conversation(session, conversation_id=conversation_id, user_id=user_id)


async def leave_conversation(
    session: AsyncSession, *, conversation_id: uuid.UUID, user_id: str
) -> None:
    """The caller stops taking part: from now on the conversation is unknown to them, and they
    get no events or pushes from it. Their settings go with the membership row."""
    left = await session.scalar(
        delete(Participant)
        .where(Participant.conversation_id == conversation_id, Participant.user_id == user_id)
        .returning(Participant.user_id)
    )
    if left is None:
        raise ConversationNotFound(conversation_id)


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


async def users_sharing_a_conversation(
    session: AsyncSession, *, user_id: str, candidates: Sequence[str]
) -> set[str]:
    """Which candidates take part in at least one conversation with `user_id` (one query)."""
    if not candidates:
        return set()
    mine = aliased(Participant)
    theirs = aliased(Participant)
    rows = await session.scalars(
        select(theirs.user_id)
        .distinct()
        .join(mine, mine.conversation_id == theirs.conversation_id)
        .where(
            mine.user_id == user_id,
            theirs.user_id
            == any_(bindparam("candidates", sorted(set(candidates)), type_=ARRAY(String))),
        )
    )
    return set(rows)


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
