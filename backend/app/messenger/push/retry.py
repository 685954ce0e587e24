"""The retry policy: pure decisions about one provider answer, no I/O (unit-tested alone).

Retry-After is honoured (capped), otherwise exponential backoff with full-range jitter;
after `max_attempts` attempts a retryable answer ends as `failed`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from backend.app.config import Settings
from backend.app.messenger.push.providers.base import SendResult, Verdict
from backend.app.messenger.push.vocabulary import DeliveryOutcome, DeliveryStatus


@dataclass(frozen=True, slots=True)
class Decision:
    status: DeliveryStatus  # what the delivery row becomes
    outcome: DeliveryOutcome  # what the metric and `/devices/test` report
    delay: float = 0.0  # seconds until the next attempt (pending only)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_seconds: float = 1.0
    max_seconds: float = 60.0
    retry_after_cap_seconds: float = 300.0
    max_attempts: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            base_seconds=settings.push_retry_base_seconds,
            max_seconds=settings.push_retry_max_seconds,
            retry_after_cap_seconds=settings.push_retry_after_cap_seconds,
            max_attempts=settings.push_max_attempts,
        )

    def delay(
        self,
        attempts_made: int,
        retry_after: float | None,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> float:
        """Retry-After when the provider gave one (capped), else backoff with jitter."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.retry_after_cap_seconds))
        ceiling = min(self.base_seconds * 2 ** max(attempts_made - 1, 0), self.max_seconds)
        return uniform(ceiling / 2, ceiling)

    def decide(self, result: SendResult, *, attempts_made: int) -> Decision:
        """What one answer means for the delivery, `attempts_made` counting this one."""
        if result.outcome is Verdict.RETRYABLE:
            if attempts_made < self.max_attempts:
                return Decision(
                    DeliveryStatus.PENDING,
                    DeliveryOutcome.RETRY_SCHEDULED,
                    delay=self.delay(attempts_made, result.retry_after),
                    error=result.reason,
                )
            return Decision(DeliveryStatus.FAILED, DeliveryOutcome.FAILED, error=result.reason)
        final = DeliveryOutcome(result.outcome.value)
        return Decision(DeliveryStatus(final.value), final, error=result.reason)

    def wait_without_attempt(self, reason: str, seconds: float) -> Decision:
        """A delivery held back (its app's circuit is open): try later, attempt not counted."""
        return Decision(
            DeliveryStatus.PENDING, DeliveryOutcome.RETRY_SCHEDULED, delay=seconds, error=reason
        )
