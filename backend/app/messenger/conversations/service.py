"""Conversations: create, list, get, and the membership check other operations start with.

Membership changes live in participants.py, each member's notification settings in
notification_settings.py. Functions take the session and explicit arguments and never commit.
Everything a caller is not a participant of is reported as `ConversationNotFound`, whether
it exists or not.
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
    and_,
    bindparam,
    func,
    literal,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import UUID, aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from backend.app.messenger.blocks.service import users_blocking
from backend.app.messenger.conversations.cursor import ConversationCursor
from backend.app.messenger.conversations.models import Conversation, Participant
from backend.app.messenger.messages.models import Message


class ConversationNotFound(LookupError):
    """Unknown conversation, or one the caller does not take part in (indistinguishable)."""


class TooManyParticipants(ValueError):
    """The create or add (participants.py) would take the conversation past MAX_PARTICIPANTS."""


@dataclass(frozen=True, slots=True)
class ConversationView:
    id: uuid.UUID
    title: str | None
    participant_ids: list[str]
    created_at: datetime
    # The viewer's read state (see read_state.py): messages from others after their position.
    unread_count: int = 0
    last_read_message_id: uuid.UUID | None = None


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
