"""Blocks: set-based lookups for the rules that depend on them (never one query per user).

Functions take the session and explicit arguments and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import String, any_, bindparam, delete, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.blocks.models import Block


class CannotBlockSelf(ValueError):
    pass


async def block(session: AsyncSession, *, blocker_id: str, blocked_id: str) -> None:
    """Idempotent."""
    if blocker_id == blocked_id:
        raise CannotBlockSelf("you cannot block yourself")
    await session.execute(
        insert(Block)
        .values(blocker_id=blocker_id, blocked_id=blocked_id)
        .on_conflict_do_nothing(index_elements=[Block.blocker_id, Block.blocked_id])
    )


async def unblock(session: AsyncSession, *, blocker_id: str, blocked_id: str) -> None:
    """Idempotent."""
    await session.execute(
        delete(Block).where(Block.blocker_id == blocker_id, Block.blocked_id == blocked_id)
    )


async def blocked_by(session: AsyncSession, *, blocker_id: str) -> list[str]:
    """Whom this user blocked, sorted."""
    rows = await session.scalars(
        select(Block.blocked_id).where(Block.blocker_id == blocker_id).order_by(Block.blocked_id)
    )
    return list(rows)


def _ids(name: str, values: Sequence[str]):  # type: ignore[no-untyped-def]
    return any_(bindparam(name, sorted(set(values)), type_=ARRAY(String)))


async def users_blocking(
    session: AsyncSession, *, blocked_id: str, candidates: Sequence[str]
) -> set[str]:
    """Which of the candidates blocked `blocked_id` (one query). Push fan-out uses it for the
    `blocked` skip reason; adding participants uses it to leave blockers out."""
    if not candidates:
        return set()
    rows = await session.scalars(
        select(Block.blocker_id).where(
            Block.blocked_id == blocked_id, Block.blocker_id == _ids("candidates", candidates)
        )
    )
    return set(rows)
