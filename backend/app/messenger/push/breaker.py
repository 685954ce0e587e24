"""A circuit breaker per push app: pure state, an injectable clock, no I/O.

closed --(N provider faults in a row)--> open --(cool-down passed)--> half_open
half_open lets one probe through: success closes, a fault opens again (cool-down doubles,
capped). While open, deliveries wait (`retry_scheduled`) without spending attempts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from backend.app.messenger.push.vocabulary import CircuitState

FAILURE_THRESHOLD = 5
OPEN_SECONDS = 5.0
MAX_OPEN_SECONDS = 60.0


@dataclass(slots=True)
class CircuitBreaker:
    failure_threshold: int = FAILURE_THRESHOLD
    open_seconds: float = OPEN_SECONDS
    max_open_seconds: float = MAX_OPEN_SECONDS
    clock: Callable[[], float] = time.monotonic
    last_error: str | None = None
    _failures: int = 0
    _opened_at: float | None = None
    _cool_down: float = field(default=0.0)
    _probing: bool = False
    _probe_started: float = 0.0

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self.clock() - self._opened_at >= self._cool_down:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def allow(self) -> bool:
        """May a send go out now? In half_open only one probe at a time."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        # A probe whose answer never came (its task was cancelled) does not block the next one.
        stuck = self._probing and self.clock() - self._probe_started > self.max_open_seconds
        if state is CircuitState.HALF_OPEN and (not self._probing or stuck):
            self._probing, self._probe_started = True, self.clock()
            return True
        return False

    def retry_in(self) -> float:
        """Seconds a held-back delivery should wait before asking again."""
        if self._opened_at is None:
            return 0.0
        return max(self._cool_down - (self.clock() - self._opened_at), 0.0) + 0.1

    def record_success(self) -> None:
        self._failures, self._opened_at, self._probing = 0, None, False
        self._cool_down = 0.0

    def record_fault(self, reason: str) -> None:
        self._failures += 1
        if self._probing or (self._opened_at is None and self._failures >= self.failure_threshold):
            reopening = self._probing
            self._cool_down = (
                min(self._cool_down * 2, self.max_open_seconds) if reopening else self.open_seconds
            )
            self._opened_at, self._probing = self.clock(), False
            self.last_error = reason

    def record_other(self) -> None:
        """An answer that says nothing about the provider's health (e.g. a dead token)."""
        if self._probing:
            self.record_success()
        else:
            self._failures = 0
