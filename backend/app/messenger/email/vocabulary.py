"""Vocabularies of the email package: CHECK constraints and metric labels derive from these."""

from __future__ import annotations

from enum import StrEnum


class EmailKind(StrEnum):
    NOTIFICATION = "notification"
    DIGEST = "digest"


class EmailStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class EmailOutcome(StrEnum):
    """One per send attempt (`messenger_emails_total{kind,outcome}`)."""

    SENT = "sent"
    RETRY_SCHEDULED = "retry_scheduled"
    FAILED = "failed"
