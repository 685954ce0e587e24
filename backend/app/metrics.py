"""Prometheus metrics named by the contract. One process-wide registry (the default one)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from backend.app.messenger.push.vocabulary import DeliveryOutcome, Provider, PushKind, SkipReason

# `*_created` series only double the output; rates work without them.
disable_created_metrics()

PUSHES = Counter("messenger_pushes", "One per device push attempt outcome", ["provider", "outcome"])
PUSH_SKIPPED = Counter(
    "messenger_push_skipped",
    "Recipients of a message that got no push, by first reason",
    ["reason"],
)
PUSH_LATENCY = Histogram(
    "messenger_push_latency_seconds",
    "Message stored -> provider answered",
    ["provider"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
PRUNED_DEVICES = Counter("messenger_pruned_devices", "Devices removed by idle pruning")
WEBSOCKET_CONNECTIONS = Gauge("messenger_websocket_connections", "Open WebSocket connections")
PROVIDER_CONFIG_ERRORS = Counter(
    "messenger_push_provider_config_errors",
    "Provider answers that mean our configuration is wrong (credentials, topic, payload)",
    ["provider"],
)

EMAILS = Counter(
    "messenger_emails", "One per email send attempt outcome, by kind of email", ["kind", "outcome"]
)


PUSHES_BY_KIND = Counter(
    "messenger_pushes_by_kind",
    "One per device push attempt outcome, by push kind (message, clear, notification, test)",
    ["kind", "provider", "outcome"],
)
PUSH_JOBS_PARKED = Counter(
    "messenger_push_jobs_parked",
    "Push jobs whose fan-out kept failing, set aside as failed so the sweep moves on",
)
PUSH_CIRCUIT_OPEN = Gauge(
    "messenger_push_circuit_open",
    "1 while a push app's circuit breaker is open or half-open, else 0",
    ["provider", "app_id"],
)


def count_push(provider: str, kind: str, outcome: str) -> None:
    """One device attempt outcome, in both the contract's series and the by-kind one."""
    PUSHES.labels(provider, outcome).inc()
    PUSHES_BY_KIND.labels(kind, provider, outcome).inc()


# Every known series exists from the start at 0, so rate() and alerts work before the first event.
for _provider in Provider:
    PUSH_LATENCY.labels(_provider)
    PROVIDER_CONFIG_ERRORS.labels(_provider)
    for _outcome in DeliveryOutcome:
        PUSHES.labels(_provider, _outcome)
        for _kind in PushKind:
            PUSHES_BY_KIND.labels(_kind, _provider, _outcome)
for _reason in SkipReason:
    PUSH_SKIPPED.labels(_reason)


def _email_series() -> None:
    from backend.app.messenger.email.vocabulary import EmailKind, EmailOutcome

    for kind in EmailKind:
        for outcome in EmailOutcome:
            EMAILS.labels(kind.value, outcome.value)


_email_series()
