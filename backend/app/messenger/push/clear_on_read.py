"""Clear on read: a silent push to each of the reader's devices that a message push of the
passed range reached, so their notifications and badge follow a read made elsewhere.

Set-based statements on the push tables (and message positions), taken in the read's own
transaction (enqueue) and at fan-out (deliveries). Coalescing: a clear job not yet fanned
out absorbs later reads of the same conversation (the latest position wins); at fan-out a
device's older clear push that is still waiting is superseded, and one in flight makes the
new one wait for its lease, so at most one is in flight per device and conversation.
"""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.conversations.read_state import ReadMove
from backend.app.messenger.push.models import PushJob
from backend.app.messenger.push.vocabulary import Priority, PushKind

# Devices of :user_id that a message push of (from_seq, to_seq] in :conversation_id reached.
_REACHED = """
    SELECT DISTINCT d.device_id
    FROM device_tokens t
    JOIN push_deliveries d ON d.device_id = t.id AND d.status = 'delivered'
    JOIN push_jobs mj ON mj.id = d.job_id AND mj.kind = 'message'
                     AND mj.conversation_id = CAST(:conversation_id AS uuid)
    JOIN messages m ON m.id = mj.message_id AND m.seq > :from_seq AND m.seq <= :to_seq
    WHERE t.user_id = :user_id AND t.is_active
"""
# Clear pushes of this user and conversation still waiting or in flight (other jobs).
_UNFINISHED_CLEARS = """
    SELECT d.device_id, d.job_id, d.lease_until
    FROM push_jobs cj JOIN push_deliveries d ON d.job_id = cj.id AND d.status = 'pending'
    WHERE cj.kind = 'clear' AND cj.target_user_id = :user_id
      AND cj.conversation_id = CAST(:conversation_id AS uuid) AND cj.id <> :job_id
"""
_ANY_TARGET = text(
    f"SELECT EXISTS ({_REACHED}) OR EXISTS ({_UNFINISHED_CLEARS.replace(':job_id', '0')})"
)
_ABSORB = text(
    """
    UPDATE push_jobs SET data = CAST(:data AS jsonb), read_to_seq = :to_seq
    WHERE id = (
        SELECT id FROM push_jobs
        WHERE kind = 'clear' AND target_user_id = :user_id
          AND conversation_id = CAST(:conversation_id AS uuid)
          AND fanned_out_at IS NULL AND failed_at IS NULL AND fanout_lease_until IS NULL
        ORDER BY id DESC LIMIT 1 FOR UPDATE SKIP LOCKED
    )
    RETURNING id
    """
)
_CREATE_DELIVERIES = text(
    f"""
    WITH unfinished AS ({_UNFINISHED_CLEARS}),
    superseded AS (
        UPDATE push_deliveries d SET status = 'failed', lease_until = NULL,
                                     finished_at = now(), last_error = 'superseded'
        FROM unfinished u
        WHERE d.job_id = u.job_id AND d.device_id = u.device_id AND d.status = 'pending'
          AND (u.lease_until IS NULL OR u.lease_until < now())
        RETURNING d.device_id
    ), in_flight AS (
        SELECT device_id, max(lease_until) AS until FROM unfinished
        WHERE lease_until >= now() GROUP BY device_id
    ), targets AS (
        SELECT device_id FROM ({_REACHED}) AS reached
        UNION SELECT device_id FROM superseded
        UNION SELECT device_id FROM in_flight
    )
    INSERT INTO push_deliveries (job_id, device_id, badge, next_attempt_at)
    SELECT :job_id, targets.device_id, :badge, COALESCE(f.until, now())
    FROM targets LEFT JOIN in_flight f ON f.device_id = targets.device_id
    ON CONFLICT DO NOTHING
    RETURNING device_id
    """
)
_JOB_RANGE = text(
    "SELECT target_user_id, conversation_id, read_from_seq, read_to_seq FROM push_jobs "
    "WHERE id = :id"
)


def clear_data(move: ReadMove) -> dict[str, str]:
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
    }
    if not (await session.execute(_ANY_TARGET, params)).scalar_one():
        return None
    data = clear_data(move)
    absorbed = await session.execute(_ABSORB, {**params, "data": json.dumps(data)})
    job_id = absorbed.scalar_one_or_none()
    if job_id is not None:
        return int(job_id)
    job = PushJob(
        kind=PushKind.CLEAR.value,
        conversation_id=move.conversation_id,
        target_user_id=move.user_id,
        title="",
        body="",
        data=data,
        priority=Priority.NORMAL.value,
        read_from_seq=move.previous_seq,
        read_to_seq=move.last_read_seq,
    )
    session.add(job)
    await session.flush()
    return job.id


async def create_clear_deliveries(session: AsyncSession, *, job_id: int, badge: int) -> int:
    """One statement: a delivery per device to clear (reached, superseded or in flight)."""
    row = (await session.execute(_JOB_RANGE, {"id": job_id})).one()
    result = await session.execute(
        _CREATE_DELIVERIES,
        {
            "job_id": job_id,
            "user_id": row.target_user_id,
            "conversation_id": str(row.conversation_id),
            "from_seq": row.read_from_seq,
            "to_seq": row.read_to_seq,
            "badge": badge,
        },
    )
    return len(result.scalars().all())
