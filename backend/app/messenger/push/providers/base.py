"""The one interface every push provider adapter implements (after matrix-org/sygnal's pushkins).

An adapter sends one notification to one device and says what happened in provider-neutral
terms; the dispatcher decides what that means for the device and for retries.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from backend.app.messenger.push.payloads import Notification
from backend.app.metrics import PROVIDER_CONFIG_ERRORS


class Outcome(StrEnum):
    DELIVERED = "delivered"
    TOKEN_DEAD = "token_dead"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    retry_after: float | None = None  # seconds the provider asked us to wait, when it said
    reason: str | None = None

    @classmethod
    def delivered(cls) -> SendResult:
        return cls(Outcome.DELIVERED)

    @classmethod
    def token_dead(cls, reason: str) -> SendResult:
        return cls(Outcome.TOKEN_DEAD, reason=reason)

    @classmethod
    def retry(cls, reason: str, retry_after: float | None = None) -> SendResult:
        return cls(Outcome.RETRY, retry_after=retry_after, reason=reason)

    @classmethod
    def failed(cls, reason: str) -> SendResult:
        return cls(Outcome.FAILED, reason=reason)


@dataclass(frozen=True, slots=True)
class Target:
    device_id: int
    token: str  # FCM/APNs token, or the Web Push endpoint
    registered_at: datetime  # last (re-)registration: APNs 410 older than this is stale news
    p256dh: str | None = None
    auth: str | None = None


class PushProvider(Protocol):
    name: str

    async def send(self, target: Target, notification: Notification) -> SendResult: ...

    async def close(self) -> None: ...


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form; HTTP dates are rare here)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class ConfigErrorReporter:
    """Configuration errors (bad credentials, wrong topic, payload bugs) hit every push alike:
    count each, but log loudly once per burst instead of once per device."""

    def __init__(self, provider: str, logger: logging.Logger, quiet_seconds: float = 60.0) -> None:
        self.provider = provider
        self.logger = logger
        self.quiet_seconds = quiet_seconds
        self._last_logged: dict[str, float] = {}

    def report(self, reason: str) -> SendResult:
        PROVIDER_CONFIG_ERRORS.labels(self.provider).inc()
        now = time.monotonic()
        if now - self._last_logged.get(reason, -self.quiet_seconds) >= self.quiet_seconds:
            self._last_logged[reason] = now
            self.logger.error(
                "%s rejected a push because of our configuration: %s "
                "(devices are kept; further identical errors are silenced for %.0f s)",
                self.provider,
                reason,
                self.quiet_seconds,
            )
        return SendResult.failed(f"configuration error: {reason}")
