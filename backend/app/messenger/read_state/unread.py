"""The caller's unread summary: conversations (read positions) plus the inbox."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.conversations.read_state import unread_by_conversation, unread_totals
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


async def unread_badges(session: AsyncSession, *, user_ids: Sequence[str]) -> dict[str, int]:
    """Each user's badge (unread messages across conversations + unread inbox entries) in two
    set-based queries for all users, whatever their number: the push fan-out's badge."""
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return {}
    messages = await unread_totals(session, user_ids=ids)
    inbox = await notifications.unread_counts(session, user_ids=ids)
    return {u: messages.get(u, 0) + inbox.get(u, 0) for u in ids}
