"""Delivery: claim due deliveries under a lease, send them through each device's app, and
record the outcomes in small batches as they arrive (retried within the lease)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.config import LEASE_RECORD_MARGIN_SECONDS, Settings
from backend.app.db import autocommit
from backend.app.messenger.push import clear_fanout
from backend.app.messenger.push import delivery_repository as repository
from backend.app.messenger.push.breaker import CircuitBreaker
from backend.app.messenger.push.delivery_repository import ClaimedDelivery, RecordedAttempt
from backend.app.messenger.push.payloads import Notification
from backend.app.messenger.push.providers.base import SendResult, Target, Verdict
from backend.app.messenger.push.providers.registry import ProviderRegistry
from backend.app.messenger.push.retry import Decision, RetryPolicy
from backend.app.messenger.push.vocabulary import DeliveryOutcome, DeliveryStatus, PushKind
from backend.app.metrics import PUSH_LATENCY, count_push

log = logging.getLogger(__name__)

CLAIM_LANES = 3
RECORD_EVERY = 50  # outcomes per recording transaction
RECORD_SECONDS = 0.05  # ...or at least this often while a batch is in flight


@dataclass(frozen=True, slots=True)
class DeviceReport:
    device_token_id: int
    provider: str
    outcome: DeliveryOutcome


@dataclass(frozen=True, slots=True)
class Attempted:
    record: RecordedAttempt
    provider: str
    outcome: DeliveryOutcome | None  # None when nothing was attempted (nothing to report)
    kind: PushKind | None = None


def collapse_id(job_id: int, message_id: uuid.UUID | None) -> str:
    """Stable per push, ≤ 32 base64url characters (Web Push `Topic`, APNs collapse id, FCM tag)."""
    if message_id is not None:
        return message_id.hex
    return hashlib.sha256(f"push-job:{job_id}".encode()).hexdigest()[:32]


class DeliveryEngine:
    def __init__(
        self,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        registry: ProviderRegistry,
        policy: RetryPolicy,
        wake_after: Callable[[float], None],
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.registry = registry
        self.policy = policy
        self.lease = float(settings.push_lease_seconds)
        self.wake_after = wake_after  # asks the sweep to run again in so many seconds

    async def deliver(
        self,
        *,
        job_id: int | None = None,
        owned: bool = False,
        interactive: bool = False,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    ) -> list[DeviceReport]:
        """Claim and send until nothing is due (of this job, or of any). Returns the reports."""
        reports: list[DeviceReport] = []
        maker = sessionmaker or self.sessionmaker

        async def lane() -> None:
            while True:
                batch, claimed = await self._deliver_batch(job_id, owned, interactive, maker)
                reports.extend(
                    DeviceReport(a.record.device_id, a.provider, a.outcome)
                    for a in batch
                    if a.outcome is not None
                )
                if claimed < self.settings.push_claim_batch_size:
                    return

        await asyncio.gather(*(lane() for _ in range(1 if owned else CLAIM_LANES)))
        return sorted(reports, key=lambda r: r.device_token_id)

    async def _deliver_batch(
        self,
        job_id: int | None,
        owned: bool,
        interactive: bool,
        maker: async_sessionmaker[AsyncSession],
    ) -> tuple[list[Attempted], int]:
        async with autocommit(maker) as session:  # one statement: locks end with it
            rows = await repository.claim_deliveries(
                session,
                job_id=job_id,
                owned=owned,
                limit=self.settings.push_claim_batch_size,
                lease=self.lease,
                max_attempts=self.settings.push_max_attempts,
            )
        if not rows:
            return [], 0
        lease_end = time.monotonic() + self.lease
        # Never start a send that could outlive the lease (another instance may take it over).
        start_by = lease_end - self.settings.push_send_timeout_seconds - LEASE_RECORD_MARGIN_SECONDS
        claimed_at = rows[0].claimed_at
        sends = [asyncio.ensure_future(self._attempt(r, start_by, interactive)) for r in rows]
        done: list[Attempted] = []
        unrecorded: list[Attempted] = []
        flushed_at = time.monotonic()
        in_flight: set[asyncio.Future[Attempted]] = set(sends)
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
                    await self._record(unrecorded, claimed_at, lease_end, maker)
                    done.extend(unrecorded)
                    unrecorded, flushed_at = [], time.monotonic()
        finally:
            for send in sends:
                send.cancel()
        return done, len(rows)

    async def _attempt(self, row: ClaimedDelivery, start_by: float, interactive: bool) -> Attempted:
        def result(
            decision: Decision, *, released: bool = False, counted: bool = True
        ) -> Attempted:
            record = RecordedAttempt(
                row.job_id,
                row.device_id,
                row.attempts,
                decision.status,
                decision.delay,
                decision.error,
                released,
            )
            if counted:
                count_push(row.provider, row.kind, decision.outcome)
            return Attempted(record, row.provider, decision.outcome if counted else None, row.kind)

        if not row.is_active:
            failed = Decision(
                DeliveryStatus.FAILED, DeliveryOutcome.FAILED, error="device inactive"
            )
            return result(failed, counted=False)
        if _age(row.job_created_at) > self.settings.push_max_age_seconds:
            return result(Decision(DeliveryStatus.FAILED, DeliveryOutcome.FAILED, error="expired"))
        channel = self.registry.channel(row.provider, row.app_id)
        if channel is None or channel.provider is None:
            final = DeliveryOutcome.PROVIDER_NOT_CONFIGURED
            return result(Decision(DeliveryStatus.PROVIDER_NOT_CONFIGURED, final))
        if not channel.breaker.allow():
            reason = f"circuit open: {channel.breaker.last_error}"
            held = self.policy.wait_without_attempt(reason, channel.breaker.retry_in())
            return result(held, released=True)
        if time.monotonic() > start_by:
            released = Decision(DeliveryStatus.PENDING, DeliveryOutcome.RETRY_SCHEDULED)
            return result(released, released=True, counted=False)
        send = await channel.provider.deliver(
            Target(
                device_id=row.device_id,
                token=row.token,
                registered_at=row.registered_at,
                p256dh=row.web_push_p256dh,
                auth=row.web_push_auth,
            ),
            Notification(
                title=row.title,
                body=row.body,
                data=row.data,
                priority=row.priority.value,
                collapse_id=collapse_id(row.job_id, row.message_id),
                badge=row.badge,
                silent=row.kind is PushKind.CLEAR,
            ),
            interactive=interactive,
        )
        _feed_breaker(channel.breaker, send)
        channel.publish_state()
        PUSH_LATENCY.labels(row.provider).observe(_age(row.job_created_at))
        return result(self.policy.decide(send, attempts_made=row.attempts))

    async def _record(
        self,
        attempts: list[Attempted],
        claimed_at: datetime,
        lease_end: float,
        maker: async_sessionmaker[AsyncSession],
    ) -> None:
        """Retried until the lease runs out: a lost outcome means a second push."""
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
            self.wake_after(min(pending))


def _feed_breaker(breaker: CircuitBreaker, send: SendResult) -> None:
    if send.provider_fault:
        breaker.record_fault(send.reason or "provider fault")
    elif send.outcome is Verdict.DELIVERED:
        breaker.record_success()
    else:
        breaker.record_other()


def _age(moment: datetime) -> float:
    return max(0.0, time.time() - moment.timestamp())
