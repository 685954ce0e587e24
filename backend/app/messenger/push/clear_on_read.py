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
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.conversations.read_state import ReadMove
from backend.app.messenger.push.vocabulary import Priority, PushKind
from backend.app.messenger.read_state.unread import unread_badges


def _reached(
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


def _unfinished_clears(*, user_id: str = ":user_id", other_than: str = ":job_id") -> str:
    """Clear pushes of this user and conversation still waiting or in flight (other jobs)."""
    return f"""
    SELECT d.device_id, d.job_id, d.lease_until
    FROM push_jobs cj JOIN push_deliveries d ON d.job_id = cj.id AND d.status = 'pending'
    WHERE cj.kind = 'clear' AND cj.target_user_id = {user_id}
      AND cj.conversation_id = CAST(:conversation_id AS uuid) AND cj.id <> {other_than}
    """


def enqueue_ctes(*, user_id: str, from_seq: str, to_seq: str, data: str, when: str = "true") -> str:
    """The enqueue, as top-level CTEs of a statement (arguments are SQL expressions; the
    conversation is :conversation_id). When `when` holds and the move passed a pushed
    message (or a clear push for this conversation is still on its way), the newest clear
    job not yet fanned out absorbs it (the latest position wins), else a new clear job:
    `CLEAR_JOB_ID` is then its id, else NULL. The send statement embeds them, so that a
    reply stays one round trip; a read runs them alone (`enqueue_clear`)."""
    return f"""
    clear_needed AS (
        SELECT ({when}) AND (
            EXISTS ({_reached(user_id=user_id, from_seq=from_seq, to_seq=to_seq)})
            OR EXISTS ({_unfinished_clears(user_id=user_id, other_than="0")})
        ) AS yes
    ), clear_absorbed AS (
        UPDATE push_jobs SET data = CAST({data} AS jsonb), read_to_seq = {to_seq}
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


CLEAR_JOB_ID = "(SELECT id FROM clear_absorbed UNION ALL SELECT id FROM clear_created)"
_ENQUEUE = text(
    f"""
    WITH {enqueue_ctes(user_id=":user_id", from_seq=":from_seq", to_seq=":to_seq", data=":data")}
    SELECT {CLEAR_JOB_ID} AS id
    """
)
_CREATE_DELIVERIES = text(
    f"""
    WITH unfinished AS ({_unfinished_clears()}),
    superseded AS (
        UPDATE push_deliveries d SET status = 'failed', lease_until = NULL,
                                     finished_at = now(), last_error = 'superseded'
        FROM unfinished u
        WHERE d.job_id = u.job_id AND d.device_id = u.device_id AND d.status = 'pending'
          AND (d.lease_until IS NULL OR d.lease_until < now())
        RETURNING d.device_id
    ), in_flight AS (
        SELECT device_id, max(lease_until) AS until FROM unfinished
        WHERE lease_until >= now() GROUP BY device_id
    ), targets AS (
        SELECT device_id FROM ({_reached()}) AS reached
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
# Taken first: a delivery engine claiming one of these waits for (or is waited on by) this
# fan-out, so the next statement sees which of them are really in flight.
_LOCK_UNFINISHED = text(
    """
    SELECT 1 FROM push_jobs cj JOIN push_deliveries d ON d.job_id = cj.id AND d.status = 'pending'
    WHERE cj.kind = 'clear' AND cj.target_user_id = :user_id
      AND cj.conversation_id = CAST(:conversation_id AS uuid) AND cj.id <> :job_id
    FOR UPDATE OF d
    """
)
# Fan-outs of one reader's clear jobs for one conversation take turns.
_PAIR_LOCK = text(
    "SELECT pg_advisory_xact_lock(hashtextextended("
    "'clear:' || :user_id || ':' || :conversation_id, 0))"
)
_TAKE_UNFANNED = text(
    """
    WITH taken AS (
        UPDATE push_jobs SET fanned_out_at = now(), fanout_lease_until = NULL
        WHERE kind = 'clear' AND target_user_id = :user_id
          AND conversation_id = CAST(:conversation_id AS uuid)
          AND fanned_out_at IS NULL AND failed_at IS NULL
        RETURNING id, read_from_seq, read_to_seq
    )
    SELECT max(id) AS newest, min(read_from_seq) AS from_seq, max(read_to_seq) AS to_seq
    FROM taken
    """
)
_JOB_RANGE = text(
    "SELECT target_user_id, conversation_id, read_from_seq, read_to_seq FROM push_jobs "
    "WHERE id = :id"
)


def clear_data(move: ReadMove) -> dict[str, str]:
    return clear_data_of(
        conversation_id=move.conversation_id, last_read_message_id=move.last_read_message_id
    )


def clear_data_of(*, conversation_id: uuid.UUID, last_read_message_id: uuid.UUID) -> dict[str, str]:
    """The data of a clear push: the position the reader's devices catch up to."""
    return {
        "type": "conversation.read",
        "conversation_id": str(conversation_id),
        "last_read_message_id": str(last_read_message_id),
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


async def create_clear_deliveries(session: AsyncSession, *, job_id: int) -> int | None:
    """Fan out every clear job of this job's reader and conversation not yet fanned out, as
    the newest of them (the latest position wins, whatever order the jobs are taken in):
    a delivery per device to clear (reached, superseded or in flight). Returns the job the
    deliveries belong to (None if another fan-out already took this one)."""
    row = (await session.execute(_JOB_RANGE, {"id": job_id})).one()
    key = {"user_id": row.target_user_id, "conversation_id": str(row.conversation_id)}
    await session.execute(_PAIR_LOCK, key)
    merged = (await session.execute(_TAKE_UNFANNED, key)).one()
    if merged.newest is None:
        return None
    # Counted after the jobs were taken: the badge is never older than their position.
    badge = (await unread_badges(session, user_ids=[row.target_user_id]))[row.target_user_id]
    params = {
        **key,
        "job_id": merged.newest,
        "from_seq": merged.from_seq,
        "to_seq": merged.to_seq,
        "badge": badge,
    }
    await session.execute(_LOCK_UNFINISHED, params)
    await session.execute(_CREATE_DELIVERIES, params)
    return int(merged.newest)


# After clear pushes were recorded: the newest waiting clear push of the same device and
# conversation goes out now, and the recorded one, if it is to be retried, gives way to it.
_RELEASE_WAITING = text(
    """
    WITH recorded AS (
        SELECT j.id AS job_id, j.target_user_id, j.conversation_id, u.device_id
        FROM unnest(CAST(:job_ids AS bigint[]), CAST(:device_ids AS bigint[]))
             AS u(job_id, device_id)
        JOIN push_jobs j ON j.id = u.job_id
    ), newer AS (
        SELECT d.job_id, d.device_id, r.job_id AS older_job_id
        FROM recorded r
        JOIN push_jobs j ON j.kind = 'clear' AND j.target_user_id = r.target_user_id
                        AND j.conversation_id = r.conversation_id AND j.id > r.job_id
        JOIN push_deliveries d ON d.job_id = j.id AND d.device_id = r.device_id
                              AND d.status = 'pending' AND d.lease_until IS NULL
    ), superseded AS (
        UPDATE push_deliveries d SET status = 'failed', finished_at = now(),
                                     last_error = 'superseded'
        FROM newer n
        WHERE d.job_id = n.older_job_id AND d.device_id = n.device_id AND d.status = 'pending'
          AND d.lease_until IS NULL
    )
    UPDATE push_deliveries d SET next_attempt_at = now()
    FROM newer n WHERE d.job_id = n.job_id AND d.device_id = n.device_id
      AND d.next_attempt_at > now()
    """
)


async def release_waiting(
    session: AsyncSession, *, job_ids: list[int], device_ids: list[int]
) -> None:
    """Called with the outcomes of clear pushes (same transaction): one statement."""
    if job_ids:
        await session.execute(_RELEASE_WAITING, {"job_ids": job_ids, "device_ids": device_ids})
