"""Read positions and unread counts: integer arithmetic, never a count over message history.

Model (see README "Read state"):
- every message gets `seq` = 1, 2, ... within its conversation, claimed from
  `conversations.last_seq` under that row's lock (`message_seq.claim_ctes`, part of the
  send's one statement);
- every participant has `last_read_seq` (and the matching `last_read_message_id`); it only
  moves forward, and sending moves the sender's position to the sent message;
- so a participant's unread count is `last_seq - last_read_seq`: own messages are never
  after their sender's position, hence never counted.

Every count is O(the caller's conversations) through `ix_conversation_participants_user_id`
plus primary-key lookups of `conversations`; history is never scanned.

Functions take the session and explicit arguments and never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.conversations.service import ConversationNotFound

__all__ = [
    "ConversationNotFound",
    "MessageNotInConversation",
    "ReadMove",
    "ReadResult",
    "mark_read",
    "unread_by_conversation",
    "unread_totals",
]


class MessageNotInConversation(ValueError):
    """`up_to` names no message of this conversation."""


@dataclass(frozen=True, slots=True)
class ReadMove:
    """A read position that moved forward, for work keyed on "messages this read passed".

    The passed messages are exactly those of `conversation_id` with
    `previous_seq < messages.seq <= last_read_seq` (an index range on
    `uq_messages_conversation_seq`); match them against pushed deliveries to clear them.
    """

    user_id: str
    conversation_id: uuid.UUID
    previous_seq: int
    last_read_seq: int
    last_read_message_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class ReadResult:
    conversation_id: uuid.UUID
    last_read_message_id: uuid.UUID | None
    unread_count: int
    move: ReadMove | None  # None: the position did not move (an older or the same up_to)


# The participant row is locked so concurrent reads of one user apply in some order and the
# position never moves back. `target_seq` is NULL when up_to is not a message of this
# conversation. A message visible here has its seq <= the conversation's last_seq in the
# same snapshot (both were written by one transaction).
_READ_TARGET = text(
    """
    SELECT p.last_read_seq, p.last_read_message_id, c.last_seq, m.seq AS target_seq
    FROM conversation_participants AS p
    JOIN conversations AS c ON c.id = p.conversation_id
    LEFT JOIN messages AS m ON m.id = :up_to AND m.conversation_id = p.conversation_id
    WHERE p.conversation_id = :conversation_id AND p.user_id = :user_id
    FOR UPDATE OF p
    """
)
_MOVE = text(
    """
    UPDATE conversation_participants SET last_read_seq = :seq, last_read_message_id = :up_to
    WHERE conversation_id = :conversation_id AND user_id = :user_id
    """
)


async def mark_read(
    session: AsyncSession, *, conversation_id: uuid.UUID, user_id: str, up_to: uuid.UUID
) -> ReadResult:
    """Move the user's position forward to `up_to`; an older `up_to` changes nothing.

    Raises `ConversationNotFound` (not a participant) before `MessageNotInConversation`.
    `result.move` tells whether (and across which seqs) the position moved.
    """
    params = {"conversation_id": conversation_id, "user_id": user_id, "up_to": up_to}
    row = (await session.execute(_READ_TARGET, params)).one_or_none()
    if row is None:
        raise ConversationNotFound(conversation_id)
    if row.target_seq is None:
        raise MessageNotInConversation(up_to)
    if row.target_seq <= row.last_read_seq:
        return ReadResult(
            conversation_id=conversation_id,
            last_read_message_id=row.last_read_message_id,
            unread_count=max(row.last_seq - row.last_read_seq, 0),
            move=None,
        )
    await session.execute(_MOVE, {**params, "seq": row.target_seq})
    return ReadResult(
        conversation_id=conversation_id,
        last_read_message_id=up_to,
        unread_count=max(row.last_seq - row.target_seq, 0),
        move=ReadMove(
            user_id=user_id,
            conversation_id=conversation_id,
            previous_seq=row.last_read_seq,
            last_read_seq=row.target_seq,
            last_read_message_id=up_to,
        ),
    )


_UNREAD_OF_USER = text(
    """
    SELECT p.conversation_id, c.last_seq - p.last_read_seq AS unread
    FROM conversation_participants AS p
    JOIN conversations AS c ON c.id = p.conversation_id
    WHERE p.user_id = :user_id AND c.last_seq > p.last_read_seq
    """
)


async def unread_by_conversation(session: AsyncSession, *, user_id: str) -> dict[uuid.UUID, int]:
    """The user's conversations with unread messages and how many (only counts > 0)."""
    rows = await session.execute(_UNREAD_OF_USER, {"user_id": user_id})
    return {row.conversation_id: row.unread for row in rows}


_UNREAD_TOTALS = text(
    """
    SELECT p.user_id, sum(c.last_seq - p.last_read_seq) AS total
    FROM conversation_participants AS p
    JOIN conversations AS c ON c.id = p.conversation_id
    WHERE p.user_id = ANY(CAST(:user_ids AS varchar[])) AND c.last_seq > p.last_read_seq
    GROUP BY p.user_id
    """
)


async def unread_totals(session: AsyncSession, *, user_ids: Sequence[str]) -> dict[str, int]:
    """Each user's unread messages across all their conversations, in ONE query for all users
    (e.g. the badge of every recipient of a push fan-out). Users with nothing unread map to 0.

    Cost: one index range per user over their memberships (O(sum of their conversations)).
    """
    users = list(dict.fromkeys(user_ids))
    if not users:
        return {}
    totals = dict.fromkeys(users, 0)
    for row in await session.execute(_UNREAD_TOTALS, {"user_ids": users}):
        totals[row.user_id] = int(row.total)
    return totals
