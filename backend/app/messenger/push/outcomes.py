"""Recording push outcomes: one statement per batch, retried until the lease runs out (a lost
outcome would mean a second push once another worker takes the deliveries over)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.db import autocommit
from backend.app.messenger.push import clear_fanout
from backend.app.messenger.push import delivery_repository as repository
from backend.app.messenger.push.delivery_repository import RecordedAttempt
from backend.app.messenger.push.vocabulary import DeliveryOutcome, DeliveryStatus, PushKind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Attempted:
    record: RecordedAttempt
    provider: str
    outcome: DeliveryOutcome | None  # None when nothing was attempted (nothing to report)
    kind: PushKind | None = None


async def record_outcomes(
    maker: async_sessionmaker[AsyncSession],
    attempts: list[Attempted],
    *,
    claimed_at: datetime,
    lease_end: float,
    wake_after: Callable[[float], None],
) -> None:
    """Record a batch of outcomes; wake the sweep for the deliveries left pending."""
    records = [a.record for a in attempts]
    clears = [a.record for a in attempts if a.kind is PushKind.CLEAR]
    pause = 0.05
    while True:
        try:
            if clears:  # a clear push waiting behind one of these may go now (same commit)
                async with maker.begin() as session:
                    await repository.record(session, attempts=records, claimed_at=claimed_at)
                    await clear_fanout.release_waiting(
                        session,
                        job_ids=[r.job_id for r in clears],
                        device_ids=[r.device_id for r in clears],
                    )
            else:
                async with autocommit(maker) as session:  # one statement
                    await repository.record(session, attempts=records, claimed_at=claimed_at)
            break
        except (DBAPIError, InterfaceError, OperationalError, OSError) as exc:
            if time.monotonic() + pause >= lease_end:
                log.error("could not record %d push outcomes within the lease", len(records))
                raise
            log.warning("recording push outcomes failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)
    pending = [r.delay for r in records if r.status is DeliveryStatus.PENDING]
    if clears:
        pending.append(0.0)
    if pending:
        wake_after(min(pending))
