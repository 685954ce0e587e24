"""The notification center's vocabularies; Pydantic Literals and CHECK constraints derive from them."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    IN_APP = "in_app"
    PUSH = "push"
    EMAIL = "email"


class Priority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class TargetKind(StrEnum):
    USER_IDS = "user_ids"
    TOPIC = "topic"
    ALL = "all"


class NotificationStatus(StrEnum):
    SCHEDULED = "scheduled"  # send_at in the future
    QUEUED = "queued"  # due, no recipient materialised yet (still cancellable)
    SENDING = "sending"  # materialisation started: no longer cancellable
    SENT = "sent"  # every recipient materialised
    CANCELLED = "cancelled"


class PushStatus(StrEnum):
    """Recipient rows say `pending` when the channel was requested (NULL otherwise); the admin
    counts come from the push deliveries and emails themselves (see `delivery`)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    TOKEN_DEAD = "token_dead"
    FAILED = "failed"


class EmailStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


# Not yet materialising: a cancel still stops everything.
CANCELLABLE = (NotificationStatus.SCHEDULED, NotificationStatus.QUEUED)
# What the background loop still has to work on.
UNFINISHED = (NotificationStatus.SCHEDULED, NotificationStatus.QUEUED, NotificationStatus.SENDING)


def sql_in(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"
