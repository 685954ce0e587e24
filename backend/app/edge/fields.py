"""Pydantic field types that hold only what the database and JSON encoders can hold."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator

MIN_YEAR, MAX_YEAR = 1970, 9999


def check_datetime(value: datetime) -> datetime:
    """Aware, in UTC, within the years 1970-9999. A time without offset is read as UTC.

    `9999-12-31T23:59:59-12:00` is year 10000 in UTC: Python cannot represent it, and
    PostgreSQL would store something no client can parse back. Refused as a 422.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        in_utc = value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ValueError(f"must be between the years {MIN_YEAR} and {MAX_YEAR} in UTC") from exc
    if not MIN_YEAR <= in_utc.year <= MAX_YEAR:
        raise ValueError(f"must be between the years {MIN_YEAR} and {MAX_YEAR} in UTC")
    return in_utc


CheckedDatetime = Annotated[datetime, AfterValidator(check_datetime)]
