"""Request/response shapes of `/notification-preferences` (the contract's field names)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StrictBool, model_validator

from backend.app.messenger.preferences.timing import InvalidTimeZone, parse_hhmm, zone

# Deliberately simple: one @, no whitespace or control characters (header injection), and
# the lengths SMTP allows. Deliverability is the mail server's call, not ours.
EMAIL_PATTERN = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,253}")


def valid_email(value: str) -> str:
    value = value.strip()
    try:
        value.encode("utf-8")  # unpaired surrogates cannot be stored or sent
    except UnicodeEncodeError as exc:
        raise ValueError("must be an email address such as ada@example.com") from exc
    if len(value) > 254 or not EMAIL_PATTERN.fullmatch(value) or "." not in value.rsplit("@", 1)[1]:
        raise ValueError("must be an email address such as ada@example.com")
    return value


def _hhmm(value: str) -> str:
    parse_hhmm(value)
    return value


def _timezone(value: str) -> str:
    try:
        zone(value)
    except InvalidTimeZone as exc:
        raise ValueError(str(exc)) from exc
    return value


EmailAddress = Annotated[str, AfterValidator(valid_email)]
HHMM = Annotated[str, AfterValidator(_hhmm)]
TimeZoneName = Annotated[str, AfterValidator(_timezone)]


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: HHMM
    end: HHMM
    timezone: TimeZoneName


class Digest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: StrictBool
    time: HHMM
    timezone: TimeZoneName


class DigestUpdate(BaseModel):
    """Partial like the rest of the PUT: omitted digest fields keep their value."""

    model_config = ConfigDict(extra="forbid")
    enabled: StrictBool | None = None
    time: HHMM | None = None
    timezone: TimeZoneName | None = None


class Preferences(BaseModel):
    push: bool
    email: bool
    email_address: str | None
    quiet_hours: QuietHours | None
    digest: Digest


class PreferencesUpdate(BaseModel):
    """Partial PUT: only the fields present change; `null` clears `email_address`/`quiet_hours`."""

    model_config = ConfigDict(extra="forbid")
    push: StrictBool | None = None
    email: StrictBool | None = None
    email_address: EmailAddress | None = None
    quiet_hours: QuietHours | None = None
    digest: DigestUpdate | None = None

    @model_validator(mode="after")
    def _no_null_switches(self) -> PreferencesUpdate:
        for name in ("push", "email", "digest"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        if self.digest is not None:
            for name in ("enabled", "time", "timezone"):
                if name in self.digest.model_fields_set and getattr(self.digest, name) is None:
                    raise ValueError(f"digest.{name} cannot be null")
        return self
