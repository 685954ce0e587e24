"""The digest's content seam: where "what is unread" comes from.

The digest engine asks one `UnreadSource` for many users at once. The packages that own
that knowledge answer it, each in one query for the batch: read positions (the
conversations package's `unread_overview`, the same arithmetic as `GET /unread`) for
messages, and the notifications package's inbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.conversations.unread_overview import unread_conversations
from backend.app.messenger.digest.content import UnreadConversation, UnreadSummary
from backend.app.messenger.notifications import service as notifications


class UnreadSource(Protocol):
    async def unread(
        self, session: AsyncSession, *, user_ids: Sequence[str]
    ) -> dict[str, UnreadSummary]:
        """Users with nothing unread may be absent from the answer."""
        ...


class ReadStateSource:
    """Unread messages by read position (what `POST /conversations/{id}/read` moves), plus
    the unread inbox."""

    async def unread(
        self, session: AsyncSession, *, user_ids: Sequence[str]
    ) -> dict[str, UnreadSummary]:
        if not user_ids:
            return {}
        by_user = await unread_conversations(session, user_ids=user_ids)
        found = {
            user: [
                UnreadConversation(
                    conversation_id=str(c.conversation_id),
                    title=c.title,
                    other_participant_ids=c.other_participant_ids,
                    unread_count=c.unread_count,
                    latest_content=c.latest_content,
                    latest_at=c.latest_at,
                )
                for c in conversations
            ]
            for user, conversations in by_user.items()
        }
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
    return ReadStateSource()
