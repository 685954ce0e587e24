"""Skip filters from the users' notification preferences (`push: false`, quiet hours), one
`preferences.service.push_blockers` query for all candidates of a job.

Applied to notification-center pushes (kind `notification` with a recipient set; not
`/internal/notify`, which names one user directly). `push: false` stops every such push;
quiet hours stop normal and low priority ones, never `high`. Message pushes get the same
rules by adding `PushKind.MESSAGE` to `PREFERENCE_AWARE` (the message-push integration).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.preferences.service import PushBlock, push_blockers
from backend.app.messenger.push.repository import JobRow
from backend.app.messenger.push.vocabulary import Priority, PushKind

PREFERENCE_AWARE = frozenset({PushKind.NOTIFICATION})


def _applies(job: JobRow) -> bool:
    if job.kind is PushKind.NOTIFICATION:
        return job.recipient_ids is not None
    return job.kind in PREFERENCE_AWARE


async def push_disabled_by_preference(
    session: AsyncSession, job: JobRow, user_ids: list[str]
) -> set[str]:
    if not _applies(job):
        return set()
    blocked = await push_blockers(session, user_ids=user_ids, now=datetime.now(UTC))
    return {u for u, reason in blocked.items() if reason is PushBlock.PUSH_DISABLED}


async def in_quiet_hours(session: AsyncSession, job: JobRow, user_ids: list[str]) -> set[str]:
    if not _applies(job) or (job.kind is PushKind.NOTIFICATION and job.priority is Priority.HIGH):
        return set()
    blocked = await push_blockers(session, user_ids=user_ids, now=datetime.now(UTC))
    return {u for u, reason in blocked.items() if reason is PushBlock.QUIET_HOURS}
