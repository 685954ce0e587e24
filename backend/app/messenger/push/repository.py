"""Every statement of the push pipeline, with typed rows. Set-based: one statement per step
whatever the number of recipients or devices. Functions take a session and never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.push.vocabulary import DeliveryStatus, Priority, PushKind


@dataclass(frozen=True, slots=True)
class JobRow:
    id: int
    kind: PushKind
    conversation_id: uuid.UUID | None
    sender_id: str | None
    target_user_id: str | None
    fanout_attempts: int


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    job_id: int
    device_id: int
    attempts: int  # counting the one just claimed
    claimed_at: datetime
    provider: str
    app_id: str
    token: str
    web_push_p256dh: str | None
    web_push_auth: str | None
    registered_at: datetime
    is_active: bool
    kind: PushKind
    title: str
    body: str
    data: dict[str, str]
    priority: Priority
    job_created_at: datetime
    message_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class RecordedAttempt:
    job_id: int
    device_id: int
    claimed_attempts: int  # guards the write: a row taken over by another instance is not ours
    status: DeliveryStatus
    delay: float = 0.0
    error: str | None = None
    released: bool = False  # not attempted (lease running out, circuit open): attempt handed back


_CLAIM_JOB = """
    UPDATE push_jobs SET fanout_lease_until = now() + make_interval(secs => :lease),
                         fanout_attempts = fanout_attempts + 1
    WHERE id = (
        SELECT id FROM push_jobs
        WHERE fanned_out_at IS NULL AND failed_at IS NULL
          AND (fanout_lease_until IS NULL OR fanout_lease_until < now()) AND {condition}
        ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED
    )
    RETURNING id, kind, conversation_id, sender_id, target_user_id, fanout_attempts
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
_CREATE_DELIVERIES = text(
    """
    WITH targets AS (
        SELECT id, user_id FROM device_tokens
        WHERE user_id = ANY(CAST(:user_ids AS varchar[])) AND is_active
    ), created AS (
        INSERT INTO push_deliveries (job_id, device_id, lease_until)
        SELECT :job_id, id, CASE WHEN :owned THEN now() + make_interval(secs => :lease) END
        FROM targets
        ON CONFLICT DO NOTHING
    )
    SELECT DISTINCT user_id FROM targets
    """
)
_CLAIM = """
    WITH due AS (
        SELECT job_id, device_id FROM push_deliveries
        WHERE status = 'pending' AND {condition}
        ORDER BY next_attempt_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE push_deliveries AS d
        SET lease_until = now() + make_interval(secs => :lease), attempts = d.attempts + 1
        FROM due WHERE d.job_id = due.job_id AND d.device_id = due.device_id
        RETURNING d.job_id, d.device_id, d.attempts
    )
    SELECT c.job_id, c.device_id, c.attempts, now() AS claimed_at,
           t.provider, t.app_id, t.token, t.web_push_p256dh, t.web_push_auth,
           t.updated_at AS registered_at, t.is_active,
           j.kind, j.title, j.body, j.data, j.priority, j.created_at AS job_created_at,
           j.message_id
    FROM claimed c
    JOIN device_tokens t ON t.id = c.device_id
    JOIN push_jobs j ON j.id = c.job_id
"""
_DUE = (
    "next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now()) "
    "AND attempts < :max_attempts"
)
_CLAIM_DUE = text(_CLAIM.format(condition=_DUE))
_CLAIM_DUE_OF_JOB = text(_CLAIM.format(condition=f"job_id = :job_id AND {_DUE}"))
# Deliveries created already leased to this process (the synchronous /devices/test path).
_CLAIM_OWNED = text(_CLAIM.format(condition="job_id = :job_id AND attempts = 0"))
# Idempotent: a repeat after a lost commit acknowledgement finds the lease gone and does nothing.
_RECORD = text(
    """
    UPDATE push_deliveries AS d SET
        status = u.status,
        attempts = d.attempts - CAST(u.released AS int),
        next_attempt_at = CASE WHEN u.status = 'pending'
                               THEN now() + make_interval(secs => u.delay) ELSE d.next_attempt_at END,
        lease_until = NULL,
        last_error = u.error,
        finished_at = CASE WHEN u.status = 'pending' THEN NULL ELSE now() END
    FROM unnest(CAST(:job_ids AS bigint[]), CAST(:device_ids AS bigint[]), CAST(:statuses AS text[]),
                CAST(:delays AS float8[]), CAST(:errors AS text[]), CAST(:released AS bool[]),
                CAST(:attempts AS int[]))
         AS u(job_id, device_id, status, delay, error, released, attempts)
    WHERE d.job_id = u.job_id AND d.device_id = u.device_id
      AND d.status = 'pending' AND d.lease_until IS NOT NULL AND d.attempts = u.attempts
    """
)
_MARK_USED = text(
    "UPDATE device_tokens SET last_used_at = now() WHERE id = ANY(CAST(:ids AS bigint[]))"
)
# A device re-registered after we claimed its push keeps its (new) life.
_MARK_DEAD = text(
    """
    UPDATE device_tokens SET is_active = false, deactivated_at = now()
    WHERE id = ANY(CAST(:ids AS bigint[])) AND is_active AND updated_at <= :claimed_at
    """
)
# Pending work that can no longer go out: too old, or out of attempts (a crash after the last).
_FINISH_STALE = text(
    """
    UPDATE push_deliveries AS d SET
        status = 'failed', lease_until = NULL, finished_at = now(),
        last_error = CASE WHEN j.created_at < now() - make_interval(secs => :max_age)
                          THEN 'expired' ELSE 'attempts exhausted' END
    FROM push_jobs j, device_tokens t
    WHERE j.id = d.job_id AND t.id = d.device_id AND d.status = 'pending'
      AND (d.lease_until IS NULL OR d.lease_until < now())
      AND (d.attempts >= :max_attempts OR j.created_at < now() - make_interval(secs => :max_age))
    RETURNING t.provider, j.kind
    """
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
        fanout_attempts=row.fanout_attempts,
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
) -> set[str]:
    """One INSERT ... SELECT for every active device of these users; returns who had one."""
    if not user_ids:
        return set()
    result = await session.execute(
        _CREATE_DELIVERIES,
        {"job_id": job_id, "user_ids": list(user_ids), "lease": lease, "owned": owned},
    )
    return set(result.scalars())


