"""The one interface every push provider adapter implements (after matrix-org/sygnal's pushkins).

An adapter sends one notification to one device and says what happened in provider-neutral
terms (a `Verdict`); the retry policy decides what that means for the delivery. Each adapter
owns its transport (HTTP client, TLS trust), its concurrency limits and `close()`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from backend.app.messenger.push.payloads import Notification
from backend.app.metrics import PROVIDER_CONFIG_ERRORS

log = logging.getLogger(__name__)


class Verdict(StrEnum):
    """A provider's answer, before the retry policy turns it into a delivery outcome."""

    DELIVERED = "delivered"
    TOKEN_DEAD = "token_dead"
    RETRYABLE = "retryable"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Verdict
    retry_after: float | None = None  # seconds the provider asked us to wait, when it said
    reason: str | None = None
    # The provider (not this device) is in trouble: connection error, timeout or 5xx.
    # Feeds the app's circuit breaker.
    provider_fault: bool = False

    @classmethod
    def delivered(cls) -> SendResult:
        return cls(Verdict.DELIVERED)

    @classmethod
    def token_dead(cls, reason: str) -> SendResult:
        return cls(Verdict.TOKEN_DEAD, reason=reason)

    @classmethod
    def retry(cls, reason: str, retry_after: float | None = None) -> SendResult:
        return cls(Verdict.RETRYABLE, retry_after=retry_after, reason=reason)

    @classmethod
    def unavailable(cls, reason: str, retry_after: float | None = None) -> SendResult:
        return cls(Verdict.RETRYABLE, retry_after=retry_after, reason=reason, provider_fault=True)

    @classmethod
    def failed(cls, reason: str) -> SendResult:
        return cls(Verdict.FAILED, reason=reason)


@dataclass(frozen=True, slots=True)
class Target:
    device_id: int
    token: str  # FCM/APNs token, or the Web Push endpoint
    registered_at: datetime  # last (re-)registration: APNs 410 older than this is stale news
    p256dh: str | None = None
    auth: str | None = None


class PushProvider:
    """Base of the adapters: bounded concurrency in two pools (bulk message pushes, and the
    interactive `/devices/test` + `/internal/notify`, so neither can starve the other) and a
    hard timeout around every send, whatever the adapter does inside."""

    name: str

    def __init__(self, *, app_id: str, timeout: float, concurrency: int, interactive: int) -> None:
        self.app_id = app_id
        self.timeout = timeout
        self.concurrency = concurrency
        self.connection_limit = concurrency + interactive
        self._bulk = asyncio.Semaphore(concurrency)
        self._interactive = asyncio.Semaphore(interactive)

    async def deliver(
        self, target: Target, notification: Notification, *, interactive: bool = False
    ) -> SendResult:
        async with self._interactive if interactive else self._bulk:
            try:
                # Not wait_for: no task per send, and no cancellation swallowed (waiting.py).
                async with asyncio.timeout(self.timeout):
                    return await self.send(target, notification)
            except TimeoutError:
                return SendResult.unavailable(f"{self.name} timed out")
            except Exception as exc:
                log.exception("%s adapter raised; treating as retryable", self.name)
                return SendResult.retry(f"adapter error: {type(exc).__name__}")

    async def send(self, target: Target, notification: Notification) -> SendResult:
        raise NotImplementedError

    async def close(self) -> None:
        """Release the transport this adapter owns."""


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
