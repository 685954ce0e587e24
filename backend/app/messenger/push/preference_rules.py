"""The `push_disabled` and `quiet_hours` skip rules, from the preferences package's one
set-based query (`push_blockers`) per fan-out, registered as `FanOutPolicy` filters.

The policy applies its filters in the contract's order (push_disabled, blocked,
quiet_hours); the answer of the first call is kept for the second so a fan-out asks once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.preferences.service import PushBlock, push_blockers
from backend.app.messenger.push.repository import JobRow
from backend.app.messenger.push.vocabulary import Priority, PushKind

# Fan-out kinds whose recipients' preferences apply (clear and test pushes never fan out here).
PREFERENCE_AWARE = frozenset({PushKind.MESSAGE, PushKind.NOTIFICATION})


def quiet_hours_apply(job: JobRow) -> bool:
    """Messages, and notification-center pushes unless `high` (the contract)."""
    if job.kind is PushKind.MESSAGE:
        return True
    if job.kind is PushKind.NOTIFICATION and job.recipient_ids is not None:
        return job.priority is not Priority.HIGH
    return False


class PreferenceRules:
    def __init__(self) -> None:
        self._last: tuple[int, dict[str, PushBlock]] | None = None  # (job id, its answer)

    async def _blockers(
        self, session: AsyncSession, job: JobRow, user_ids: list[str]
    ) -> dict[str, PushBlock]:
        if self._last is not None and self._last[0] == job.id:
            return self._last[1]
        blockers = await push_blockers(session, user_ids=user_ids, now=datetime.now(UTC))
        self._last = (job.id, blockers)
        return blockers

    async def push_disabled(
        self, session: AsyncSession, job: JobRow, user_ids: list[str]
    ) -> set[str]:
        if job.kind not in PREFERENCE_AWARE:
            return set()
        self._last = None  # a new fan-out (or a retried one) asks afresh
        blockers = await self._blockers(session, job, user_ids)
        return {u for u in user_ids if blockers.get(u) is PushBlock.PUSH_DISABLED}

    async def quiet_hours(
        self, session: AsyncSession, job: JobRow, user_ids: list[str]
    ) -> set[str]:
        if not quiet_hours_apply(job):
            return set()
        blockers = await self._blockers(session, job, user_ids)
        self._last = None
        return {u for u in user_ids if blockers.get(u) is PushBlock.QUIET_HOURS}
