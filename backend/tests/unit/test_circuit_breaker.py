"""The per-app circuit breaker's state machine, on a fake clock."""

from __future__ import annotations

from backend.app.messenger.push.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, open_seconds=10, max_open_seconds=40, clock=clock)


def test_a_new_breaker_is_closed_and_lets_sends_through() -> None:
    b = breaker(Clock())
    assert b.state == "closed" and b.allow()


def test_it_opens_after_repeated_provider_faults_and_says_why() -> None:
    b = breaker(Clock())
    for _ in range(3):
        b.record_fault("HTTP 503")
    assert b.state == "open"
    assert not b.allow()
    assert b.last_error == "HTTP 503"


def test_faults_interrupted_by_a_success_do_not_open_it() -> None:
    b = breaker(Clock())
    b.record_fault("x")
    b.record_fault("x")
    b.record_success()
    b.record_fault("x")
    assert b.state == "closed"


def test_answers_about_one_device_reset_the_fault_count() -> None:
    b = breaker(Clock())
    b.record_fault("x")
    b.record_fault("x")
    b.record_other()
    b.record_fault("x")
    assert b.state == "closed"


def test_after_the_cool_down_it_half_opens_and_lets_exactly_one_probe_through() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.record_fault("x")
    clock.now = 10
    assert b.state == "half_open"
    assert b.allow()
    assert not b.allow()


def test_a_successful_probe_closes_it() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.record_fault("x")
    clock.now = 10
    assert b.allow()
    b.record_success()
    assert b.state == "closed" and b.allow()


def test_a_failed_probe_reopens_it_for_twice_as_long() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.record_fault("x")
    clock.now = 10
    assert b.allow()
    b.record_fault("still down")
    assert b.state == "open"
    clock.now = 29
    assert b.state == "open"
    clock.now = 30
    assert b.state == "half_open"
    assert b.last_error == "still down"


def test_retry_in_says_how_long_until_the_next_probe() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.record_fault("x")
    clock.now = 4
    assert 6 <= b.retry_in() <= 6.5


def test_a_probe_that_never_answered_does_not_block_the_next_one() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.record_fault("x")
    clock.now = 10
    assert b.allow()
    clock.now = 51
    assert b.allow()
