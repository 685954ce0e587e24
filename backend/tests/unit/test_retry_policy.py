"""The retry policy alone: no I/O, no clock."""

from __future__ import annotations

from backend.app.messenger.push.providers.base import SendResult
from backend.app.messenger.push.retry import RetryPolicy
from backend.app.messenger.push.vocabulary import DeliveryOutcome, DeliveryStatus

POLICY = RetryPolicy(base_seconds=1, max_seconds=60, retry_after_cap_seconds=300, max_attempts=5)


def upper_bound(low: float, high: float) -> float:
    return high


def test_backoff_doubles_from_the_base_per_attempt() -> None:
    assert [POLICY.delay(n, None, upper_bound) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]


def test_backoff_is_capped_at_the_maximum() -> None:
    assert POLICY.delay(20, None, upper_bound) == 60


def test_jitter_stays_between_half_and_the_full_delay() -> None:
    delays = [POLICY.delay(3, None) for _ in range(200)]
    assert all(2 <= d <= 4 for d in delays)


def test_retry_after_is_honoured() -> None:
    assert POLICY.delay(1, 7.5) == 7.5


def test_retry_after_is_capped() -> None:
    assert POLICY.delay(1, 10_000) == 300


def test_a_retryable_answer_before_the_last_attempt_is_scheduled_again() -> None:
    decision = POLICY.decide(SendResult.retry("503", retry_after=2), attempts_made=4)
    assert (decision.status, decision.outcome, decision.delay) == (
        DeliveryStatus.PENDING,
        DeliveryOutcome.RETRY_SCHEDULED,
        2,
    )


def test_a_retryable_answer_at_the_last_attempt_fails() -> None:
    decision = POLICY.decide(SendResult.retry("503"), attempts_made=5)
    assert (decision.status, decision.outcome) == (DeliveryStatus.FAILED, DeliveryOutcome.FAILED)


def test_final_answers_map_to_their_outcome() -> None:
    assert POLICY.decide(SendResult.delivered(), attempts_made=1).outcome == "delivered"
    assert POLICY.decide(SendResult.token_dead("x"), attempts_made=1).outcome == "token_dead"
    assert POLICY.decide(SendResult.failed("x"), attempts_made=1).outcome == "failed"


def test_a_held_back_delivery_waits_as_retry_scheduled() -> None:
    decision = POLICY.wait_without_attempt("circuit open", 3)
    assert (decision.status, decision.outcome, decision.delay) == ("pending", "retry_scheduled", 3)
