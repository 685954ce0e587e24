"""Push functions other packages call (they never touch the push tables themselves)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.conversations.read_state import ReadMove
from backend.app.messenger.push import clear_on_read, repository, stats


async def stop_pending_pushes(
    session: AsyncSession, *, device_ids: Sequence[int], reason: str
) -> int:
    """Every push still pending for these devices ends as `failed` (e.g. the token moved to
    another user: nothing meant for its previous owner may reach it). Returns how many."""
    return await repository.cancel_pending_for_devices(
        session, device_ids=device_ids, reason=reason
    )


async def notification_push_counts(
    session: AsyncSession, *, notification_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[str, int]]:
    """Admin history: per notification, its device pushes by outcome (one grouped query)."""
    return await stats.notification_counts(session, notification_ids=notification_ids)


async def delivery_buckets(
    session: AsyncSession, *, since: datetime, until: datetime, bucket: stats.Bucket
) -> list[dict[str, Any]]:
    """`/admin/push/stats`: every bucket from `since` to `until`, message and notification
    pushes alike, raw deliveries and rolled-up statistics together."""
    start = _truncate(since, bucket)
    rows = await stats.buckets(session, since=start, until=until, bucket=bucket)
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    by_start: dict[datetime, dict[str, dict[str, int]]] = {}
    while start < until:
        by_start[start] = {}
        start += step
    for bucket_start, provider, outcome, count in rows:
        providers = by_start.setdefault(bucket_start.astimezone(UTC), {})
        providers.setdefault(provider, {})[outcome] = count
    return [{"start": s, "by_provider": p} for s, p in sorted(by_start.items())]


def _truncate(moment: datetime, bucket: stats.Bucket) -> datetime:
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if bucket == "day" else moment


async def purge_finished_work(session: AsyncSession, *, retention_days: int, batch: int) -> int:
    """One batch of the daily pass: roll old finished push work up into the statistics, then
    delete it (same transaction). Returns how many jobs went."""
    return await stats.roll_up_and_purge(session, retention_days=retention_days, batch=batch)


async def clear_after_read(session: AsyncSession, *, move: ReadMove | None) -> int | None:
    """In the read's transaction: queue the silent clear-on-read push for the reader's devices
    that pushes of the passed messages reached. Returns the job to kick after the commit."""
    if move is None:
        return None
    return await clear_on_read.enqueue_clear(session, move=move)
