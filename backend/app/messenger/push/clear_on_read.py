"""Clear on read: a silent push to each of the reader's devices that a message push of the
passed range reached, so their notifications and badge follow a read made elsewhere.

Set-based statements on the push tables (and message positions): the enqueue here, in the
read's own transaction (a reply's: at its push job's fan-out, `enqueue_sender_clear`), and
the deliveries at the clear job's fan-out (`clear_fanout`). Coalescing: a clear job not yet fanned
out absorbs later reads of the same conversation (the latest position wins); at fan-out a
device's older clear push that is still waiting is superseded, and one in flight makes the
new one wait for its lease, so at most one is in flight per device and conversation.
"""

from __future__ import annotations

import json
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.conversations.read_state import ReadMove
from backend.app.messenger.push.vocabulary import Priority, PushKind


def reached_devices(
    *, user_id: str = ":user_id", from_seq: str = ":from_seq", to_seq: str = ":to_seq"
) -> str:
    """Devices of the user that a message push of (from_seq, to_seq] in :conversation_id
    reached (arguments are SQL expressions).

    `m.conversation_id` lets it start from the passed messages (the conversation's seq index,
    then each one's job and its delivery to each device by primary key). Without it the range
    matched every conversation's messages at those positions: a scan of `messages` (or of
    the reader's whole delivery history) on every read and reply, 4-10 ms at 30,000 messages.
    """
    return f"""
    SELECT DISTINCT d.device_id
    FROM device_tokens t
    JOIN push_deliveries d ON d.device_id = t.id AND d.status = 'delivered'
    JOIN push_jobs mj ON mj.id = d.job_id AND mj.kind = 'message'
                     AND mj.conversation_id = CAST(:conversation_id AS uuid)
    JOIN messages m ON m.id = mj.message_id AND m.conversation_id = CAST(:conversation_id AS uuid)
                   AND m.seq > {from_seq} AND m.seq <= {to_seq}
    WHERE t.user_id = {user_id} AND t.is_active
    """


def unfinished_clears(*, user_id: str = ":user_id", other_than: str = ":job_id") -> str:
    """Clear pushes of this user and conversation still waiting or in flight (other jobs)."""
    return f"""
    SELECT d.device_id, d.job_id, d.lease_until
    FROM push_jobs cj JOIN push_deliveries d ON d.job_id = cj.id AND d.status = 'pending'
    WHERE cj.kind = 'clear' AND cj.target_user_id = {user_id}
      AND cj.conversation_id = CAST(:conversation_id AS uuid) AND cj.id <> {other_than}
    """


def _enqueue_ctes(
    *, user_id: str, from_seq: str, to_seq: str, data: str, when: str = "true"
) -> str:
    """The enqueue, as top-level CTEs of a statement (arguments are SQL expressions; the
    conversation is :conversation_id). When `when` holds and the move passed a pushed
    message (or a clear push for this conversation is still on its way), the newest clear
    job not yet fanned out absorbs it (the range grows to cover both, the later position
    wins), else a new clear job: `_CLEAR_JOB_ID` is then its id, else NULL. A read runs them
    alone (`enqueue_clear`), a reply's push job at its fan-out (`enqueue_sender_clear`)."""
    return f"""
    clear_needed AS (
        SELECT ({when}) AND (
            EXISTS ({reached_devices(user_id=user_id, from_seq=from_seq, to_seq=to_seq)})
            OR EXISTS ({unfinished_clears(user_id=user_id, other_than="0")})
        ) AS yes
    ), clear_absorbed AS (
        UPDATE push_jobs SET
            data = CASE WHEN {to_seq} > read_to_seq THEN CAST({data} AS jsonb) ELSE data END,
            read_from_seq = LEAST(read_from_seq, {from_seq}),
            read_to_seq = GREATEST(read_to_seq, {to_seq})
        WHERE (SELECT yes FROM clear_needed) AND id = (
            SELECT id FROM push_jobs
            WHERE kind = '{PushKind.CLEAR.value}' AND target_user_id = {user_id}
              AND conversation_id = CAST(:conversation_id AS uuid)
              AND fanned_out_at IS NULL AND failed_at IS NULL AND fanout_lease_until IS NULL
            ORDER BY id DESC LIMIT 1 FOR UPDATE SKIP LOCKED
        )
        RETURNING id
    ), clear_created AS (
        INSERT INTO push_jobs (
            kind, conversation_id, target_user_id, title, body, data, priority,
            read_from_seq, read_to_seq
        )
        SELECT '{PushKind.CLEAR.value}', CAST(:conversation_id AS uuid), {user_id}, '', '',
            CAST({data} AS jsonb), '{Priority.NORMAL.value}', {from_seq}, {to_seq}
        WHERE (SELECT yes FROM clear_needed) AND NOT EXISTS (SELECT 1 FROM clear_absorbed)
        RETURNING id
    )"""


