"""Preference reads and writes, and the set-based questions other packages ask about users:
who may not be pushed now (`push_blockers`) and who gets email at which address
(`email_recipients`). Services take a session and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum
from typing import Any

from sqlalchemy import String, any_, bindparam, func, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.preferences.models import (
    DEFAULT_DIGEST_TIME,
    DEFAULT_DIGEST_TIMEZONE,
    NotificationPreference,
)
from backend.app.messenger.preferences.timing import (
    format_hhmm,
    in_quiet_hours,
    next_digest_at,
    parse_hhmm,
    zone_or_utc,
)

P = NotificationPreference


class PushBlock(StrEnum):
    """Why preferences stop a push; values are the contract's skip reasons."""

    PUSH_DISABLED = "push_disabled"
    QUIET_HOURS = "quiet_hours"


@dataclass(frozen=True, slots=True)
class PreferencesView:
    push: bool = True
    email: bool = True
    email_address: str | None = None
    quiet_hours: dict[str, str] | None = None
    digest_enabled: bool = False
    digest_time: time = DEFAULT_DIGEST_TIME
    digest_timezone: str = DEFAULT_DIGEST_TIMEZONE

    def as_contract(self) -> dict[str, Any]:
        return {
            "push": self.push,
            "email": self.email,
            "email_address": self.email_address,
            "quiet_hours": self.quiet_hours,
            "digest": {
                "enabled": self.digest_enabled,
                "time": format_hhmm(self.digest_time),
                "timezone": self.digest_timezone,
            },
        }


def _view(row: NotificationPreference | None) -> PreferencesView:
    if row is None:
        return PreferencesView()
    quiet = None
    if row.quiet_start is not None and row.quiet_end is not None and row.quiet_timezone:
        quiet = {
            "start": format_hhmm(row.quiet_start),
            "end": format_hhmm(row.quiet_end),
            "timezone": row.quiet_timezone,
        }
    return PreferencesView(
        push=row.push,
        email=row.email,
        email_address=row.email_address,
        quiet_hours=quiet,
        digest_enabled=row.digest_enabled,
        digest_time=row.digest_time,
        digest_timezone=row.digest_timezone,
    )


def _users(user_ids: Sequence[str]) -> Any:
    return any_(bindparam("user_ids", sorted(set(user_ids)), type_=ARRAY(String)))


async def get_preferences(session: AsyncSession, *, user_id: str) -> PreferencesView:
    return _view(await session.get(P, user_id))


async def update_preferences(
    session: AsyncSession, *, user_id: str, changes: dict[str, Any], now: datetime
) -> PreferencesView:
    """Apply a partial update (contract field names, already validated) and reschedule the
    digest when its switch, time or zone changed."""
    row = await session.get(P, user_id, with_for_update=True)
    if row is None:
        await session.execute(insert(P).values(user_id=user_id).on_conflict_do_nothing())
        row = await session.get(P, user_id, with_for_update=True, populate_existing=True)
        assert row is not None
    for name in ("push", "email", "email_address"):
        if name in changes:
            setattr(row, name, changes[name])
    if "quiet_hours" in changes:
        quiet = changes["quiet_hours"]
        row.quiet_start = parse_hhmm(quiet["start"]) if quiet else None
        row.quiet_end = parse_hhmm(quiet["end"]) if quiet else None
        row.quiet_timezone = quiet["timezone"] if quiet else None
    digest = changes.get("digest") or {}
    if digest:
        if "enabled" in digest:
            row.digest_enabled = digest["enabled"]
        if "time" in digest:
            row.digest_time = parse_hhmm(digest["time"])
        if "timezone" in digest:
            row.digest_timezone = digest["timezone"]
        row.digest_next_at = (
            next_digest_at(now, at=row.digest_time, tz=zone_or_utc(row.digest_timezone))
            if row.digest_enabled
            else None
        )
    await session.flush()
    return _view(row)


async def remember_email_claim(session: AsyncSession, *, user_id: str, email: str) -> None:
    """Store the JWT `email` claim; writes nothing when it is already the stored one."""
    statement = insert(P).values(user_id=user_id, claim_email=email)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[P.user_id],
            set_={"claim_email": statement.excluded.claim_email},
            where=P.claim_email.is_distinct_from(statement.excluded.claim_email),
        )
    )


