"""The fan-out of one push job: lease it, write its deliveries page by page, or park it.

Called by the dispatcher, which sends each page's deliveries as soon as it is written.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.config import Settings
from backend.app.db import autocommit
from backend.app.messenger.push import clear_fanout, clear_on_read, repository
from backend.app.messenger.push.fanout import FanOutPolicy
from backend.app.messenger.push.repository import JobRow
from backend.app.messenger.push.retry import RetryPolicy
from backend.app.messenger.push.vocabulary import PushKind
from backend.app.metrics import PUSH_JOBS_PARKED
from backend.app.redis_client import RedisClient

log = logging.getLogger(__name__)

# The first page is PUSH_FANOUT_BATCH_SIZE recipients, so the first pushes go out at once; each
# next one doubles, up to this many times the first. While the earlier pages' sends keep the
# event loop busy every round trip of a page waits its turn, and 100,000 recipients in pages
# of 1,000 (~10 round trips each) were written at only ~700 recipients/s, slower than they
# were sent; pages of up to 8,000 keep the fan-out ahead, and each page's one writing
# statement well under a second.
PAGE_GROWTH = 8


class JobFanOut:
    def __init__(
        self,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: RedisClient,
        policy: FanOutPolicy,
        retry_policy: RetryPolicy,
        wake: Callable[[], None],
        wake_after: Callable[[float], None],
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.redis = redis
        self.policy = policy
        self.retry_policy = retry_policy
        self.wake = wake  # asks the sweep to run now
        self.wake_after = wake_after  # ... or in so many seconds

    async def _clear(self, job: JobRow) -> None:
        """A clear-on-read job goes to the reader's devices its messages reached (presence and
        skip rules do not apply: it syncs the reader's other devices), with their badge."""
        async with self.sessionmaker.begin() as session:
            fanned_as = await clear_fanout.create_clear_deliveries(session, job_id=job.id)
            await repository.mark_fanned_out(session, job_id=job.id)
        if fanned_as != job.id:
            self.wake()  # the deliveries (if any) belong to another job: the sweep sends

    async def _clear_for_sender(self, job: JobRow) -> None:
        """A reply: clear what its sender passed on their devices. Best effort: a failure
        leaves stale notifications there, never holds up the message's pushes."""
        assert job.sender_id is not None and job.conversation_id is not None
        try:
            async with autocommit(self.sessionmaker) as session:
                queued = await clear_on_read.enqueue_sender_clear(
                    session,
                    job_id=job.id,
                    sender_id=job.sender_id,
                    conversation_id=job.conversation_id,
                )
        except Exception as exc:  # the type only: driver errors can quote the values
            log.warning("clear-on-read for a reply's sender failed: %s", type(exc).__name__)
            return
        if queued is not None:
            self.wake()

    async def run(self, job_id: int | None, page_written: Callable[[int], None]) -> bool:
        """Fan out one job (this one, or the oldest nobody holds). False if there was none.

        No row lock is held across steps: lease the job (committed); then page by page (the
        first of `PUSH_FANOUT_BATCH_SIZE` recipients, then growing), read them and then their
        presence, and create their deliveries (committed, the lease renewed; `page_written`
        lets them go out at once). The last page marks the job done. A fan-out cut short is redone from the start
        by whoever takes the job over: deliveries already written are kept, never doubled."""
        lease = float(self.settings.push_lease_seconds)
        async with autocommit(self.sessionmaker) as session:
            job = await repository.claim_job(session, job_id=job_id, lease=lease)
        if job is None:
            return False
        try:
            if job.fanout_attempts > self.settings.push_max_attempts:
                raise _GiveUp(f"fan-out failed {job.fanout_attempts - 1} times")
            if job.kind is PushKind.CLEAR:
                await self._clear(job)
                page_written(job.id)
                return True
            if job.sender_passed:
                await self._clear_for_sender(job)
            after: str | None = ""
            size = first = self.settings.push_fanout_batch_size
            while after is not None:
                after = await self._page(job, after, lease, size)
                page_written(job.id)
                size = min(size * 2, first * PAGE_GROWTH)
        except _GiveUp as exc:
            await self._park(job.id, str(exc))
        except Exception as exc:
            log.exception("fan-out of push job %s failed (attempt %d)", job.id, job.fanout_attempts)
            delay = self.retry_policy.delay(job.fanout_attempts, None)
            with contextlib.suppress(Exception):
                async with self.sessionmaker.begin() as session:
                    await repository.retry_job_later(
                        session, job_id=job.id, delay=delay, error=type(exc).__name__
                    )
            self.wake_after(delay)
        return True

    async def _page(self, job: JobRow, after: str, lease: float, size: int) -> str | None:
        """One page of recipients: deliveries written, committed. Returns where the next starts."""
        policy = self.policy
        # Reads, then one writing statement, each committed as it ends: no lock waits on
        # this process's event loop, however busy sending the earlier pages keeps it.
        async with autocommit(self.sessionmaker) as session:
            audience = await policy.candidates(session, job, after=after, limit=size)
        audience = await policy.drop_online(self.redis, audience)
        async with autocommit(self.sessionmaker) as session:
            badges = await policy.badges(session, audience)
            with_devices = await repository.create_page(
                session,
                job_id=job.id,
                user_ids=audience.user_ids,
                lease=lease,
                last=audience.next_after is None,
                badges=badges,
            )
        policy.delivery_plan(audience, with_devices)
        return audience.next_after

    async def _park(self, job_id: int, reason: str) -> None:
        log.error("push job %s parked as failed: %s", job_id, reason)
        PUSH_JOBS_PARKED.inc()
        async with self.sessionmaker.begin() as session:
            await repository.park_job(session, job_id=job_id, error=reason)


class _GiveUp(Exception):
    """A job that keeps failing its fan-out: park it instead of blocking the sweep."""
