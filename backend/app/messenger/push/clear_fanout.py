"""Clear on read at fan-out: the deliveries of a clear job (the reader's devices to clear,
with their badge), and the release of a clear push waiting behind one in flight. The model
and the enqueueing are in `clear_on_read`."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.push.clear_on_read import reached_devices, unfinished_clears
from backend.app.messenger.read_state.unread import unread_badges

_CREATE_DELIVERIES = text(
    f"""
    WITH unfinished AS ({unfinished_clears()}),
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
        SELECT device_id FROM ({reached_devices()}) AS reached
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