async def push_blockers(
    session: AsyncSession, *, user_ids: Sequence[str], now: datetime
) -> dict[str, PushBlock]:
    """Recipients whose preferences stop a push now, with the first reason (`push_disabled`
    before `quiet_hours`, the contract's order). One query; users absent from the answer may
    be pushed. `high` notifications ignore QUIET_HOURS (the caller decides that)."""
    if not user_ids:
        return {}
    rows = await session.execute(
        select(P.user_id, P.push, P.quiet_start, P.quiet_end, P.quiet_timezone).where(
            P.user_id == _users(user_ids),
            or_(~P.push, P.quiet_start.is_not(None)),
        )
    )
    blocked: dict[str, PushBlock] = {}
    for row in rows:
        if not row.push:
            blocked[row.user_id] = PushBlock.PUSH_DISABLED
        elif _quiet_now(row, now):
            blocked[row.user_id] = PushBlock.QUIET_HOURS
    return blocked


def _quiet_now(row: Any, now: datetime) -> bool:
    if row.quiet_start is None or row.quiet_end is None or not row.quiet_timezone:
        return False
    return in_quiet_hours(
        now, start=row.quiet_start, end=row.quiet_end, tz=zone_or_utc(row.quiet_timezone)
    )


async def email_recipients(session: AsyncSession, *, user_ids: Sequence[str]) -> dict[str, str]:
    """Who of `user_ids` gets email, and at which address: `email: true` and an address (their
    own, else their JWT's `email` claim). One query; users never seen have no address."""
    if not user_ids:
        return {}
    address = func.coalesce(P.email_address, P.claim_email)
    rows = await session.execute(
        select(P.user_id, address.label("address")).where(
            P.user_id == _users(user_ids), P.email, address.is_not(None)
        )
    )
    return {row.user_id: row.address for row in rows}


@dataclass(frozen=True, slots=True)
class DueDigest:
    user_id: str
    due_at: datetime
    at: time
    timezone: str
    address: str | None  # None when the user has email off or no address at all


async def claim_due_digests(session: AsyncSession, *, now: datetime, limit: int) -> list[DueDigest]:
    """Users whose digest is due, locked for this transaction (`SKIP LOCKED`: instances share
    the work). The caller must `reschedule_digests` every one of them before committing."""
    address = func.coalesce(P.email_address, P.claim_email)
    rows = await session.execute(
        select(P.user_id, P.digest_next_at, P.digest_time, P.digest_timezone, P.email, address)
        .where(P.digest_enabled, P.digest_next_at <= now)
        .order_by(P.digest_next_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [
        DueDigest(
            user_id=row[0],
            due_at=row[1],
            at=row[2],
            timezone=row[3],
            address=row[5] if row[4] else None,
        )
        for row in rows
    ]


async def reschedule_digests(session: AsyncSession, *, next_at: dict[str, datetime]) -> None:
    """Set each user's next digest instant (one statement)."""
    if not next_at:
        return
    users = list(next_at)
    await session.execute(
        text(
            """
            UPDATE notification_preferences AS p SET digest_next_at = r.next_at
            FROM unnest(CAST(:users AS varchar[]), CAST(:next_at AS timestamptz[]))
                AS r(user_id, next_at)
            WHERE p.user_id = r.user_id
            """
        ),
        {"users": users, "next_at": [next_at[u] for u in users]},
    )


async def digest_addresses(
    session: AsyncSession, *, user_ids: Sequence[str]
) -> dict[str, tuple[str, str]]:
    """For `messenger digest --user`: user → (address, digest time zone) of those who get email."""
    if not user_ids:
        return {}
    address = func.coalesce(P.email_address, P.claim_email)
    rows = await session.execute(
        select(P.user_id, address, P.digest_timezone).where(
            P.user_id == _users(user_ids), P.email, address.is_not(None)
        )
    )
    return {row[0]: (row[1], row[2]) for row in rows}