_CLEAR_JOB_ID = "(SELECT id FROM clear_absorbed UNION ALL SELECT id FROM clear_created)"
_ENQUEUE = text(
    f"""
    WITH {_enqueue_ctes(user_id=":user_id", from_seq=":from_seq", to_seq=":to_seq", data=":data")}
    SELECT {_CLEAR_JOB_ID} AS id
    """
)
# A reply's message job carries the range its sender passed (push/outbox.py): taken once (the
# range is cleared in the same statement, so a fan-out redone after a crash queues nothing
# twice) and queued as the sender's clear-on-read up to their position now, not the reply's:
# the fan-out may come after later reads, whose clear jobs (older ids) must not be followed
# by one that takes the position back.
_ENQUEUE_SENDER = text(
    f"""
    WITH taken AS (
        UPDATE push_jobs AS j SET read_from_seq = NULL, read_to_seq = NULL
        FROM (
            SELECT id, read_from_seq FROM push_jobs
            WHERE id = :job_id AND kind = '{PushKind.MESSAGE.value}' AND read_from_seq IS NOT NULL
            FOR UPDATE
        ) AS range, conversation_participants AS p  -- RETURNING shows the row as updated
        WHERE j.id = range.id AND p.conversation_id = j.conversation_id AND p.user_id = :user_id
        RETURNING range.read_from_seq, p.last_read_seq, p.last_read_message_id
    ), {
        _enqueue_ctes(
            user_id=":user_id",
            from_seq="(SELECT read_from_seq FROM taken)",
            to_seq="(SELECT last_read_seq FROM taken)",
            data=(
                "jsonb_build_object('type', 'conversation.read', 'conversation_id',"
                " CAST(:conversation_id AS text), 'last_read_message_id',"
                " (SELECT CAST(last_read_message_id AS text) FROM taken))"
            ),
            when="EXISTS (SELECT 1 FROM taken)",
        )
    }
    SELECT {_CLEAR_JOB_ID} AS id
    """
)


def clear_data(move: ReadMove) -> dict[str, str]:
    """The data of a clear push: the position the reader's devices catch up to (the SQL of
    `_ENQUEUE_SENDER` builds the same object)."""
    return {
        "type": "conversation.read",
        "conversation_id": str(move.conversation_id),
        "last_read_message_id": str(move.last_read_message_id),
    }


async def enqueue_clear(session: AsyncSession, *, move: ReadMove) -> int | None:
    """In the read's transaction: a clear job when the move passed pushed messages (or a
    clear push for this conversation is still on its way); None when nothing is to clear."""
    params = {
        "user_id": move.user_id,
        "conversation_id": str(move.conversation_id),
        "from_seq": move.previous_seq,
        "to_seq": move.last_read_seq,
        "data": json.dumps(clear_data(move)),
    }
    job_id = (await session.execute(_ENQUEUE, params)).scalar_one()
    return None if job_id is None else int(job_id)


async def enqueue_sender_clear(
    session: AsyncSession, *, job_id: int, sender_id: str, conversation_id: uuid.UUID
) -> int | None:
    """At a reply's fan-out: the clear job for the pushes its sender passed (see
    `_ENQUEUE_SENDER`); None when none is needed or it was queued before."""
    params = {"job_id": job_id, "user_id": sender_id, "conversation_id": str(conversation_id)}
    job = (await session.execute(_ENQUEUE_SENDER, params)).scalar_one()
    return None if job is None else int(job)
