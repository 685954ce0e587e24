"""Durable push delivery: fan-out, claiming, sending and recording, set-based throughout.

Life of a push (see push/models.py for the tables):
1. The message handler commits the message and its `push_jobs` row together, then calls
   `kick(job_id)`, which processes that job at once in a background task.
2. Fan-out, in one transaction holding the job's row lock: one query for every recipient's
   settings, one Redis round trip for their presence, one INSERT ... SELECT that creates a
   delivery per active device of each offline recipient.
3. Delivery: lanes claim due deliveries in batches under a lease, send them concurrently
   (bounded per provider, so a slow provider never starves the others), and record every
   outcome of a batch in one UPDATE, plus one UPDATE each for delivered and dead devices.
4. A sweep loop in every worker picks up whatever nobody is handling: jobs never fanned
   out (a crash before step 2 committed), deliveries whose lease expired (a crash mid-send)
   and retries that came due. Retries back off exponentially with jitter, honour
   Retry-After, and end as `failed` after `PUSH_MAX_ATTEMPTS`.

Delivery is at least once: a process killed between a provider's answer and the recording
of it will see that device pushed again by another instance. The collapse id (stable per
job) makes the device replace, not duplicate, such a notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import ssl
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.config import Settings
from backend.app.messenger.presence import online_user_ids
from backend.app.messenger.push.outbox import enqueue_direct_push
from backend.app.messenger.push.payloads import Notification
from backend.app.messenger.push.providers.base import Outcome, PushProvider, SendResult, Target
from backend.app.metrics import PUSH_LATENCY, PUSH_SKIPPED, PUSHES

log = logging.getLogger(__name__)

PROVIDER_NAMES = ("fcm", "apns", "web_push")
CLAIM_LANES = 3
RECORD_EVERY = 50  # outcomes per recording transaction
RECORD_SECONDS = 0.05  # ...or at least this often while a batch is in flight
MAX_CONCURRENT_JOBS = 8

# Effective mute: a future `muted_until` mutes; `muted` without an end mutes; a past end does not.
_RECIPIENTS = text(
    """
    SELECT user_id,
           COALESCE(muted_until > now(), muted) AS muted,
           push_enabled
    FROM conversation_participants
    WHERE conversation_id = :conversation_id AND user_id <> :sender_id
    """
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
           t.provider, t.token, t.web_push_p256dh, t.web_push_auth, t.updated_at, t.is_active,
           j.title, j.body, j.data, j.priority, j.created_at AS job_created_at, j.message_id
    FROM claimed c
    JOIN device_tokens t ON t.id = c.device_id
    JOIN push_jobs j ON j.id = c.job_id
"""
_DUE = "next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())"
_CLAIM_DUE = text(_CLAIM.format(condition=_DUE))
_CLAIM_DUE_OF_JOB = text(_CLAIM.format(condition=f"job_id = :job_id AND {_DUE}"))
# Deliveries created already leased to this process (the synchronous /devices/test path).
_CLAIM_OWNED = text(_CLAIM.format(condition="job_id = :job_id AND attempts = 0"))
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
                CAST(:delays AS float8[]), CAST(:errors AS text[]), CAST(:released AS bool[]))
         AS u(job_id, device_id, status, delay, error, released)
    WHERE d.job_id = u.job_id AND d.device_id = u.device_id
    """
)
_MARK_FANNED_OUT = text("UPDATE push_jobs SET fanned_out_at = now() WHERE id = :id")
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


@dataclass(frozen=True, slots=True)
class DeviceReport:
    device_token_id: int
    provider: str
    outcome: str  # delivered | token_dead | retry_scheduled | failed | provider_not_configured


@dataclass(slots=True)
class _Attempt:
    job_id: int
    device_id: int
    provider: str
    status: str  # what the delivery row becomes
    outcome: str | None  # metric/report label; None when nothing was attempted
    delay: float = 0.0
    error: str | None = None
    released: bool = False  # not attempted: lease about to run out, hand it back untouched


def collapse_id(job_id: int, message_id: Any) -> str:
    """Stable per push, ≤ 32 base64url characters (Web Push `Topic`, APNs collapse id, FCM tag)."""
    if message_id is not None:
        return message_id.hex
    return hashlib.sha256(f"push-job:{job_id}".encode()).hexdigest()[:32]


class PushDispatcher:
    def __init__(
        self, *, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.redis = redis
        self.providers: dict[str, PushProvider | None] = dict.fromkeys(PROVIDER_NAMES)
        self._http: aiohttp.ClientSession | None = None
        self._limits = {
            name: asyncio.Semaphore(settings.push_concurrency_per_provider)
            for name in PROVIDER_NAMES
        }
        self._job_slots = asyncio.Semaphore(MAX_CONCURRENT_JOBS)
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None
        self._runs_workers = False

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, *, run_workers: bool) -> None:
        ssl_context = ssl.create_default_context()
        if self.settings.web_push_ca_file:
            ssl_context.load_verify_locations(cafile=self.settings.web_push_ca_file)
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                ssl=ssl_context,
                limit=self.settings.push_concurrency_per_provider * 2,
                ttl_dns_cache=300,
            )
        )
        self.providers = {name: self._create_provider(name) for name in PROVIDER_NAMES}
        log.info(
            "push providers: %s",
            ", ".join(f"{n}={'on' if p else 'off'}" for n, p in self.providers.items()),
        )
        self._runs_workers = run_workers
        if run_workers:
            self._sweeper = asyncio.create_task(self._sweep_loop(), name="push-sweep")

    def _create_provider(self, name: str) -> PushProvider | None:
        settings = self.settings
        assert self._http is not None
        try:
            if name == "fcm" and settings.fcm_configured:
                from backend.app.messenger.push.providers.fcm import FcmProvider

                return FcmProvider(settings, self._http)
            if name == "apns" and settings.apns_configured:
                from backend.app.messenger.push.providers.apns import ApnsProvider

                return ApnsProvider(settings)
            if name == "web_push" and settings.web_push_configured:
                from backend.app.messenger.push.providers.webpush import WebPushProvider

                return WebPushProvider(settings, self._http)
        except Exception:
            log.exception("%s is configured but cannot start; its devices will not be pushed", name)
        return None

    async def stop(self) -> None:
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
        for provider in self.providers.values():
            if provider is not None:
                await provider.close()
        if self._http is not None:
            await self._http.close()

    # -- entry points ----------------------------------------------------------------------

    def kick(self, job_id: int) -> None:
        """Process a just-committed job now, in the background (never awaited by the sender).

        An API-only process (`messenger serve --no-background`) leaves it to the workers'
        sweep, so API nodes never spend their CPU on fan-out.
        """
        if not self._runs_workers:
            return
        task = asyncio.create_task(self._process_job(job_id), name=f"push-job-{job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def push_to_user_now(
        self, *, user_id: str, notification: Notification
    ) -> list[DeviceReport]:
        """Push to every active device of a user, presence ignored; answer after the first
        attempt per device. Retries continue in the background (the sweep)."""
        async with self.sessionmaker.begin() as session:
            job_id = await enqueue_direct_push(session, user_id=user_id, notification=notification)
            await self._create_deliveries(session, job_id=job_id, user_ids=[user_id], owned=True)
            await session.execute(_MARK_FANNED_OUT, {"id": job_id})
        reports: list[DeviceReport] = []
        await self._deliver(claim=_CLAIM_OWNED, job_id=job_id, reports=reports)
        if any(r.outcome == "retry_scheduled" for r in reports):
            self._wake.set()
        return sorted(reports, key=lambda r: r.device_token_id)

    # -- fan-out -----------------------------------------------------------------------------

    async def _process_job(self, job_id: int) -> None:
        async with self._job_slots:
            try:
                await self._fan_out(job_id)
                await self._deliver(claim=_CLAIM_DUE_OF_JOB, job_id=job_id)
            except Exception:
                log.exception("push job %s failed; the sweep will take it up again", job_id)

    async def _fan_out(self, job_id: int | None) -> bool:
        """Fan out one job (this one, or the oldest nobody holds). False if there was none."""
        condition = "id = :job_id" if job_id is not None else "TRUE"
        async with self.sessionmaker.begin() as session:
            job = (
                await session.execute(
                    text(
                        f"""
                        SELECT id, kind, conversation_id, sender_id, target_user_id
                        FROM push_jobs WHERE fanned_out_at IS NULL AND {condition}
                        ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED
                        """
                    ),
                    {"job_id": job_id},
                )
            ).one_or_none()
            if job is None:
                return False
            if job.kind == "message":
                recipients = await self._offline_recipients(session, job)
            else:
                recipients = [job.target_user_id]
            with_devices = await self._create_deliveries(
                session, job_id=job.id, user_ids=recipients, owned=False
            )
            if job.kind == "message":
                skipped = len(set(recipients) - with_devices)
                if skipped:
                    PUSH_SKIPPED.labels("no_devices").inc(skipped)
            await session.execute(_MARK_FANNED_OUT, {"id": job.id})
        return True

    async def _offline_recipients(self, session: AsyncSession, job: Any) -> list[str]:
        rows = (
            await session.execute(
                _RECIPIENTS, {"conversation_id": job.conversation_id, "sender_id": job.sender_id}
            )
        ).all()
        skipped: Counter[str] = Counter()
        candidates: list[str] = []
        for row in rows:
            if row.muted:
                skipped["muted"] += 1
            elif not row.push_enabled:
                skipped["push_disabled"] += 1
            else:
                candidates.append(row.user_id)
        online: set[str] = set()
        if candidates:
            try:
                online = await online_user_ids(self.redis, candidates)
            except RedisError as exc:
                # Better a push to someone who is online than a lost one.
                log.warning("presence unavailable, pushing to every recipient: %s", exc)
        skipped["online"] = len(online)
        for reason, count in skipped.items():
            if count:
                PUSH_SKIPPED.labels(reason).inc(count)
        return [user_id for user_id in candidates if user_id not in online]

    async def _create_deliveries(
        self, session: AsyncSession, *, job_id: int, user_ids: list[str], owned: bool
    ) -> set[str]:
        """One INSERT ... SELECT for every active device of these users; returns who had one."""
        if not user_ids:
            return set()
        result = await session.execute(
            _CREATE_DELIVERIES,
            {
                "job_id": job_id,
                "user_ids": user_ids,
                "lease": float(self.settings.push_lease_seconds),
                "owned": owned,
            },
        )
        return set(result.scalars())

    # -- delivery ------------------------------------------------------------------------------

    async def _deliver(
        self, *, claim: Any, job_id: int | None = None, reports: list[DeviceReport] | None = None
    ) -> None:
        async def lane() -> None:
            while True:
                batch = await self._deliver_batch(claim, job_id)
                if reports is not None:
                    reports.extend(
                        DeviceReport(a.device_id, a.provider, a.outcome)
                        for a in batch
                        if a.outcome is not None
                    )
                if len(batch) < self.settings.push_claim_batch_size:
                    return

        await asyncio.gather(*(lane() for _ in range(CLAIM_LANES)))

    async def _deliver_batch(self, claim: Any, job_id: int | None) -> list[_Attempt]:
        lease = float(self.settings.push_lease_seconds)
        async with self.sessionmaker.begin() as session:
            rows = (
                await session.execute(
                    claim,
                    {
                        "job_id": job_id,
                        "limit": self.settings.push_claim_batch_size,
                        "lease": lease,
                    },
                )
            ).all()
        if not rows:
            return []
        # Never start a send that could outlive the lease: another instance may take it over then.
        deadline = time.monotonic() + max(lease - self.settings.push_send_timeout_seconds - 1, 1)
        claimed_at = rows[0].claimed_at
        sends = [asyncio.ensure_future(self._attempt(row, deadline)) for row in rows]
        # Record outcomes as they come (in small batches), not when the whole claim is done:
        # a crash then re-sends only what was in flight, not everything already delivered.
        done: list[_Attempt] = []
        unrecorded: list[_Attempt] = []
        flushed_at = time.monotonic()
        in_flight: set[asyncio.Future[_Attempt]] = set(sends)
        try:
            while in_flight:
                finished, in_flight = await asyncio.wait(
                    in_flight, timeout=RECORD_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                unrecorded.extend(future.result() for future in finished)
                if unrecorded and (
                    not in_flight
                    or len(unrecorded) >= RECORD_EVERY
                    or time.monotonic() - flushed_at >= RECORD_SECONDS
                ):
                    await self._record(unrecorded, claimed_at=claimed_at)
                    done.extend(unrecorded)
                    unrecorded, flushed_at = [], time.monotonic()
        finally:
            for send in sends:
                send.cancel()
        return done

    async def _attempt(self, row: Any, deadline: float) -> _Attempt:
        attempt = _Attempt(row.job_id, row.device_id, row.provider, status="failed", outcome=None)
        provider = self.providers.get(row.provider)
        if not row.is_active:
            attempt.error = "device deactivated before its turn"
            return attempt
        if provider is None:
            attempt.status = attempt.outcome = "provider_not_configured"
            PUSHES.labels(row.provider, attempt.outcome).inc()
            return attempt
        notification = Notification(
            title=row.title,
            body=row.body,
            data=row.data,
            priority=row.priority,
            collapse_id=collapse_id(row.job_id, row.message_id),
        )
        target = Target(
            device_id=row.device_id,
            token=row.token,
            registered_at=row.updated_at,
            p256dh=row.web_push_p256dh,
            auth=row.web_push_auth,
        )
        async with self._limits[row.provider]:
            if time.monotonic() > deadline:
                attempt.status, attempt.released = "pending", True
                return attempt
            try:
                result = await provider.send(target, notification)
            except Exception as exc:
                log.exception("%s adapter raised; treating as retryable", row.provider)
                result = SendResult.retry(f"adapter error: {type(exc).__name__}")
        PUSH_LATENCY.labels(row.provider).observe(_seconds_since(row.job_created_at))
        self._apply(attempt, result, attempts_made=row.attempts)
        PUSHES.labels(row.provider, attempt.outcome).inc()
        return attempt

    def _apply(self, attempt: _Attempt, result: SendResult, *, attempts_made: int) -> None:
        attempt.error = result.reason
        if result.outcome is Outcome.RETRY and attempts_made < self.settings.push_max_attempts:
            attempt.status, attempt.outcome = "pending", "retry_scheduled"
            attempt.delay = self.retry_delay(attempts_made, result.retry_after)
        elif result.outcome is Outcome.RETRY:
            attempt.status = attempt.outcome = "failed"
        else:
            attempt.status = attempt.outcome = result.outcome.value

    def retry_delay(self, attempts_made: int, retry_after: float | None) -> float:
        """Retry-After when the provider gave one (capped), else exponential backoff with jitter."""
        settings = self.settings
        if retry_after is not None:
            return min(retry_after, settings.push_retry_after_cap_seconds)
        ceiling = min(
            settings.push_retry_base_seconds * 2 ** (attempts_made - 1),
            settings.push_retry_max_seconds,
        )
        return random.uniform(ceiling / 2, ceiling)

    async def _record(self, attempts: list[_Attempt], *, claimed_at: datetime) -> None:
        delivered = [a.device_id for a in attempts if a.status == "delivered"]
        dead = [a.device_id for a in attempts if a.status == "token_dead"]
        async with self.sessionmaker.begin() as session:
            await session.execute(
                _RECORD,
                {
                    "job_ids": [a.job_id for a in attempts],
                    "device_ids": [a.device_id for a in attempts],
                    "statuses": [a.status for a in attempts],
                    "delays": [a.delay for a in attempts],
                    "errors": [a.error for a in attempts],
                    "released": [a.released for a in attempts],
                },
            )
            if delivered:
                await session.execute(_MARK_USED, {"ids": delivered})
            if dead:
                await session.execute(_MARK_DEAD, {"ids": dead, "claimed_at": claimed_at})
        if any(a.status == "pending" for a in attempts):
            soonest = min(a.delay for a in attempts if a.status == "pending")
            asyncio.get_running_loop().call_later(soonest, self._wake.set)

    # -- sweep ---------------------------------------------------------------------------------

    async def _sweep_loop(self) -> None:
        """Takes up work nobody is doing: orphaned jobs, expired leases, due retries."""
        while True:
            try:
                while await self._fan_out(None):
                    pass
                await self._deliver(claim=_CLAIM_DUE)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("push sweep failed; retrying")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.push_sweep_interval_seconds)


def _seconds_since(moment: datetime) -> float:
    return max(0.0, time.time() - moment.timestamp())
