from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from backend.app.messenger.notifications.vocabulary import (
    Channel,
    NotificationStatus,
    Priority,
)
from backend.app.messenger.topics.service import TOPIC_PATTERN

ChannelName = Literal[tuple(c.value for c in Channel)]  # type: ignore[valid-type]
PriorityName = Literal[tuple(p.value for p in Priority)]  # type: ignore[valid-type]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MAX_USER_IDS = 10_000


class CreateNotificationRequest(BaseModel):
    user_ids: list[UserId] | None = Field(default=None, min_length=1, max_length=MAX_USER_IDS)
    topic: Annotated[str, StringConstraints(pattern=TOPIC_PATTERN)] | None = None
    all: bool | None = None
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=2000)
    type: str = Field(default="general", min_length=1, max_length=64)
    priority: PriorityName = Priority.NORMAL.value  # type: ignore[valid-type]
    action_url: str | None = Field(default=None, max_length=2048)
    data: dict[Annotated[str, StringConstraints(max_length=256)], str] | None = None
    channels: list[ChannelName] = Field(  # type: ignore[valid-type]
        default_factory=lambda: [Channel.IN_APP.value, Channel.PUSH.value], max_length=3
    )
    send_at: datetime | None = None

    @field_validator("action_url")
    @classmethod
    def _action_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith("/") and not value.startswith("//"):
            return value
        if value.startswith("https://") and len(value) > len("https://") and " " not in value:
            return value
        raise ValueError("action_url must be an https URL or a path starting with '/'")

    @field_validator("send_at")
    @classmethod
    def _send_at(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("send_at needs a time zone (e.g. a trailing Z)")
        if value is not None and not 1970 <= value.year <= 9999:
            raise ValueError("send_at must be between the years 1970 and 9999")
        return value

    @field_validator("data")
    @classmethod
    def _data_size(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and sum(len(k) + len(v) for k, v in value.items()) > 4096:
            raise ValueError("data must be at most 4096 characters in total")
        return value

    @model_validator(mode="after")
    def _storable_text(self) -> CreateNotificationRequest:
        """PostgreSQL text takes neither NUL nor unpaired surrogates: refuse them here (422)."""
        texts = [self.title, self.body, self.type, self.action_url or "", self.topic or ""]
        texts += self.user_ids or []
        for key, value in (self.data or {}).items():
            texts += [key, value]
        for value in texts:
            if not is_storable(value):
                raise ValueError("text must not contain NUL characters or unpaired surrogates")
        return self

    @model_validator(mode="after")
    def _exactly_one_target(self) -> CreateNotificationRequest:
        given = [
            name
            for name, present in (
                ("user_ids", self.user_ids is not None),
                ("topic", self.topic is not None),
                ("all", self.all is True),
            )
            if present
        ]
        if len(given) != 1:
            raise ValueError("give exactly one of user_ids, topic or all")
        if len(set(self.channels)) != len(self.channels) or not self.channels:
            raise ValueError("channels must be a non-empty list without repeats")
        return self


def is_storable(value: str) -> bool:
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Accepted(BaseModel):
    notification_id: uuid.UUID
    status: Literal["queued", "scheduled"]


class Cancelled(BaseModel):
    notification_id: uuid.UUID
    status: Literal["cancelled"] = "cancelled"


class InboxEntryOut(BaseModel):
    id: int
    notification_id: uuid.UUID
    type: str
    title: str
    body: str
    priority: PriorityName  # type: ignore[valid-type]
    action_url: str | None
    data: dict[str, str] | None
    created_at: datetime
    read_at: datetime | None


class InboxPage(BaseModel):
    notifications: list[InboxEntryOut]
    next_cursor: str | None


class ReadAll(BaseModel):
    updated: int


class PushCounts(BaseModel):
    delivered: int = 0
    token_dead: int = 0
    failed: int = 0
    pending: int = 0


class InAppCounts(BaseModel):
    read: int = 0
    unread: int = 0


class EmailCounts(BaseModel):
    sent: int = 0
    failed: int = 0
    pending: int = 0


class AdminNotificationOut(BaseModel):
    id: uuid.UUID
    title: str
    type: str
    # Mirrors the request: {"user_ids": [...]}, {"topic": "..."} or {"all": true}.
    target: dict[str, Any]
    created_at: datetime
    send_at: datetime
    status: Literal[tuple(s.value for s in NotificationStatus)]  # type: ignore[valid-type]
    recipients: int
    push: PushCounts
    in_app: InAppCounts
    email: EmailCounts


class AdminNotificationPage(BaseModel):
    notifications: list[AdminNotificationOut]
    next_cursor: str | None
