from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from backend.app.messenger.push.vocabulary import (
    CircuitLiteral,
    OutcomeLiteral,
    PriorityLiteral,
    ProviderLiteral,
)

# Keys the providers reserve for themselves (FCM refuses them in `data`; APNs owns `aps`).
RESERVED_DATA_KEYS = {"from", "notification", "message_type", "aps", "collapse_key"}
RESERVED_DATA_PREFIXES = ("google.", "gcm.")
MAX_DATA_BYTES = 2048


class DevicePushResult(BaseModel):
    device_token_id: int
    provider: ProviderLiteral
    outcome: OutcomeLiteral


class PushResults(BaseModel):
    results: list[DevicePushResult]


class NotifyRequest(BaseModel):
    user_id: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=4000)
    data: dict[str, str] | None = None
    priority: PriorityLiteral = "high"

    @field_validator("data")
    @classmethod
    def _check_data(cls, data: dict[str, str] | None) -> dict[str, str] | None:
        if not data:
            return data
        for key in data:
            if not key or key in RESERVED_DATA_KEYS or key.startswith(RESERVED_DATA_PREFIXES):
                raise ValueError(f"data key '{key}' is reserved by the push providers")
        size = sum(len(k.encode()) + len(v.encode()) for k, v in data.items())
        if size > MAX_DATA_BYTES:
            raise ValueError(f"data is {size} bytes; at most {MAX_DATA_BYTES} fit in a push")
        return data


class PushAppOut(BaseModel):
    app_id: str
    provider: ProviderLiteral
    configured: bool
    circuit: CircuitLiteral
    last_error: str | None
    devices_active: int


class PushApps(BaseModel):
    apps: list[PushAppOut]


class StatsBucket(BaseModel):
    start: datetime
    # provider -> outcome (`delivered`, `token_dead`, `failed`, `provider_not_configured`) -> n
    by_provider: dict[str, dict[str, int]]


class PushStats(BaseModel):
    buckets: list[StatsBucket]
