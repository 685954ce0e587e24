"""The digest loop every background process runs: drain due batches, then sleep a while."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.config import Settings
from backend.app.messenger.digest.service import process_due_batch, purge_old_runs
from backend.app.messenger.digest.sources import UnreadSource, default_source
from backend.app.messenger.email.service import purge_finished

log = logging.getLogger(__name__)
HOUSEKEEPING_EVERY_SECONDS = 3600


async def run_due_digests(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    source: UnreadSource,
    on_queued: Callable[[], None] = lambda: None,
) -> int:
    """Process due users batch by batch (each its own transaction); returns emails queued."""
    queued = 0
    while True:
        async with sessionmaker.begin() as session:
            batch = await process_due_batch(session, settings, source=source, now=datetime.now(UTC))
        if batch.email_ids:
            queued += len(batch.email_ids)
            on_queued()
        if batch.claimed < settings.digest_batch_size:
            return queued


async def housekeeping(sessionmaker: async_sessionmaker[AsyncSession], *, batch_size: int) -> None:
    """Drop old digest records and finished emails, one short transaction per batch."""
    for purge in (purge_old_runs, purge_finished):
        while True:
            async with sessionmaker.begin() as session:
                removed = await purge(session, limit=batch_size)
            if removed < batch_size:
                break


async def digest_loop(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    on_queued: Callable[[], None],
    source: UnreadSource | None = None,
) -> None:
    source = source or default_source()
    last_housekeeping = -float("inf")
    while True:
        try:
            await run_due_digests(sessionmaker, settings, source=source, on_queued=on_queued)
            if time.monotonic() - last_housekeeping >= HOUSEKEEPING_EVERY_SECONDS:
                await housekeeping(sessionmaker, batch_size=settings.digest_batch_size)
                last_housekeeping = time.monotonic()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("digest pass failed; will retry")
        await asyncio.sleep(settings.digest_check_interval_seconds * random.uniform(0.8, 1.0))
