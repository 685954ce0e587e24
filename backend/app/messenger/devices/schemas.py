from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from backend.app.messenger.push.vocabulary import PlatformLiteral as Platform
from backend.app.messenger.push.vocabulary import ProviderLiteral as Provider


class RegisterDeviceRequest(BaseModel):
    device_token: str = Field(min_length=1, max_length=8192)
    platform: Platform
    provider: Provider
    device_name: str | None = Field(default=None, max_length=255)
    # Which configured push app the token belongs to; null or absent means "default".
    app_id: str | None = Field(default=None, max_length=64)

    @field_validator("device_name")
    @classmethod
    def _clean_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("device_name must not contain control characters")
        return value.strip() or None


class RegisterDeviceResponse(BaseModel):
    status: Literal["registered", "updated"]
    device_token_id: int
    user_id: str
    platform: Platform
    provider: Provider


class DeviceOut(BaseModel):
    id: int
    platform: Platform
    provider: Provider
    app_id: str
    device_name: str | None
    is_active: bool
    registered_at: datetime
    last_used_at: datetime | None


class DeviceList(BaseModel):
    devices: list[DeviceOut]


class AdminDeviceOut(DeviceOut):
    user_id: str
    token_preview: str


class AdminDeviceList(BaseModel):
    devices: list[AdminDeviceOut]
    next_cursor: str | None


class DeviceStats(BaseModel):
    total: int
    active: int
    inactive: int
    by_provider: dict[str, int]
    by_platform: dict[str, int]
    idle_over_days: dict[str, int]


class UnregisterResponse(BaseModel):
    success: bool = True
    message: str = "Device unregistered"


class VapidPublicKey(BaseModel):
    public_key: str
