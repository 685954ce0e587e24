"""Sending and reading messages. One `send_message` serves REST and WebSocket alike.

Functions take the session and explicit arguments and never commit. The caller commits
and only then announces the message (see `events.announce_message`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.auth import CurrentUser
from backend.app.messenger.conversations.read_state import ReadMove
from backend.app.messenger.conversations.service import ConversationNotFound, ensure_participant
from backend.app.messenger.messages.models import Message
from backend.app.messenger.messages.schemas import CLIENT_MSG_ID_MAX_LENGTH, CONTENT_MAX_LENGTH
from backend.app.messenger.messages.send_statement import DuplicateClientMsgId, store_message

__all__ = [
    "ClientMsgIdConflict",
    "ConversationNotFound",
    "InvalidMessage",
    "SentMessage",
    "UnknownCursor",
    "list_messages",
    "send_message",
]


class InvalidMessage(ValueError):
    """Content or client_msg_id unfit to store (the REST and WebSocket schemas reject these first)."""


class ClientMsgIdConflict(Exception):
    """The sender already used this client_msg_id for a message in another conversation."""


class UnknownCursor(LookupError):
    """`before` names no message of this conversation."""


@dataclass(frozen=True, slots=True)
class SentMessage:
    message: Message
    created: bool  # False: a repeated client_msg_id, `message` is the original
    push_job_id: int | None  # None when nothing was created
    participant_ids: list[str]
    # The sender's read position moved to this message (None when nothing was created).
    sender_read_move: ReadMove | None = None


def _validate(content: str, client_msg_id: str | None) -> None:
    if not 1 <= len(content) <= CONTENT_MAX_LENGTH:
        raise InvalidMessage(f"content must be 1-{CONTENT_MAX_LENGTH} characters")
    if client_msg_id is not None and not 1 <= len(client_msg_id) <= CLIENT_MSG_ID_MAX_LENGTH:
        raise InvalidMessage(f"client_msg_id must be 1-{CLIENT_MSG_ID_MAX_LENGTH} characters")
    if "\x00" in content or (client_msg_id is not None and "\x00" in client_msg_id):
        raise InvalidMessage("content and client_msg_id must not contain NUL characters")


async def send_message(
    session: AsyncSession,
    *,
    conversation_id: uuid.UUID,
    sender: CurrentUser,
    content: str,
    client_msg_id: str | None,
    include_content: bool,
) -> SentMessage:
    """Store a message and its push job: one statement, committed as it runs (`session` is
    an autocommit session, see send_statement.py).

    The message takes the conversation's next `seq` (sends of one conversation serialise on
    its row lock) and moves the sender's read position to it (for a reply, the push job's
    fan-out clears the passed messages' pushes on the sender's devices). Idempotent per (sender,
    client_msg_id), race-free: a repeat stores nothing and answers with the original (no
    push job, no announcement).
    """
    _validate(content, client_msg_id)
    message_id = uuid.uuid4()
    try:
        stored = await store_message(
            session,
            message_id=message_id,
            conversation_id=conversation_id,
            sender_id=sender.id,
            sender_name=sender.display_name,
            content=content,
            client_msg_id=client_msg_id,
            include_content=include_content,
        )
    except DuplicateClientMsgId:
        original = (
            await session.scalars(
                select(Message).where(
                    Message.sender_id == sender.id, Message.client_msg_id == client_msg_id
                )
            )
        ).one()
        if original.conversation_id != conversation_id:
            raise ClientMsgIdConflict(client_msg_id) from None
        return SentMessage(message=original, created=False, push_job_id=None, participant_ids=[])

    claim = stored.claim
    message = Message(
        id=message_id,
        conversation_id=conversation_id,
        sender_id=sender.id,
        content=content,
        client_msg_id=client_msg_id,
        seq=claim.seq,
        created_at=stored.created_at,
    )
    return SentMessage(
        message=message,
        created=True,
        push_job_id=stored.push_job_id,
        participant_ids=claim.participant_ids,
        sender_read_move=claim.sender_move,
    )


async def list_messages(
    session: AsyncSession,
    *,
    conversation_id: uuid.UUID,
    user_id: str,
    before: uuid.UUID | None,
    limit: int,
) -> list[Message]:
    """Newest first, strictly older than `before` (keyset on (created_at, id), index-backed)."""
    await ensure_participant(session, conversation_id=conversation_id, user_id=user_id)
    query = (
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
    )
    if before is not None:
        cursor = (
            await session.execute(
                select(Message.created_at, Message.id).where(
                    Message.id == before, Message.conversation_id == conversation_id
                )
            )
        ).one_or_none()
        if cursor is None:
            raise UnknownCursor(before)
        query = query.where(
            tuple_(Message.created_at, Message.id) < tuple_(cursor.created_at, cursor.id)
        )
    return list(await session.scalars(query))
