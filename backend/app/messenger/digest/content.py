"""What a digest says, as pure functions of what is unread (the fast unit tier)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

LATEST_PREVIEW_CHARS = 200
NOTIFICATION_TITLES_LISTED = 10


@dataclass(frozen=True, slots=True)
class UnreadConversation:
    conversation_id: str
    title: str | None
    other_participant_ids: list[str]
    unread_count: int
    latest_content: str
    latest_at: datetime


@dataclass(frozen=True, slots=True)
class UnreadSummary:
    """Everything unread for one user: conversations with unread messages, inbox notifications."""

    conversations: list[UnreadConversation] = field(default_factory=list)
    notifications_count: int = 0
    notification_titles: list[str] = field(default_factory=list)  # newest first
    notifications_newest_at: datetime | None = None

    @property
    def newest_at(self) -> datetime | None:
        moments = [c.latest_at for c in self.conversations]
        if self.notifications_newest_at is not None:
            moments.append(self.notifications_newest_at)
        return max(moments, default=None)

    def has_news_since(self, listed_until: datetime | None) -> bool:
        newest = self.newest_at
        return newest is not None and (listed_until is None or newest > listed_until)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def digest_subject(*, messages: int, conversations: int, notifications: int) -> str:
    parts = []
    if messages:
        parts.append(
            f"{_plural(messages, 'unread message')} in {_plural(conversations, 'conversation')}"
        )
    if notifications:
        parts.append(_plural(notifications, "new notification"))
    return " and ".join(parts)


def _preview(content: str) -> str:
    content = " ".join(content.split())
    if len(content) > LATEST_PREVIEW_CHARS:
        return content[: LATEST_PREVIEW_CHARS - 1] + "…"
    return content


def digest_email(summary: UnreadSummary, *, include_content: bool) -> tuple[str, dict[str, Any]]:
    """(subject, template context). Conversations newest first; a conversation without a title
    is named by its other participants' ids."""
    conversations = sorted(summary.conversations, key=lambda c: c.latest_at, reverse=True)
    subject = digest_subject(
        messages=sum(c.unread_count for c in conversations),
        conversations=len(conversations),
        notifications=summary.notifications_count,
    )
    listed = [
        {
            "name": c.title or ", ".join(c.other_participant_ids) or "(just you)",
            "unread_count": c.unread_count,
            "latest": _preview(c.latest_content) if include_content else None,
        }
        for c in conversations
    ]
    return subject, {
        "subject": subject,
        "conversations": listed,
        "notifications_count": summary.notifications_count,
        "notification_titles": summary.notification_titles[:NOTIFICATION_TITLES_LISTED],
    }
