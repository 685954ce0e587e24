"""The send path's one statement: seq claim, message row and push job in one round trip.

Three packages' tables in one statement on purpose: a send was seven round trips and
round trips were the largest part of its CPU. Each package still owns its part: the claim
CTEs are `conversations.message_seq`'s, the push job CTE is `push.outbox`'s; this module
only joins them to the message INSERT. A reply's clear-on-read push is queued by the push
job's fan-out, from the range the job carries (see `MESSAGE_JOB_CTE`).

One statement is atomic by itself, so the send needs no BEGIN/COMMIT around it (it runs
in an autocommit session): the message, its seq, the sender's read position and its push
job are all stored, or nothing is. A repeated (sender, client_msg_id) claims and inserts
nothing; when two such sends race, the later INSERT violates the unique constraint and
its whole statement is undone (`DuplicateClientMsgId` either way)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.conversations.message_seq import (
    CLAIM_COLUMNS,
    SeqClaim,
    claim_ctes,
    claim_of,
)
from backend.app.messenger.conversations.service import ConversationNotFound
from backend.app.messenger.push.outbox import MESSAGE_JOB_CTE, message_job_parameters

CLIENT_MSG_ID_CONSTRAINT = "uq_messages_sender_client_msg_id"
USED_BEFORE = """
    EXISTS (SELECT 1 FROM messages WHERE sender_id = :sender_id AND client_msg_id = :client_msg_id)
"""
STORED_CTE = """
    stored AS (
        INSERT INTO messages (id, conversation_id, sender_id, content, client_msg_id, seq)
        SELECT :message_id, :conversation_id, :sender_id, :content, :client_msg_id, last_seq
        FROM bumped
        RETURNING created_at
    )"""
STORED_COLUMNS = """
    (SELECT created_at FROM stored) AS created_at,
    (SELECT id FROM job) AS push_job_id"""
_SEND = text(
    f"""
    WITH {claim_ctes(unless=USED_BEFORE)}, {STORED_CTE}, {MESSAGE_JOB_CTE}
    SELECT {CLAIM_COLUMNS}, {STORED_COLUMNS}
    FROM previous LEFT JOIN bumped ON true
    """
)


class DuplicateClientMsgId(Exception):
    """The sender already has a message with this client_msg_id; nothing was stored."""


@dataclass(frozen=True, slots=True)
class StoredSend:
    claim: SeqClaim
    created_at: datetime
    push_job_id: int


async def store_message(
    session: AsyncSession,
    *,
    message_id: uuid.UUID,
    conversation_id: uuid.UUID,
    sender_id: str,
    sender_name: str,
    content: str,
    client_msg_id: str | None,
    include_content: bool,
) -> StoredSend:
    """Claim the next seq, insert the message and its push job: one statement.

    Raises `ConversationNotFound` when the sender does not take part and
    `DuplicateClientMsgId` when the client_msg_id was used before (nothing changed).
    """
    parameters = {
        "message_id": message_id,
        "conversation_id": conversation_id,
        "sender_id": sender_id,
        "content": content,
        "client_msg_id": client_msg_id,
        **message_job_parameters(
            sender_name=sender_name,
            content=content,
            include_content=include_content,
            conversation_id=conversation_id,
            message_id=message_id,
            sender_id=sender_id,
        ),
    }
    try:
        row = (await session.execute(_SEND, parameters)).one_or_none()
    except IntegrityError as exc:
        if CLIENT_MSG_ID_CONSTRAINT not in str(exc.orig):
            raise
        await session.rollback()
        raise DuplicateClientMsgId(client_msg_id) from exc
    if row is None:
        raise ConversationNotFound(conversation_id)
    claim = claim_of(
        row, conversation_id=conversation_id, sender_id=sender_id, message_id=message_id
    )
    if claim is None:
        raise DuplicateClientMsgId(client_msg_id)
    return StoredSend(
        claim=claim,
        created_at=row.created_at,
        push_job_id=row.push_job_id,
    )
