"""The caller's unread summary: conversations (read positions) plus the inbox."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.conversations.read_state import unread_by_conversation
from backend.app.messenger.notifications import service as notifications


@dataclass(frozen=True, slots=True)
class UnreadView:
    conversations: dict[uuid.UUID, int]  # only counts > 0
    notifications: int

    @property
    def total(self) -> int:
        return sum(self.conversations.values()) + self.notifications


async def unread_inbox_notifications(session: AsyncSession, *, user_id: str) -> int:
    """The user's unread inbox entries (the notifications package owns the inbox)."""
    return await notifications.unread_count(session, user_id=user_id)


async def unread_summary(session: AsyncSession, *, user_id: str) -> UnreadView:
    """Two index-backed queries: O(the user's conversations), never a scan of history."""
    return UnreadView(
        conversations=await unread_by_conversation(session, user_id=user_id),
        notifications=await unread_inbox_notifications(session, user_id=user_id),
    )
