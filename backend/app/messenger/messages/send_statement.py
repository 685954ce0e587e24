"""The send path's one statement: seq claim, message row and push job in one round trip.

Three packages' tables in one statement on purpose: a send was five round trips (claim,
message INSERT, push-job INSERT, each through the ORM) and round trips were the largest
part of its CPU. Each package still owns its part: the claim CTEs are
`conversations.message_seq`'s, the push job CTE is `push.outbox`'s; this module only
joins them to the message INSERT.

The message INSERT yields to an earlier message with the same (sender, client_msg_id):
it then inserts nothing, so neither does the push job, and the row says `created_at` NULL
(the caller undoes the claim and answers with the original).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.conversations.message_seq import (
    CLAIM_COLUMNS,
    CLAIM_CTES,
    SeqClaim,
    claim_of,
)
from backend.app.messenger.conversations.service import ConversationNotFound
from backend.app.messenger.push.outbox import MESSAGE_JOB_CTE, message_job_parameters

_SEND = text(
    f"""
    WITH {CLAIM_CTES},
    stored AS (
        INSERT INTO messages (id, conversation_id, sender_id, content, client_msg_id, seq)
        SELECT :message_id, :conversation_id, :sender_id, :content, :client_msg_id, last_seq
        FROM bumped
        ON CONFLICT ON CONSTRAINT uq_messages_sender_client_msg_id DO NOTHING
        RETURNING created_at
    ),
    {MESSAGE_JOB_CTE}
    SELECT {CLAIM_COLUMNS},
        (SELECT created_at FROM stored) AS created_at,
        (SELECT id FROM job) AS push_job_id
    FROM bumped, previous
    """
)


@dataclass(frozen=True, slots=True)
class StoredSend:
    claim: SeqClaim
    created_at: datetime | None  # None: the client_msg_id was used before, nothing stored
    push_job_id: int | None


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
    """Claim the next seq, insert the message and its push job, in the caller's transaction.

    Raises `ConversationNotFound` when the sender does not take part (nothing changed).
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
    row = (await session.execute(_SEND, parameters)).one_or_none()
    if row is None:
        raise ConversationNotFound(conversation_id)
    claim = claim_of(
        row, conversation_id=conversation_id, sender_id=sender_id, message_id=message_id
    )
    return StoredSend(claim=claim, created_at=row.created_at, push_job_id=row.push_job_id)
