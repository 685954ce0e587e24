"""The background loop (every worker process): materialise due notifications batch by batch and,
after each batch commits, tell the recipients' open WebSocket connections."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.config import Settings
from backend.app.db import autocommit
from backend.app.messenger import presence
from backend.app.messenger.notifications import materialize
from backend.app.messenger.notifications.inbox import entry_json
from backend.app.messenger.notifications.schemas import InboxEntryOut
from backend.app.messenger.realtime.broadcast import publish_per_user
from backend.app.redis_client import RedisClient
from backend.app.waiting import sleep_until_set

log = logging.getLogger(__name__)


async def announce(redis: RedisClient, batch: materialize.Batch) -> None:
    """`notification.new` to the connected recipients only: one presence round trip for the
    batch, one pipelined publish. Best effort: the inbox has the entry either way."""
    try:
        online = await presence.online_user_ids(redis, [user_id for _, user_id in batch.inbox])
        created_at = batch.created_at.astimezone(UTC)  # serialised as the API does ("Z")
        frames = [
            (
                user_id,
                {
                    "type": "notification.new",
                    "notification": InboxEntryOut.model_validate(
                        entry_json(entry_id, batch.notification, created_at, None)
                    ).model_dump(mode="json"),
                },
            )
            for entry_id, user_id in batch.inbox
            if user_id in online
        ]
        await publish_per_user(redis, frames)
    except Exception:
        log.warning("could not announce notification %s to connected users", batch.notification.id)


async def run_batch(
    sessionmaker: async_sessionmaker[AsyncSession], redis: RedisClient, *, settings: Settings
) -> bool:
    """One batch in its own transaction; True when there was work (so try again at once).

    Whether anything is due is asked first, outside a transaction: the idle poll every sweep
    then holds no lock until this process's event loop gets round to its COMMIT (a second
    and more while the same process was busy sending a large fan-out)."""
    async with autocommit(sessionmaker) as session:
        if not await materialize.any_due(session):
            return False
    async with sessionmaker.begin() as session:
        batch = await materialize.next_batch(
            session, batch_size=settings.notification_batch_size, settings=settings
        )
    if batch is None:
        return False
    if batch.inbox:
        await announce(redis, batch)  # after the commit: never announce what could roll back
    return True


# The loops running in this process: `kick()` wakes them when this process accepted work, so a
# send starts at once instead of at the next sweep (other processes still find it by sweeping).
_wakeups: set[asyncio.Event] = set()


def kick() -> None:
    """Call after the accepting transaction committed (a wake-up before would find nothing)."""
    for wakeup in _wakeups:
        wakeup.set()


async def notification_loop(
    sessionmaker: async_sessionmaker[AsyncSession], redis: RedisClient, settings: Settings
) -> None:
    """Drain due work, then sleep one sweep (or until kicked). Scheduled sends are found by the
    same query, so a restart loses nothing: the state lives in the `notifications` rows."""
    wakeup = asyncio.Event()
    _wakeups.add(wakeup)
    try:
        while True:
            wakeup.clear()
            try:
                while await run_batch(sessionmaker, redis, settings=settings):
                    pass  # each batch awaits the database, so other tasks run in between
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notification batch failed; will retry")
            await sleep_until_set(wakeup, settings.notification_sweep_interval_seconds)
    finally:
        _wakeups.discard(wakeup)
