"""The digest's content seam: where "what is unread" comes from.

The digest engine asks one `UnreadSource` for many users at once. Read positions (the
read-state package) and the inbox (the notifications package) own that knowledge. The inbox
comes from `notifications.service.unread_inbox`. Until read state is wired in,
`SentMessagePosition` stands in for messages: a participant's read position is their own
latest message in the conversation (the contract's "sending moves the sender's position").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.digest.content import UnreadConversation, UnreadSummary
from backend.app.messenger.notifications import service as notifications


class UnreadSource(Protocol):
    async def unread(
        self, session: AsyncSession, *, user_ids: Sequence[str]
    ) -> dict[str, UnreadSummary]:
        """Users with nothing unread may be absent from the answer."""
        ...


# Interim: reads the conversations/messages tables directly (one query for all users) until the
# read-state service offers a set-based unread summary to call instead.
_UNREAD_BY_SENT_POSITION = text(
    """
    WITH mine AS (
        SELECT p.user_id, p.conversation_id,
               (SELECT max(m.created_at) FROM messages AS m
                 WHERE m.conversation_id = p.conversation_id AND m.sender_id = p.user_id)
                   AS position
          FROM conversation_participants AS p
         WHERE p.user_id = ANY(CAST(:users AS varchar[]))
    )
    SELECT mine.user_id, mine.conversation_id, c.title,
           count(*) AS unread_count,
           (array_agg(m.content ORDER BY m.created_at DESC))[1] AS latest_content,
           max(m.created_at) AS latest_at,
           (SELECT array_agg(o.user_id ORDER BY o.user_id) FROM conversation_participants AS o
             WHERE o.conversation_id = mine.conversation_id AND o.user_id <> mine.user_id)
               AS others
      FROM mine
      JOIN conversations AS c ON c.id = mine.conversation_id
      JOIN messages AS m ON m.conversation_id = mine.conversation_id
       AND m.sender_id <> mine.user_id
       AND (mine.position IS NULL OR m.created_at > mine.position)
     GROUP BY mine.user_id, mine.conversation_id, c.title
    """
)


class SentMessagePosition:
    """Unread messages by the interim rule above, plus the unread inbox."""

    async def unread(
        self, session: AsyncSession, *, user_ids: Sequence[str]
    ) -> dict[str, UnreadSummary]:
        if not user_ids:
            return {}
        rows = await session.execute(_UNREAD_BY_SENT_POSITION, {"users": list(user_ids)})
        found: dict[str, list[UnreadConversation]] = {}
        for row in rows:
            found.setdefault(row.user_id, []).append(
                UnreadConversation(
                    conversation_id=str(row.conversation_id),
                    title=row.title,
                    other_participant_ids=list(row.others or [])[:20],
                    unread_count=row.unread_count,
                    latest_content=row.latest_content,
                    latest_at=row.latest_at,
                )
            )
        inbox = await notifications.unread_inbox(session, user_ids=list(user_ids))
        return {
            user: UnreadSummary(
                conversations=found.get(user, []),
                notifications_count=inbox[user].count if user in inbox else 0,
                notification_titles=inbox[user].titles if user in inbox else [],
                notifications_newest_at=inbox[user].newest_at if user in inbox else None,
            )
            for user in set(found) | set(inbox)
        }


def default_source() -> UnreadSource:
    return SentMessagePosition()
