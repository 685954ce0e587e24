"""The email sender loop: claim due emails in batches, send them over one SMTP connection,
record every outcome in one statement. Runs in every background process; claims use
`FOR UPDATE SKIP LOCKED`, so competing senders never take the same email."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.config import Settings
from backend.app.messenger.email.service import CLAIM, RECORD, outgoing
from backend.app.messenger.email.smtp import Result, SmtpTransport
from backend.app.messenger.email.vocabulary import EmailOutcome, EmailStatus
from backend.app.metrics import EMAILS
from backend.app.waiting import sleep_until_set

log = logging.getLogger(__name__)


def retry_delay(settings: Settings, tries: int) -> float:
    """Exponential backoff from EMAIL_RETRY_BASE_SECONDS with jitter, capped (like pushes)."""
    ceiling = min(
        settings.email_retry_base_seconds * 2 ** max(tries - 1, 0),
        settings.email_retry_max_seconds,
    )
    return random.uniform(ceiling / 2, ceiling)


class EmailSender:
    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.transport = SmtpTransport(settings)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New email was queued in this process: send now rather than at the next sweep."""
        self._wake.set()

    async def deliver_due(self, only_ids: Sequence[int] | None = None) -> int:
        """One batch: returns how many emails were claimed."""
        settings = self.settings
        async with self.sessionmaker.begin() as session:
            rows = (
                await session.execute(
                    CLAIM,
                    {
                        "lease": settings.email_lease_seconds,
                        "limit": settings.email_batch_size,
                        "only_ids": list(only_ids) if only_ids is not None else None,
                    },
                )
            ).all()
        if not rows:
            return 0
        results = await self.transport.send([outgoing(row) for row in rows])
        statuses, soft, delays, errors = [], [], [], []
        for row, (result, error) in zip(rows, results, strict=True):
            status, soft_failure = EmailStatus.PENDING, 0
            if result is Result.SENT:
                status = EmailStatus.SENT
            elif result is Result.FAILED:
                status = EmailStatus.FAILED
            elif result is Result.RETRY:
                soft_failure = 1
                if row.soft_failures + 1 >= settings.email_max_attempts:
                    status = EmailStatus.FAILED
            outcome = {
                EmailStatus.SENT: EmailOutcome.SENT,
                EmailStatus.FAILED: EmailOutcome.FAILED,
                EmailStatus.PENDING: EmailOutcome.RETRY_SCHEDULED,
            }[status]
            EMAILS.labels(row.kind, outcome.value).inc()
            statuses.append(status.value)
            soft.append(soft_failure)
            delays.append(retry_delay(settings, row.tries) if status is EmailStatus.PENDING else 0)
            errors.append(error)
        async with self.sessionmaker.begin() as session:
            await session.execute(
                RECORD,
                {
                    "ids": [row.id for row in rows],
                    "statuses": statuses,
                    "soft": soft,
                    "delays": delays,
                    "errors": errors,
                },
            )
        pending = [d for d, s in zip(delays, statuses, strict=True) if s == EmailStatus.PENDING]
        if pending:
            asyncio.get_running_loop().call_later(min(pending), self._wake.set)
        return len(rows)

    async def run(self) -> None:
        """Send until cancelled; an error is logged and the loop goes on at the next sweep."""
        while True:
            self._wake.clear()
            try:
                while await self.deliver_due() >= self.settings.email_batch_size:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("email sweep failed; retrying")
            await sleep_until_set(self._wake, self.settings.email_sweep_interval_seconds)
