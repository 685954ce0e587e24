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

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.config import LEASE_RECORD_MARGIN_SECONDS, Settings
from backend.app.db import autocommit
from backend.app.messenger.push import delivery_repository as repository
from backend.app.messenger.push.breaker import CircuitBreaker
from backend.app.messenger.push.delivery_repository import ClaimedDelivery, RecordedAttempt
from backend.app.messenger.push.outcomes import Attempted, record_outcomes
from backend.app.messenger.push.payloads import Notification
from backend.app.messenger.push.providers.base import SendResult, Target, Verdict
from backend.app.messenger.push.providers.registry import ProviderRegistry
from backend.app.messenger.push.retry import Decision, RetryPolicy
from backend.app.messenger.push.vocabulary import DeliveryOutcome, DeliveryStatus, PushKind
from backend.app.metrics import PUSH_LATENCY, count_push
from backend.app.waiting import sleep_until_set

log = logging.getLogger(__name__)

CLAIM_LANES = 3
RECORD_EVERY = 50  # outcomes per recording transaction
RECORD_SECONDS = 0.05  # ...or at least this often while a batch is in flight


@dataclass(frozen=True, slots=True)
class DeviceReport:
    device_token_id: int
    provider: str
    outcome: DeliveryOutcome


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
        # Each send reports its own end; not asyncio.wait, which hooks and unhooks every
        # pending send at each wake-up (O(batch) per outcome).
        finished: list[asyncio.Future[Attempted]] = []
        arrived = asyncio.Event()

        def on_done(send: asyncio.Future[Attempted]) -> None:
            finished.append(send)
            arrived.set()

        sends = [asyncio.ensure_future(self._attempt(r, start_by, interactive)) for r in rows]
        for send in sends:
            send.add_done_callback(on_done)
        done: list[Attempted] = []
        unrecorded: list[Attempted] = []
        flushed_at = time.monotonic()
        in_flight = len(sends)
        try:
            while in_flight:
                if not finished:
                    await sleep_until_set(arrived, RECORD_SECONDS)
                arrived.clear()
                in_flight -= len(finished)
                unrecorded.extend(send.result() for send in finished)
                finished.clear()
                if unrecorded and (
                    not in_flight
                    or len(unrecorded) >= RECORD_EVERY
                    or time.monotonic() - flushed_at >= RECORD_SECONDS
                ):
                    await record_outcomes(
                        maker,
                        unrecorded,
                        claimed_at=claimed_at,
                        lease_end=lease_end,
                        wake_after=self.wake_after,
                    )
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


def _feed_breaker(breaker: CircuitBreaker, send: SendResult) -> None:
    if send.provider_fault:
        breaker.record_fault(send.reason or "provider fault")
    elif send.outcome is Verdict.DELIVERED:
        breaker.record_success()
    else:
        breaker.record_other()


def _age(moment: datetime) -> float:
    return max(0.0, time.time() - moment.timestamp())
