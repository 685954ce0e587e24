"""The push vocabulary, spelled once. Pydantic `Literal`s, CHECK constraints and metric
labels are all derived from these enums (see `literal_of` and `sql_in`)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class Provider(StrEnum):
    FCM = "fcm"
    APNS = "apns"
    WEB_PUSH = "web_push"


class Platform(StrEnum):
    ANDROID = "android"
    IOS = "ios"
    WEB = "web"


# Which provider can reach which platform (FCM also serves iOS and web through Firebase SDKs).
VALID_COMBINATIONS: dict[Provider, tuple[Platform, ...]] = {
    Provider.FCM: (Platform.ANDROID, Platform.IOS, Platform.WEB),
    Provider.APNS: (Platform.IOS,),
    Provider.WEB_PUSH: (Platform.WEB,),
}


class PushKind(StrEnum):
    """Why a push job exists; the fan-out policy picks its recipients by kind."""

    MESSAGE = "message"  # a new message: conversation participants, presence and mute rules
    CLEAR = "clear"  # silent clear-on-read push to the reader's own devices
    NOTIFICATION = "notification"  # /internal/notify (and, later, notification pushes)
    TEST = "test"  # /devices/test


class Priority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class DeliveryOutcome(StrEnum):
    """One device attempt's outcome: `/devices/test` results and `messenger_pushes_total`."""

    DELIVERED = "delivered"
    TOKEN_DEAD = "token_dead"
    RETRY_SCHEDULED = "retry_scheduled"
    FAILED = "failed"
    PROVIDER_NOT_CONFIGURED = "provider_not_configured"


class DeliveryStatus(StrEnum):
    """What a `push_deliveries` row is: pending until one of the final outcomes."""

    PENDING = "pending"
    DELIVERED = "delivered"
    TOKEN_DEAD = "token_dead"
    FAILED = "failed"
    PROVIDER_NOT_CONFIGURED = "provider_not_configured"


class SkipReason(StrEnum):
    """Why a recipient got no push, in the contract's order (the first that applies counts)."""

    MUTED = "muted"
    PUSH_DISABLED = "push_disabled"
    BLOCKED = "blocked"
    QUIET_HOURS = "quiet_hours"
    ONLINE = "online"
    NO_DEVICES = "no_devices"


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


def sql_in(column: str, values: type[StrEnum]) -> str:
    """CHECK constraint text: `column IN ('a', 'b')`."""
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


OutcomeLiteral = Literal[
    "delivered", "token_dead", "retry_scheduled", "failed", "provider_not_configured"
]
ProviderLiteral = Literal["fcm", "apns", "web_push"]
PlatformLiteral = Literal["android", "ios", "web"]
PriorityLiteral = Literal["high", "normal", "low"]
CircuitLiteral = Literal["closed", "open", "half_open"]

# Type checkers need the Literals spelled out; this proves at import that they match the enums.
for _literal, _enum in (
    (OutcomeLiteral, DeliveryOutcome),
    (ProviderLiteral, Provider),
    (PlatformLiteral, Platform),
    (PriorityLiteral, Priority),
    (CircuitLiteral, CircuitState),
):
    assert set(_literal.__args__) == {v.value for v in _enum}, _enum  # type: ignore[attr-defined]
