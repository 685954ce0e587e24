"""Push functions other packages call (they never touch the push tables themselves)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.conversations.read_state import ReadMove
from backend.app.messenger.push import clear_on_read, repository


async def stop_pending_pushes(
    session: AsyncSession, *, device_ids: Sequence[int], reason: str
) -> int:
    """Every push still pending for these devices ends as `failed` (e.g. the token moved to
    another user: nothing meant for its previous owner may reach it). Returns how many."""
    return await repository.cancel_pending_for_devices(
        session, device_ids=device_ids, reason=reason
    )


async def clear_after_read(session: AsyncSession, *, move: ReadMove | None) -> int | None:
    """In the read's transaction: queue the silent clear-on-read push for the reader's devices
    that pushes of the passed messages reached. Returns the job to kick after the commit."""
    if move is None:
        return None
    return await clear_on_read.enqueue_clear(session, move=move)
