"""What is unread, per conversation, for many users at once (the daily digest's messages).

Same arithmetic as `GET /unread` (read_state.py): a conversation has `last_seq -
last_read_seq` unread messages. The latest unread message is the conversation's latest
message (`seq = last_seq`, one probe of `uq_messages_conversation_seq`): when anything is
unread the reader's position is behind it, and it is never the reader's own (sending moves
the sender's position to it). So the cost is O(each user's conversations), never history.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

OTHER_PARTICIPANTS_LISTED = 20


@dataclass(frozen=True, slots=True)
class UnreadConversationState:
    conversation_id: uuid.UUID
    title: str | None
    # Only for conversations without a title (what names them); at most 20, sorted.
    other_participant_ids: list[str]
    unread_count: int
    latest_content: str
    latest_at: datetime


# Memberships through ix_conversation_participants_user_id, the conversation by primary key,
# its latest message by (conversation_id, seq); other participants only for untitled ones.
_UNREAD_CONVERSATIONS = text(
    """
    SELECT p.user_id, p.conversation_id, c.title,
           c.last_seq - p.last_read_seq AS unread_count,
           m.content AS latest_content, m.created_at AS latest_at,
           CASE WHEN c.title IS NULL THEN ARRAY(
               SELECT o.user_id FROM conversation_participants AS o
                WHERE o.conversation_id = p.conversation_id AND o.user_id <> p.user_id
                ORDER BY o.user_id LIMIT :others
           ) END AS others
      FROM conversation_participants AS p
      JOIN conversations AS c ON c.id = p.conversation_id
      JOIN messages AS m ON m.conversation_id = c.id AND m.seq = c.last_seq
     WHERE p.user_id = ANY(CAST(:users AS varchar[])) AND c.last_seq > p.last_read_seq
    """
)


async def unread_conversations(
    session: AsyncSession, *, user_ids: Sequence[str]
) -> dict[str, list[UnreadConversationState]]:
    """Each user's conversations with unread messages, in ONE query for all users.
    Users with nothing unread are absent."""
    users = list(dict.fromkeys(user_ids))
    if not users:
        return {}
    rows = await session.execute(
        _UNREAD_CONVERSATIONS, {"users": users, "others": OTHER_PARTICIPANTS_LISTED}
    )
    found: dict[str, list[UnreadConversationState]] = {}
    for row in rows:
        found.setdefault(row.user_id, []).append(
            UnreadConversationState(
                conversation_id=row.conversation_id,
                title=row.title,
                other_participant_ids=list(row.others or []),
                unread_count=int(row.unread_count),
                latest_content=row.latest_content,
                latest_at=row.latest_at,
            )
        )
    return found
