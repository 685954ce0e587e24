"""Message sequence numbers: the send path claims the conversation's next `seq`.

Claiming also moves the sender's read position to the new message (own messages are never
unread), in the same statement. See read_state.py for the model.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from backend.app.messenger.conversations.read_state import ReadMove


@dataclass(frozen=True, slots=True)
class SeqClaim:
    """The result of claiming the next message seq of a conversation for a send."""

    conversation_id: uuid.UUID
    sender_id: str
    seq: int
    title: str | None
    participant_ids: list[str]
    sender_move: ReadMove  # sending moves the sender's position to the new message


def claim_ctes(*, unless: str) -> str:
    """The claim, as the leading CTEs of the send's one statement (messages/send_statement.py).

    Bump the conversation's seq under its row lock (sends of one conversation serialise
    here, which is what makes seqs gap-free) and move the sender's position to the new
    message; nothing is claimed when the SQL condition `unless` holds. The sender's row is
    locked first (`previous`) so its old position is exact under concurrent reads. The
    statement then SELECTs `CLAIM_COLUMNS` FROM previous LEFT JOIN bumped: no row when the
    sender does not take part, `last_seq` NULL when nothing was claimed.
    """
    return f"""
    previous AS (
        SELECT last_read_seq FROM conversation_participants
        WHERE conversation_id = :conversation_id AND user_id = :sender_id
        FOR UPDATE
    ), bumped AS (
        UPDATE conversations SET last_seq = last_seq + 1
        WHERE id = :conversation_id AND EXISTS (SELECT 1 FROM previous) AND NOT ({unless})
        RETURNING title, last_seq
    ), moved AS (
        UPDATE conversation_participants SET
            last_read_seq = (SELECT last_seq FROM bumped),
            last_read_message_id = :message_id
        WHERE conversation_id = :conversation_id AND user_id = :sender_id
            AND EXISTS (SELECT 1 FROM bumped)
    )"""


CLAIM_COLUMNS = """
    bumped.title, bumped.last_seq,
    previous.last_read_seq AS previous_seq,
    ARRAY(
        SELECT user_id FROM conversation_participants
        WHERE conversation_id = :conversation_id ORDER BY user_id
    ) AS participant_ids"""


def claim_of(
    row: Any, *, conversation_id: uuid.UUID, sender_id: str, message_id: uuid.UUID
) -> SeqClaim | None:
    """The claim a row of `CLAIM_COLUMNS` describes; None when nothing was claimed."""
    if row.last_seq is None:
        return None
    move = ReadMove(
        user_id=sender_id,
        conversation_id=conversation_id,
        previous_seq=row.previous_seq,
        last_read_seq=row.last_seq,
        last_read_message_id=message_id,
    )
    return SeqClaim(
        conversation_id=conversation_id,
        sender_id=sender_id,
        seq=row.last_seq,
        title=row.title,
        participant_ids=list(row.participant_ids),
        sender_move=move,
    )
