from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from backend.app.messenger.conversations.schemas import NoNul
from backend.app.messenger.messages.models import Message

CONTENT_MAX_LENGTH = 10_000
CLIENT_MSG_ID_MAX_LENGTH = 128  # the column's width


Content = Annotated[str, Field(min_length=1, max_length=CONTENT_MAX_LENGTH), NoNul]
ClientMsgId = Annotated[str, Field(min_length=1, max_length=CLIENT_MSG_ID_MAX_LENGTH), NoNul]


class SendMessageRequest(BaseModel):
    content: Content
    client_msg_id: ClientMsgId | None = None


class MessageOut(BaseModel):
    """One shape everywhere: REST responses, `message.ack` and `message.new`."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    sender_id: str
    content: str
    created_at: datetime
    client_msg_id: str | None

    @classmethod
    def of(cls, message: Message) -> MessageOut:
        return cls.model_validate(message, from_attributes=True)


def message_json(message: Message) -> dict[str, Any]:
    """The JSON-ready form of a message, as sent over the WebSocket."""
    return MessageOut.of(message).model_dump(mode="json")


class MessagePage(BaseModel):
    messages: list[MessageOut]
    next_before: uuid.UUID | None
