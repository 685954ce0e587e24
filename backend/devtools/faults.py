"""The vocabulary of `messenger dev fault` (import-light: the CLI builds its options from it)."""

from __future__ import annotations

from enum import StrEnum


class Fault(StrEnum):
    """What `messenger dev fault` makes a provider answer for one token."""

    DEAD = "dead"  # the token is gone: the service must deactivate the device
    THROTTLED = "throttled"  # 429 with Retry-After: the service must back off
    FAILING = "failing"  # 503: the service must retry with backoff
    OK = "ok"  # forget the fault


class Provider(StrEnum):
    FCM = "fcm"
    APNS = "apns"
    WEBPUSH = "webpush"
