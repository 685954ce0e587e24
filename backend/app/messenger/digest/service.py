"""The daily digest engine: claim due users in batches, decide, record, queue the emails.

One batch is one transaction: the claimed preference rows stay locked (`SKIP LOCKED` lets
other instances take other users), the scheduled `digest_runs` row (unique per user and
local day) and the email are written together, and every claimed user is rescheduled to
their next local digest time. A crash anywhere rolls the whole batch back to "due".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.config import Settings
from backend.app.messenger.digest.content import UnreadSummary, digest_email
from backend.app.messenger.digest.models import DigestRun
from backend.app.messenger.digest.sources import UnreadSource
from backend.app.messenger.email.service import NewEmail, enqueue_many
from backend.app.messenger.email.vocabulary import EmailKind
from backend.app.messenger.preferences import service as preferences
from backend.app.messenger.preferences.timing import (
    local_date,
    next_digest_at,
    occurrence,
    zone_or_utc,
)


@dataclass(frozen=True, slots=True)
class BatchResult:
    claimed: int
    email_ids: list[int]


# The day's scheduled digest, at most one per user and local day (the partial unique index).
_RECORD_SCHEDULED = text(
    """
    INSERT INTO digest_runs (user_id, local_date, scheduled, listed_until)
    SELECT user_id, local_date, true, listed_until
      FROM unnest(CAST(:users AS varchar[]), CAST(:dates AS date[]),
                  CAST(:listed AS timestamptz[])) AS r(user_id, local_date, listed_until)
    ON CONFLICT (user_id, local_date) WHERE scheduled DO NOTHING
    RETURNING user_id, id
    """
)

_LISTED_UNTIL = text(
    """
    SELECT u.user_id,
           (SELECT r.listed_until FROM digest_runs AS r
             WHERE r.user_id = u.user_id ORDER BY r.id DESC LIMIT 1) AS listed_until
      FROM unnest(CAST(:users AS varchar[])) AS u(user_id)
    """
)


async def _listed_until(session: AsyncSession, *, user_ids: Sequence[str]) -> dict[str, datetime]:
    """Newest item each user's latest digest listed (one query, one index probe per user)."""
    rows = await session.execute(_LISTED_UNTIL, {"users": list(user_ids)})
    return {row.user_id: row.listed_until for row in rows if row.listed_until is not None}


def _email(
    settings: Settings, user_id: str, address: str, summary: UnreadSummary, dedupe_key: str | None
) -> NewEmail:
    subject, context = digest_email(summary, include_content=settings.push_include_content)
    return NewEmail(EmailKind.DIGEST, user_id, address, subject, "digest", context, dedupe_key)


async def process_due_batch(
    session: AsyncSession, settings: Settings, *, source: UnreadSource, now: datetime
) -> BatchResult:
    due = await preferences.claim_due_digests(session, now=now, limit=settings.digest_batch_size)
    if not due:
        return BatchResult(0, [])
    next_at: dict[str, datetime] = {}
    candidates: dict[str, tuple[str, date]] = {}
    for item in due:
        tz = zone_or_utc(item.timezone)
        day = local_date(item.due_at, tz)
        if local_date(now, tz) != day:
            # Every instance was down for the user's whole local day: that digest is skipped.
            next_at[item.user_id] = next_digest_at(now, at=item.at, tz=tz)
            continue
        next_at[item.user_id] = occurrence(day + timedelta(days=1), item.at, tz)
        if item.address is not None:
            candidates[item.user_id] = (item.address, day)
    email_ids: list[int] = []
    if candidates:
        listed = await _listed_until(session, user_ids=list(candidates))
        summaries = await source.unread(session, user_ids=list(candidates))
        news = {
            user: summary
            for user, summary in summaries.items()
            if user in candidates and summary.has_news_since(listed.get(user))
        }
        if news:
            recorded = await session.execute(
                _RECORD_SCHEDULED,
                {
                    "users": list(news),
                    "dates": [candidates[user][1] for user in news],
                    "listed": [summary.newest_at for summary in news.values()],
                },
            )
            first_today = dict(recorded.all())
            email_ids = await enqueue_many(
                session,
                settings,
                [
                    _email(
                        settings,
                        user,
                        candidates[user][0],
                        news[user],
                        f"digest-run:{first_today[user]}",
                    )
                    for user in news
                    if user in first_today
                ],
            )
    await preferences.reschedule_digests(session, next_at=next_at)
    return BatchResult(len(due), email_ids)


async def send_digest_now(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: str,
    source: UnreadSource,
    now: datetime,
) -> int | None:
    """`messenger digest --user`: queue the user's digest now if anything is unread (whatever
    earlier digests listed). Returns the email id, or None when there is nothing to send (or
    nowhere to send it). It does not use up the day's scheduled digest."""
    if not settings.email_enabled:
        return None
    address = (await preferences.digest_addresses(session, user_ids=[user_id])).get(user_id)
    if address is None:
        return None
    summary = (await source.unread(session, user_ids=[user_id])).get(user_id)
    if summary is None or summary.newest_at is None:
        return None
    to, timezone_name = address
    session.add(
        DigestRun(
            user_id=user_id,
            local_date=local_date(now, zone_or_utc(timezone_name)),
            scheduled=False,
            listed_until=summary.newest_at,
        )
    )
    ids = await enqueue_many(session, settings, [_email(settings, user_id, to, summary, None)])
    return ids[0] if ids else None


RUN_RETENTION_DAYS = 35

# Old digest records go, except each user's latest (it holds what the next digest must beat).
_PURGE_RUNS = text(
    """
    DELETE FROM digest_runs WHERE id IN (
        SELECT r.id FROM digest_runs AS r
        WHERE r.created_at < now() - make_interval(days => :keep)
          AND EXISTS (SELECT 1 FROM digest_runs AS newer
                       WHERE newer.user_id = r.user_id AND newer.id > r.id)
        LIMIT :limit
    )
    """
)


async def purge_old_runs(session: AsyncSession, *, limit: int) -> int:
    result = await session.execute(_PURGE_RUNS, {"keep": RUN_RETENTION_DAYS, "limit": limit})
    return result.rowcount  # type: ignore[attr-defined,no-any-return]
