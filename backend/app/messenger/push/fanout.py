"""Who gets a push, and why not: the recipient policy, per push kind.

1. `candidates` (database only): who the job is for, one page at a time in user id order (so
   a fan-out's transactions and its first push never wait on the whole audience), minus those
   skipped by the database rules in the contract's order: muted, push_disabled, then every registered
   `RecipientFilter` (the seam for blocked / push_disabled preferences / quiet_hours, each a
   set-based service function of its own package: one query for all candidates).
2. `drop_online` (Redis only, no transaction open): one round trip for their presence.
3. `no_devices` is counted when the deliveries are created (see `delivery_plan`).
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.blocks.service import users_blocking
from backend.app.messenger.conversations.notification_settings import recipient_settings
from backend.app.messenger.presence import online_user_ids
from backend.app.messenger.push.preference_rules import PreferenceRules
from backend.app.messenger.push.repository import JobRow
from backend.app.messenger.push.vocabulary import Priority, PushKind, SkipReason
from backend.app.messenger.read_state.unread import unread_badges
from backend.app.metrics import PUSH_SKIPPED
from backend.app.redis_client import RedisClient

log = logging.getLogger(__name__)

# (session, job, candidate user ids) -> the ids to skip for this filter's reason.
RecipientFilter = Callable[[AsyncSession, JobRow, list[str]], Awaitable[set[str]]]

# Kinds whose recipients are skipped while online (`active`). Test pushes and
# `/internal/notify` go out regardless of presence.
PRESENCE_AWARE = frozenset({PushKind.MESSAGE})


def presence_applies(job: JobRow) -> bool:
    """Message pushes skip active recipients; so do notification-center pushes (a set of
    recipients) unless their priority is high. `/internal/notify` and test pushes never do."""
    if job.kind is PushKind.NOTIFICATION and job.recipient_ids is not None:
        return job.priority is not Priority.HIGH
    return job.kind in PRESENCE_AWARE


# Kinds whose skips feed `messenger_push_skipped_total` (the contract counts message recipients).
COUNTED = frozenset({PushKind.MESSAGE})
# Kinds whose pushes carry the recipient's unread total (the app badge).
BADGED = frozenset({PushKind.MESSAGE})


@dataclass(slots=True)
class Audience:
    job: JobRow
    user_ids: list[str]
    skipped: Counter[SkipReason] = field(default_factory=Counter)
    next_after: str | None = None  # where the next page starts; None: this was the last

    def skip(self, reason: SkipReason, user_ids: set[str]) -> None:
        if user_ids:
            self.skipped[reason] += len(user_ids)
            self.user_ids = [u for u in self.user_ids if u not in user_ids]

    def count_skips(self) -> None:
        if self.job.kind in COUNTED:
            for reason, count in self.skipped.items():
                PUSH_SKIPPED.labels(reason.value).inc(count)


async def blocked_the_sender(session: AsyncSession, job: JobRow, user_ids: list[str]) -> set[str]:
    """Recipients of a message who blocked its sender (the blocks package's one query)."""
    if job.kind is not PushKind.MESSAGE or job.sender_id is None:
        return set()
    return await users_blocking(session, blocked_id=job.sender_id, candidates=user_ids)


class FanOutPolicy:
    def __init__(
        self, filters: dict[SkipReason, RecipientFilter] | None = None, *, with_badges: bool = True
    ) -> None:
        self.with_badges = with_badges  # off only to measure the badge's cost (bench)
        # Applied in the contract's order of skip reasons, whatever the registration order.
        preferences = PreferenceRules()
        self.filters: dict[SkipReason, RecipientFilter] = (
            {
                SkipReason.PUSH_DISABLED: preferences.push_disabled,
                SkipReason.BLOCKED: blocked_the_sender,
                SkipReason.QUIET_HOURS: preferences.quiet_hours,
            }
            if filters is None
            else dict(filters)
        )

    def register(self, reason: SkipReason, recipient_filter: RecipientFilter) -> None:
        """Plug in another package's set-based rule (e.g. blocks, quiet hours)."""
        self.filters[reason] = recipient_filter

    async def candidates(
        self, session: AsyncSession, job: JobRow, *, after: str = "", limit: int | None = None
    ) -> Audience:
        """The page of `limit` recipients (in user id order) after `after`; all without a limit."""
        if job.kind is PushKind.MESSAGE:
            if job.conversation_id is None or job.sender_id is None:
                raise ValueError(f"message push job {job.id} names no conversation or sender")
            rows = await recipient_settings(
                session,
                conversation_id=job.conversation_id,
                sender_id=job.sender_id,
                after=after,
                limit=limit,
            )
            audience = Audience(job, [r.user_id for r in rows])
            if limit is not None and len(rows) == limit:
                audience.next_after = rows[-1].user_id
            audience.skip(SkipReason.MUTED, {r.user_id for r in rows if r.muted})
            audience.skip(
                SkipReason.PUSH_DISABLED,
                {r.user_id for r in rows if not r.muted and not r.push_enabled},
            )
        else:
            targets = job.recipient_ids or ([job.target_user_id] if job.target_user_id else [])
            ordered = sorted(set(targets))
            start = bisect_right(ordered, after)
            end = len(ordered) if limit is None else start + limit
            audience = Audience(job, ordered[start:end])
            if end < len(ordered):
                audience.next_after = ordered[end - 1]
        for reason in SkipReason:  # enum order is the contract's order
            recipient_filter = self.filters.get(reason)
            if recipient_filter is not None and audience.user_ids:
                audience.skip(reason, await recipient_filter(session, job, audience.user_ids))
        return audience

    async def drop_online(self, redis: RedisClient, audience: Audience) -> Audience:
        if not presence_applies(audience.job) or not audience.user_ids:
            return audience
        try:
            online = await online_user_ids(redis, audience.user_ids)
        except (RedisError, OSError, TimeoutError) as exc:
            # Better a push to someone who is online than a lost one.
            log.warning("presence unavailable, pushing to every recipient: %s", exc)
            return audience
        audience.skip(SkipReason.ONLINE, set(online))
        return audience

    async def badges(self, session: AsyncSession, audience: Audience) -> dict[str, int] | None:
        """Every remaining recipient's unread total for kinds that carry a badge: one
        set-based pass for all of them (read positions + inbox), in the delivery transaction."""
        if audience.job.kind not in BADGED or not audience.user_ids or not self.with_badges:
            return None
        return await unread_badges(session, user_ids=audience.user_ids)

    @staticmethod
    def delivery_plan(audience: Audience, with_devices: set[str]) -> None:
        """Count those left without a device, then publish the skip counts."""
        audience.skip(SkipReason.NO_DEVICES, set(audience.user_ids) - with_devices)
        audience.count_skips()
