"""Idle-device pruning: the daily loop and the one-off pass behind `messenger prune`.

A device is idle when the later of its last registration (`updated_at`) and its last
successful push (`last_used_at`) is older than `DEVICE_IDLE_DAYS`; an inactive (dead
token) device goes once it has been inactive for 30 days. Deletes run in bounded
batches, each its own short transaction, so a table of millions is never locked for long.

Only one instance prunes per interval: a PostgreSQL session-level advisory lock (released
by the server if the holder dies) guards the pass, and the time of the last completed
pass lives in `maintenance_runs`, so a restart does not repeat it and an outage does not
skip it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from backend.app.config import Settings
from backend.app.messenger.devices.models import DeviceToken
from backend.app.messenger.devices.service import LAST_ACTIVITY
from backend.app.messenger.notifications.retention import prune_notifications
from backend.app.messenger.pruning_state import MaintenanceRun
from backend.app.messenger.push.service import purge_finished_work
from backend.app.metrics import PRUNED_DEVICES

log = logging.getLogger(__name__)

TASK_NAME = "prune_devices"
# Arbitrary constant naming the pruning lock among the application's advisory locks.
PRUNE_LOCK_KEY = 0x6D65_7373_7072_756E  # "messprun"


async def _delete_in_batches(
    sessionmaker: async_sessionmaker[AsyncSession], condition: object, batch_size: int
) -> int:
    removed = 0
    while True:
        async with sessionmaker.begin() as session:
            batch = (
                select(DeviceToken.id)
                .where(condition)  # type: ignore[arg-type]
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
            result = await session.execute(
                delete(DeviceToken).where(DeviceToken.id.in_(batch.scalar_subquery()))
            )
        removed += result.rowcount
        if result.rowcount < batch_size:
            return removed


async def prune_pass(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    idle_days: int,
    inactive_days: int,
    batch_size: int,
    notification_retention_days: int | None = None,
    push_retention_days: int = 7,
) -> int:
    """Delete idle and long-dead devices (returns how many went), then expired notifications."""
    now = func.now()
    idle = now - timedelta(days=idle_days) > LAST_ACTIVITY
    dead = (~DeviceToken.is_active) & (
        DeviceToken.deactivated_at < now - timedelta(days=inactive_days)
    )
    # Statistics first: deleting a device deletes its deliveries.
    await _purge_finished_push_work(sessionmaker, batch_size, push_retention_days)
    removed = await _delete_in_batches(sessionmaker, idle, batch_size)
    removed += await _delete_in_batches(sessionmaker, dead, batch_size)
    if notification_retention_days is not None:
        await prune_notifications(
            sessionmaker, retention_days=notification_retention_days, batch_size=batch_size
        )
    PRUNED_DEVICES.inc(removed)
    log.info(
        "pruned %d devices (idle > %d days or inactive > %d days)",
        removed,
        idle_days,
        inactive_days,
    )
    return removed


async def _purge_finished_push_work(
    sessionmaker: async_sessionmaker[AsyncSession], batch_size: int, retention_days: int
) -> None:
    """Raw push work is kept `PUSH_DELIVERY_RETENTION_DAYS`; each batch is rolled up into the
    delivery statistics before it goes (push.service), so `/admin/push/stats` outlives it."""
    while True:
        async with sessionmaker.begin() as session:
            removed = await purge_finished_work(
                session, retention_days=retention_days, batch=batch_size
            )
        if removed < batch_size:
            return


async def record_completion(session: AsyncSession) -> None:
    statement = insert(MaintenanceRun).values(name=TASK_NAME, last_completed_at=func.now())
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[MaintenanceRun.name], set_={"last_completed_at": func.now()}
        )
    )


async def run_if_due(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> int | None:
    """One scheduling decision: prune if no other instance is and the interval has passed.

    Returns the number pruned, or None when this instance did not prune.
    """
    async with engine.connect() as lock_connection:
        got_lock = (
            await lock_connection.execute(select(func.pg_try_advisory_lock(PRUNE_LOCK_KEY)))
        ).scalar_one()
        await lock_connection.commit()
        if not got_lock:
            return None
        try:
            async with sessionmaker() as session:
                due = (
                    await session.execute(
                        select(
                            func.coalesce(
                                func.max(MaintenanceRun.last_completed_at)
                                <= func.now() - timedelta(seconds=settings.prune_interval_seconds),
                                True,
                            )
                        ).where(MaintenanceRun.name == TASK_NAME)
                    )
                ).scalar_one()
            if not due:
                return None
            removed = await prune_pass(
                sessionmaker,
                idle_days=settings.device_idle_days,
                inactive_days=settings.inactive_device_retention_days,
                batch_size=settings.prune_batch_size,
                notification_retention_days=settings.notification_retention_days,
                push_retention_days=settings.push_delivery_retention_days,
            )
            async with sessionmaker.begin() as session:
                await record_completion(session)
            return removed
        finally:
            await lock_connection.execute(select(func.pg_advisory_unlock(PRUNE_LOCK_KEY)))
            await lock_connection.commit()


async def prune_loop(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """Check often, prune once per interval. Errors are logged and retried at the next check."""
    check_every = min(settings.prune_interval_seconds, 60)
    while True:
        try:
            await run_if_due(engine, sessionmaker, settings)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("pruning pass failed; will retry")
        await asyncio.sleep(check_every * random.uniform(0.8, 1.0))
