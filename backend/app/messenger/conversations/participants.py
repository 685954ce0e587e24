"""Membership changes and lookups: adding people, leaving, and who shares a conversation.

Same rules as service.py: the session is the caller's, nothing commits here, and a
conversation the caller is not in is `ConversationNotFound`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, any_, bindparam, delete, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from backend.app.messenger.blocks.service import users_blocking
from backend.app.messenger.conversations.models import Conversation, Participant
from backend.app.messenger.conversations.service import (
    ConversationNotFound,
    ConversationView,
    TooManyParticipants,
    ensure_participant,
    get_conversation,
)
from backend.app.messenger.messages.models import Message


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
