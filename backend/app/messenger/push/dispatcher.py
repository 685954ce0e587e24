"""The push dispatcher only schedules: start, stop, kick a job, sweep, push now.

How a push travels is described once, in the README ("How a push travels").
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.config import Settings
from backend.app.messenger.push import delivery_repository, repository
from backend.app.messenger.push.apps import Transport, configured_apps
from backend.app.messenger.push.delivery import DeliveryEngine, DeviceReport
from backend.app.messenger.push.fanout import FanOutPolicy
from backend.app.messenger.push.fanout_job import JobFanOut
from backend.app.messenger.push.outbox import enqueue_direct_push
from backend.app.messenger.push.payloads import Notification
from backend.app.messenger.push.providers.registry import ProviderRegistry
from backend.app.messenger.push.retry import RetryPolicy
from backend.app.messenger.push.vocabulary import DeliveryOutcome, PushKind
from backend.app.messenger.push.wake import WakeSignal
from backend.app.metrics import count_push
from backend.app.redis_client import RedisClient
from backend.app.waiting import sleep_until_set

log = logging.getLogger(__name__)

MAX_CONCURRENT_JOBS = 8
STALE_CHECK_SECONDS = 5.0  # how often the sweep fails expired / exhausted deliveries


class PushDispatcher:
    def __init__(
        self,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: RedisClient,
        interactive_sessionmaker: async_sessionmaker[AsyncSession] | None = None,
        policy: FanOutPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        # `/devices/test` and `/internal/notify` use the API's pool, not the workers' one.
        self.interactive_sessionmaker = interactive_sessionmaker or sessionmaker
        self.redis = redis
        self.fan_out_policy = policy or FanOutPolicy()
        self.retry_policy = RetryPolicy.from_settings(settings)
        self.registry = ProviderRegistry({})
        self.engine: DeliveryEngine | None = None
        self.job_fan_out = JobFanOut(
            settings=settings,
            sessionmaker=sessionmaker,
            redis=redis,
            policy=self.fan_out_policy,
            retry_policy=self.retry_policy,
            wake=self._wake_now,
            wake_after=self._wake_after,
        )
        self._job_slots = asyncio.Semaphore(MAX_CONCURRENT_JOBS)
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None
        self._runs_workers = False
        self._last_stale_check = 0.0
        self._wake_workers = WakeSignal(redis, on_wake=self._wake.set)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, *, run_workers: bool) -> None:
        self.registry = ProviderRegistry.build(
            configured_apps(self.settings), Transport.from_settings(self.settings)
        )
        self.engine = DeliveryEngine(
            settings=self.settings,
            sessionmaker=self.sessionmaker,
            registry=self.registry,
            policy=self.retry_policy,
            wake_after=self._wake_after,
        )
        self._runs_workers = run_workers
        if run_workers:
            self._sweeper = asyncio.create_task(self._sweep_loop(), name="push-sweep")
            self._wake_workers.listen()

    async def stop(self) -> None:
        await self._wake_workers.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
        pending = [t for t in (self._sweeper, *self._tasks) if t is not None]
        if self._tasks:
            # Let in-flight batches record their outcomes; whatever remains is leased and
            # will be taken over by another instance when the lease runs out.
            await asyncio.wait(self._tasks, timeout=5)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self.registry.close()

    def _wake_now(self) -> None:
        self._wake.set()

    def _wake_after(self, seconds: float) -> None:
        asyncio.get_running_loop().call_later(seconds, self._wake.set)

    # -- entry points ----------------------------------------------------------------------

    def kick(self, job_id: int) -> None:
        """Process a just-committed job now, in the background (never awaited by the sender).

        An API-only process (`messenger serve --no-background`) leaves it to the workers,
        so API nodes never spend their CPU on fan-out, and wakes them (see wake.py).
        """
        if not self._runs_workers:
            self._wake_workers.request()
            return
        task = asyncio.create_task(self._process_job(job_id), name=f"push-job-{job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def push_to_user_now(
        self, *, user_id: str, notification: Notification, kind: PushKind = PushKind.NOTIFICATION
    ) -> list[DeviceReport]:
        """Push to every active device of a user, presence ignored; answer after the first
        attempt per device. Retries continue in the background (the sweep)."""
        assert self.engine is not None
        lease = float(self.settings.push_lease_seconds)
        async with self.interactive_sessionmaker.begin() as session:
            job_id = await enqueue_direct_push(
                session, user_id=user_id, notification=notification, kind=kind
            )
            await repository.create_deliveries(
                session, job_id=job_id, user_ids=[user_id], lease=lease, owned=True
            )
            await repository.mark_fanned_out(session, job_id=job_id)
        reports = await self.engine.deliver(
            job_id=job_id,
            owned=True,
            interactive=True,
            sessionmaker=self.interactive_sessionmaker,
        )
        if any(r.outcome is DeliveryOutcome.RETRY_SCHEDULED for r in reports):
            self._wake.set()
        return reports

    # -- fan-out -----------------------------------------------------------------------------

    async def _process_job(self, job_id: int) -> None:
        async with self._job_slots:
            try:
                await self._fan_out_and_deliver(job_id)
            except Exception:
                log.exception("push job %s failed; the sweep will take it up again", job_id)

    async def _fan_out_and_deliver(self, job_id: int | None) -> bool:
        """Fan out one job (this one, or the oldest nobody holds) while sending the deliveries
        of the pages already written. False if there was no job to take."""
        assert self.engine is not None
        written = asyncio.Event()
        fanned: list[int] = []

        def page_written(job: int) -> None:
            fanned[:] = [job]
            written.set()

        fan_out = asyncio.create_task(self.job_fan_out.run(job_id, page_written))
        try:
            while True:
                waiting = asyncio.ensure_future(written.wait())
                await asyncio.wait({fan_out, waiting}, return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
                if written.is_set():
                    written.clear()
                    await self.engine.deliver(job_id=fanned[0])
                elif fan_out.done():
                    return fan_out.result()
        except BaseException:
            fan_out.cancel()  # its open page rolls back; the job's lease hands it on
            raise

    # -- sweep ---------------------------------------------------------------------------------

    async def _finish_stale(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_stale_check < STALE_CHECK_SECONDS:
            return
        self._last_stale_check = loop.time()
        async with self.sessionmaker.begin() as session:
            finished = await delivery_repository.finish_stale(
                session,
                max_age=float(self.settings.push_max_age_seconds),
                max_attempts=self.settings.push_max_attempts,
            )
        for provider, kind in finished:
            count_push(provider, kind, DeliveryOutcome.FAILED)

    async def _sweep_loop(self) -> None:
        """Takes up work nobody is doing: orphaned jobs, expired leases, due retries."""
        assert self.engine is not None
        while True:
            # Cleared before the sweep, not after: a wake-up during the sweep starts another.
            self._wake.clear()
            try:
                await self._finish_stale()
                while await self._fan_out_and_deliver(None):
                    pass
                await self.engine.deliver()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("push sweep failed; retrying")
            await sleep_until_set(self._wake, self.settings.push_sweep_interval_seconds)
