"""Statements that claim deliveries under a lease and record their outcomes, with typed
rows. One statement per batch, whatever its size. Functions take a session, never commit."""

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
    badge: int | None


@dataclass(frozen=True, slots=True)
class RecordedAttempt:
    job_id: int
    device_id: int
    claimed_attempts: int  # guards the write: a row taken over by another instance is not ours
    status: DeliveryStatus
    delay: float = 0.0
    error: str | None = None
    released: bool = False  # not attempted (lease running out, circuit open): attempt handed back


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
        RETURNING d.job_id, d.device_id, d.attempts, d.badge
    )
    SELECT c.job_id, c.device_id, c.attempts, now() AS claimed_at,
           t.provider, t.app_id, t.token, t.web_push_p256dh, t.web_push_auth,
           t.updated_at AS registered_at, t.is_active,
           j.kind, j.title, j.body, j.data, j.priority, j.created_at AS job_created_at,
           j.message_id, c.badge
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
# Every outcome of a batch and what it says about the devices (used; dead, unless the device
# was re-registered after we claimed its push: it keeps its new life), in one statement, so it
# commits as it ends. Idempotent: a repeat after a lost commit acknowledgement finds the lease
# gone and records nothing (marking a device used or dead twice changes nothing).
_RECORD = text(
    """
    WITH u AS (
        SELECT * FROM unnest(CAST(:job_ids AS bigint[]), CAST(:device_ids AS bigint[]),
                             CAST(:statuses AS text[]), CAST(:delays AS float8[]),
                             CAST(:errors AS text[]), CAST(:released AS bool[]),
                             CAST(:attempts AS int[]))
             AS u(job_id, device_id, status, delay, error, released, attempts)
    ), recorded AS (
        UPDATE push_deliveries AS d SET
            status = u.status,
            attempts = d.attempts - CAST(u.released AS int),
            next_attempt_at = CASE WHEN u.status = 'pending'
                                   THEN now() + make_interval(secs => u.delay)
                                   ELSE d.next_attempt_at END,
            lease_until = NULL,
            last_error = u.error,
            finished_at = CASE WHEN u.status = 'pending' THEN NULL ELSE now() END
        FROM u
        WHERE d.job_id = u.job_id AND d.device_id = u.device_id
          AND d.status = 'pending' AND d.lease_until IS NOT NULL AND d.attempts = u.attempts
    ), devices AS (
        SELECT device_id, bool_or(status = 'delivered') AS used,
               bool_or(status = 'token_dead') AS dead
        FROM u GROUP BY device_id
    )
    UPDATE device_tokens AS t SET
        last_used_at = CASE WHEN devices.used THEN now() ELSE t.last_used_at END,
        is_active = t.is_active AND NOT (devices.dead AND t.updated_at <= :claimed_at),
        deactivated_at = CASE WHEN devices.dead AND t.is_active AND t.updated_at <= :claimed_at
                              THEN now() ELSE t.deactivated_at END
    FROM devices
    WHERE t.id = devices.device_id
      AND (devices.used OR (devices.dead AND t.is_active AND t.updated_at <= :claimed_at))
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
    """Every outcome of a batch, and the used and dead devices: one statement."""
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
            "claimed_at": claimed_at,
        },
    )


async def finish_stale(
    session: AsyncSession, *, max_age: float, max_attempts: int
) -> list[tuple[str, PushKind]]:
    """Fail what is too old or out of attempts; returns (provider, kind) per delivery."""
    rows = await session.execute(_FINISH_STALE, {"max_age": max_age, "max_attempts": max_attempts})
    return [(row.provider, PushKind(row.kind)) for row in rows]
