from __future__ import annotations

import uuid

from pydantic import BaseModel, Field


class ReadRequest(BaseModel):
    up_to: uuid.UUID = Field(description="The newest message the caller has read")


class ReadStateOut(BaseModel):
    """The caller's read state of one conversation (the `conversation.read` frame carries it too)."""

    conversation_id: uuid.UUID
    last_read_message_id: uuid.UUID | None
    unread_count: int


class UnreadSummary(BaseModel):
    total: int = Field(description="Sum of the conversation counts and `notifications`")
    conversations: dict[str, int] = Field(
        description="Conversation id -> unread messages; only conversations with unread ones"
    )
    notifications: int = Field(description="Unread inbox notifications")
