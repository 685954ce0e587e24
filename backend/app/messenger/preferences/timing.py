"""Pure time-zone logic for quiet hours and the digest schedule (no I/O: the fast unit tier).

Rules (also in the README):
- Quiet hours are the half-open local interval [start, end). `start > end` spans midnight
  (22:00-07:00 is quiet from 22:00 until 07:00 the next morning). `start == end` is an empty
  window: never quiet (a user who wants no pushes at all sets `push: false`).
- Local times are read on the wall clock of the user's IANA zone at that instant, so DST
  shifts move quiet hours with the wall clock.
- A digest time that does not exist on some day (inside a DST gap) fires at the instant the
  clock would have shown it before the jump (zoneinfo's `fold=0`, e.g. 02:30 → 03:30 local
  when clocks jump from 02:00 to 03:00); a time that happens twice (clocks going back) fires
  at its first occurrence.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


class InvalidTimeZone(ValueError):
    pass


def parse_hhmm(value: str) -> time:
    """`HH:MM` on a 24-hour clock, exactly (no seconds, no single-digit hours)."""
    match = HHMM.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError("must be a time as HH:MM (00:00-23:59)")
    return time(int(match.group(1)), int(match.group(2)))


def format_hhmm(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


def zone(name: str) -> ZoneInfo:
    """An IANA zone by name; anything else (paths, NUL, unknown names) is InvalidTimeZone."""
    if (
        not isinstance(name, str)
        or not 1 <= len(name) <= 64
        or not re.fullmatch(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*", name)
    ):
        raise InvalidTimeZone("must be an IANA time zone name such as Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidTimeZone(f"unknown time zone {name!r}") from exc


def zone_or_utc(name: str) -> ZoneInfo:
    """For stored names: one that stopped existing (a tzdata update) must not stall the work of
    every other user in its batch; it reads as UTC until the user picks another."""
    try:
        return zone(name)
    except InvalidTimeZone:
        return ZoneInfo("UTC")


def in_quiet_hours(now: datetime, *, start: time, end: time, tz: ZoneInfo) -> bool:
    """Whether `now` (aware) falls in [start, end) on the wall clock of `tz`."""
    local = now.astimezone(tz).time().replace(tzinfo=None)
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end  # spans midnight


def local_date(now: datetime, tz: ZoneInfo) -> date:
    return now.astimezone(tz).date()


def occurrence(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant at which the wall clock of `tz` shows `at` on `day` (DST rules above)."""
    local = datetime.combine(day, at, tzinfo=tz)
    # Round-trip through UTC: a time inside a DST gap normalises to the post-jump wall clock.
    return local.astimezone(UTC)


def next_digest_at(
    now: datetime, *, at: time, tz: ZoneInfo, sent_on: date | None = None
) -> datetime:
    """The next digest instant at or after `now`: today's when it is still ahead (and today's
    digest has not been sent), else tomorrow's."""
    today = local_date(now, tz)
    candidate = occurrence(today, at, tz)
    if candidate >= now and sent_on != today:
        return candidate
    return occurrence(today + timedelta(days=1), at, tz)
