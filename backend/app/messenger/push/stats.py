"""Delivery statistics that outlive the raw rows.

Finished `push_deliveries` are kept `PUSH_DELIVERY_RETENTION_DAYS`; the daily pruning pass then
rolls each batch of old jobs up into `push_stats_hourly` (hour, provider, kind, outcome) and,
for notification-center pushes, `push_notification_outcomes`, and deletes the jobs (their
deliveries cascade) in the SAME transaction: a row is counted either raw or rolled up, never
both, never neither. Statistics read both sides with one query each.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.push.vocabulary import DeliveryStatus

Bucket = Literal["hour", "day"]

_ROLL_UP_AND_PURGE = text(
    """
    WITH old AS (
        SELECT id, kind, notification_id FROM push_jobs
        WHERE created_at < now() - make_interval(days => :days)
          AND (fanned_out_at IS NOT NULL OR failed_at IS NOT NULL)
        ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED
    ), finished AS (
        SELECT date_trunc('hour', d.finished_at, 'UTC') AS hour, t.provider, o.kind,
               d.status AS outcome, o.notification_id
        FROM push_deliveries d
        JOIN old o ON o.id = d.job_id
        JOIN device_tokens t ON t.id = d.device_id
        WHERE d.finished_at IS NOT NULL
    ), hourly AS (
        INSERT INTO push_stats_hourly (hour, provider, kind, outcome, count)
        SELECT hour, provider, kind, outcome, count(*) FROM finished
        GROUP BY hour, provider, kind, outcome
        ON CONFLICT (hour, provider, kind, outcome)
        DO UPDATE SET count = push_stats_hourly.count + EXCLUDED.count
    ), per_notification AS (
        INSERT INTO push_notification_outcomes (notification_id, outcome, count)
        SELECT notification_id, outcome, count(*) FROM finished
        WHERE notification_id IS NOT NULL
        GROUP BY notification_id, outcome
        ON CONFLICT (notification_id, outcome)
        DO UPDATE SET count = push_notification_outcomes.count + EXCLUDED.count
    ), gone AS (
        DELETE FROM push_jobs WHERE id IN (SELECT id FROM old) RETURNING id
    )
    SELECT count(*) FROM gone
    """
)

_BUCKETS = text(
    """
    SELECT start, provider, outcome, sum(n)::bigint AS n FROM (
        SELECT date_trunc(:bucket, d.finished_at, 'UTC') AS start, t.provider,
               d.status AS outcome, count(*) AS n
        FROM push_deliveries d JOIN device_tokens t ON t.id = d.device_id
        WHERE d.finished_at >= :since AND d.finished_at < :until
        GROUP BY 1, 2, 3
        UNION ALL
        SELECT date_trunc(:bucket, hour, 'UTC'), provider, outcome, sum(count)
        FROM push_stats_hourly
        WHERE hour >= :since AND hour < :until
        GROUP BY 1, 2, 3
    ) AS both_sides
    GROUP BY start, provider, outcome
    ORDER BY start
    """
)

_NOTIFICATION_COUNTS = text(
    """
    SELECT notification_id, outcome, sum(n)::bigint AS n FROM (
        SELECT j.notification_id, d.status AS outcome, count(*) AS n
        FROM push_jobs j JOIN push_deliveries d ON d.job_id = j.id
        WHERE j.notification_id = ANY(CAST(:ids AS uuid[]))
        GROUP BY 1, 2
        UNION ALL
        SELECT j.notification_id, CASE WHEN j.failed_at IS NULL THEN 'pending' ELSE 'failed' END,
               sum(cardinality(j.recipient_ids))
        FROM push_jobs j
        WHERE j.notification_id = ANY(CAST(:ids AS uuid[])) AND j.fanned_out_at IS NULL
        GROUP BY 1, 2
        UNION ALL
        SELECT notification_id, outcome, sum(count) FROM push_notification_outcomes
        WHERE notification_id = ANY(CAST(:ids AS uuid[]))
        GROUP BY 1, 2
    ) AS both_sides
    GROUP BY notification_id, outcome
    """
)

# How the admin history names a delivery's status (an unconfigured provider is a failure).
_ADMIN_OUTCOME = {
    DeliveryStatus.PENDING: "pending",
    DeliveryStatus.DELIVERED: "delivered",
    DeliveryStatus.TOKEN_DEAD: "token_dead",
    DeliveryStatus.FAILED: "failed",
    DeliveryStatus.PROVIDER_NOT_CONFIGURED: "failed",
}


async def roll_up_and_purge(session: AsyncSession, *, retention_days: int, batch: int) -> int:
    """One batch: aggregate old finished work, then delete it. Returns how many jobs went."""
    result = await session.execute(_ROLL_UP_AND_PURGE, {"days": retention_days, "batch": batch})
    return int(result.scalar_one())


async def buckets(
    session: AsyncSession, *, since: datetime, until: datetime, bucket: Bucket
) -> list[tuple[datetime, str, str, int]]:
    """(bucket start, provider, outcome, count) for deliveries finished in [since, until)."""
    rows = await session.execute(_BUCKETS, {"since": since, "until": until, "bucket": bucket})
    return [(r.start, r.provider, r.outcome, int(r.n)) for r in rows]


async def notification_counts(
    session: AsyncSession, *, notification_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[str, int]]:
    """Per notification: device pushes delivered / token_dead / failed / pending. Recipients of
    a batch not fanned out yet count as pending (failed if its fan-out was parked)."""
    counts: dict[uuid.UUID, dict[str, int]] = defaultdict(
        lambda: {"delivered": 0, "token_dead": 0, "failed": 0, "pending": 0}
    )
    if not notification_ids:
        return {}
    rows = await session.execute(_NOTIFICATION_COUNTS, {"ids": notification_ids})
    for row in rows:
        counts[row.notification_id][_ADMIN_OUTCOME[DeliveryStatus(row.outcome)]] += int(row.n)
    return dict(counts)