async def claim_deliveries(
    session: AsyncSession,
    *,
    job_id: int | None,
    owned: bool,
    limit: int,
    lease: float,
    max_attempts: int,
) -> list[ClaimedDelivery]:
    statement = _CLAIM_OWNED if owned else _CLAIM_DUE if job_id is None else _CLAIM_DUE_OF_JOB
    params: dict[str, Any] = {
        "job_id": job_id,
        "limit": limit,
        "lease": lease,
        "max_attempts": max_attempts,
    }
    rows = (await session.execute(statement, params)).mappings().all()
    return [
        ClaimedDelivery(
            **{
                **row,
                "kind": PushKind(row["kind"]),
                "priority": Priority(row["priority"]),
            }
        )
        for row in rows
    ]


async def record(
    session: AsyncSession, *, attempts: Sequence[RecordedAttempt], claimed_at: datetime
) -> None:
    """Every outcome of a batch in one UPDATE, plus one each for used and dead devices."""
    await session.execute(
        _RECORD,
        {
            "job_ids": [a.job_id for a in attempts],
            "device_ids": [a.device_id for a in attempts],
            "statuses": [a.status.value for a in attempts],
            "delays": [a.delay for a in attempts],
            "errors": [a.error for a in attempts],
            "released": [a.released for a in attempts],
            "attempts": [a.claimed_attempts for a in attempts],
        },
    )
    delivered = [a.device_id for a in attempts if a.status is DeliveryStatus.DELIVERED]
    dead = [a.device_id for a in attempts if a.status is DeliveryStatus.TOKEN_DEAD]
    if delivered:
        await session.execute(_MARK_USED, {"ids": delivered})
    if dead:
        await session.execute(_MARK_DEAD, {"ids": dead, "claimed_at": claimed_at})


async def finish_stale(
    session: AsyncSession, *, max_age: float, max_attempts: int
) -> list[tuple[str, PushKind]]:
    """Fail what is too old or out of attempts; returns (provider, kind) per delivery."""
    rows = await session.execute(_FINISH_STALE, {"max_age": max_age, "max_attempts": max_attempts})
    return [(row.provider, PushKind(row.kind)) for row in rows]


async def cancel_pending_for_devices(
    session: AsyncSession, *, device_ids: Sequence[int], reason: str
) -> int:
    if not device_ids:
        return 0
    result = await session.execute(_CANCEL_FOR_DEVICES, {"ids": list(device_ids), "reason": reason})
    return result.rowcount or 0
