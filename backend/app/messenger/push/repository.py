"""Statements on the outbox's jobs (and the deliveries fan-out creates), with typed rows.
Set-based: one statement per step whatever the number of recipients. Functions take a session
and never commit. Claiming and recording deliveries lives in `delivery_repository`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.push.vocabulary import Priority, PushKind


@dataclass(frozen=True, slots=True)
class JobRow:
    id: int
    kind: PushKind
    conversation_id: uuid.UUID | None
    sender_id: str | None
    target_user_id: str | None
    recipient_ids: list[str] | None
    fanout_attempts: int
    priority: Priority = Priority.HIGH
    # A reply's message job: its sender passed others' messages (clear-on-read to queue).
    sender_passed: bool = False


_CLAIM_JOB = """
    UPDATE push_jobs SET fanout_lease_until = now() + make_interval(secs => :lease),
                         fanout_attempts = fanout_attempts + 1
    WHERE id = (
        SELECT id FROM push_jobs
        WHERE fanned_out_at IS NULL AND failed_at IS NULL
          AND (fanout_lease_until IS NULL OR fanout_lease_until < now()) AND {condition}
        ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED
    )
    RETURNING id, kind, conversation_id, sender_id, target_user_id, recipient_ids, fanout_attempts,
              priority, kind = 'message' AND read_from_seq IS NOT NULL AS sender_passed
"""
_CLAIM_ANY_JOB = text(_CLAIM_JOB.format(condition="TRUE"))
_CLAIM_THIS_JOB = text(_CLAIM_JOB.format(condition="id = :job_id"))
_RETRY_JOB_LATER = text(
    "UPDATE push_jobs SET fanout_lease_until = now() + make_interval(secs => :delay), "
    "last_error = :error WHERE id = :id AND fanned_out_at IS NULL"
)
_PARK_JOB = text(
    "UPDATE push_jobs SET failed_at = now(), last_error = :error "
    "WHERE id = :id AND fanned_out_at IS NULL"
)
_MARK_FANNED_OUT = text(
    "UPDATE push_jobs SET fanned_out_at = now(), fanout_lease_until = NULL WHERE id = :id"
)
_DELIVERIES = """
    WITH targets AS (
        SELECT id, user_id FROM device_tokens
        WHERE user_id = ANY(CAST(:user_ids AS varchar[])) AND is_active
    ), created AS (
        INSERT INTO push_deliveries (job_id, device_id, lease_until, badge)
        SELECT :job_id, targets.id,
               CASE WHEN :owned THEN now() + make_interval(secs => :lease) END, b.badge
        FROM targets
        LEFT JOIN unnest(CAST(:badge_users AS varchar[]), CAST(:badges AS int[]))
             AS b(user_id, badge) ON b.user_id = targets.user_id
        ON CONFLICT DO NOTHING
    ){job}
    SELECT DISTINCT user_id FROM targets
"""
_CREATE_DELIVERIES = text(_DELIVERIES.format(job=""))
# A fan-out page: its deliveries and the job's progress (lease renewed, or done after the last
# page) in one statement, committed as it ends.
_CREATE_PAGE = text(
    _DELIVERIES.format(
        job=""", job AS (
        UPDATE push_jobs SET
            fanned_out_at = CASE WHEN :last THEN now() END,
            fanout_lease_until = CASE WHEN :last THEN NULL
                                      ELSE now() + make_interval(secs => :lease) END
        WHERE id = :job_id AND fanned_out_at IS NULL
    )"""
    )
)
_CANCEL_FOR_DEVICES = text(
    """
    UPDATE push_deliveries SET status = 'failed', lease_until = NULL, finished_at = now(),
                               last_error = :reason
    WHERE device_id = ANY(CAST(:ids AS bigint[])) AND status = 'pending'
    """
)


async def claim_job(session: AsyncSession, *, job_id: int | None, lease: float) -> JobRow | None:
    """Lease one job for fan-out (this one, or the oldest nobody holds); committed at once so
    no row lock is held while the fan-out reads Redis."""
    statement = _CLAIM_ANY_JOB if job_id is None else _CLAIM_THIS_JOB
    row = (await session.execute(statement, {"job_id": job_id, "lease": lease})).one_or_none()
    if row is None:
        return None
    return JobRow(
        id=row.id,
        kind=PushKind(row.kind),
        conversation_id=row.conversation_id,
        sender_id=row.sender_id,
        target_user_id=row.target_user_id,
        recipient_ids=row.recipient_ids,
        fanout_attempts=row.fanout_attempts,
        priority=Priority(row.priority),
        sender_passed=row.sender_passed,
    )


async def retry_job_later(session: AsyncSession, *, job_id: int, delay: float, error: str) -> None:
    await session.execute(_RETRY_JOB_LATER, {"id": job_id, "delay": delay, "error": error})


async def park_job(session: AsyncSession, *, job_id: int, error: str) -> None:
    await session.execute(_PARK_JOB, {"id": job_id, "error": error})


async def mark_fanned_out(session: AsyncSession, *, job_id: int) -> None:
    await session.execute(_MARK_FANNED_OUT, {"id": job_id})


async def create_deliveries(
    session: AsyncSession,
    *,
    job_id: int,
    user_ids: Sequence[str],
    lease: float,
    owned: bool,
    badges: Mapping[str, int] | None = None,
) -> set[str]:
    """One INSERT ... SELECT for every active device of these users (with each user's badge,
    if given, through `unnest`); returns who had one."""
    if not user_ids:
        return set()
    result = await session.execute(
        _CREATE_DELIVERIES, _delivery_params(job_id, user_ids, lease, owned=owned, badges=badges)
    )
    return set(result.scalars())


async def create_page(
    session: AsyncSession,
    *,
    job_id: int,
    user_ids: Sequence[str],
    lease: float,
    last: bool,
    badges: Mapping[str, int] | None = None,
) -> set[str]:
    """A fan-out page: the deliveries of these users' active devices, and the job's lease
    renewed (or the job marked fanned out when `last`), in one statement. Returns who had one."""
    params = _delivery_params(job_id, user_ids, lease, owned=False, badges=badges)
    result = await session.execute(_CREATE_PAGE, {**params, "last": last})
    return set(result.scalars())


def _delivery_params(
    job_id: int,
    user_ids: Sequence[str],
    lease: float,
    *,
    owned: bool,
    badges: Mapping[str, int] | None,
) -> dict[str, object]:
    badges = badges or {}
    return {
        "job_id": job_id,
        "user_ids": list(user_ids),
        "lease": lease,
        "owned": owned,
        "badge_users": list(badges),
        "badges": list(badges.values()),
    }


async def cancel_pending_for_devices(
    session: AsyncSession, *, device_ids: Sequence[int], reason: str
) -> int:
    if not device_ids:
        return 0
    result = await session.execute(_CANCEL_FOR_DEVICES, {"ids": list(device_ids), "reason": reason})
    return result.rowcount or 0
