from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from backend.app.edge.fields import CheckedDatetime
from backend.app.edge.text import check_text

# PostgreSQL text cannot hold U+0000 and UTF-8 cannot hold a lone surrogate: a 422, not a 500.
NoNul = AfterValidator(check_text)
# Same bounds as the JWT `sub` claim: user ids are opaque strings of 1-64 characters.
UserId = Annotated[str, StringConstraints(min_length=1, max_length=64), NoNul]
MAX_PARTICIPANTS_PER_REQUEST = 1000


class CreateConversationRequest(BaseModel):
    title: Annotated[str, NoNul] | None = Field(default=None, max_length=200)
    participant_ids: list[UserId] = Field(max_length=MAX_PARTICIPANTS_PER_REQUEST)

    @field_validator("title")
    @classmethod
    def _blank_title_is_none(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return value.strip() or None


class AddParticipantsRequest(BaseModel):
    user_ids: list[UserId] = Field(min_length=1, max_length=MAX_PARTICIPANTS_PER_REQUEST)


class ConversationOut(BaseModel):
    id: uuid.UUID
    title: str | None
    participant_ids: list[str]
    created_at: datetime
    unread_count: int = Field(description="Messages from others after the caller's read position")
    last_read_message_id: uuid.UUID | None = Field(
        description="The caller's read position (null before they read or sent anything)"
    )


class ConversationList(BaseModel):
    conversations: list[ConversationOut]
    next_cursor: str | None = None


class LeaveResponse(BaseModel):
    left: bool


class NotificationSettings(BaseModel):
    muted: bool
    muted_until: datetime | None
    push_enabled: bool


class NotificationSettingsUpdate(BaseModel):
    """Partial update: fields left out keep their value. `muted_until: null` means "until unmuted"."""

    muted: bool | None = None
    muted_until: CheckedDatetime | None = None
    push_enabled: bool | None = None

    @model_validator(mode="after")
    def _no_null_switches(self) -> NotificationSettingsUpdate:
        for name in ("muted", "push_enabled"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} must be true or false")
        return self

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}
