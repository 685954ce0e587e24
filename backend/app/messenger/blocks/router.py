from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from backend.app.auth import CurrentUserDep
from backend.app.db import SessionDep
from backend.app.errors import unprocessable
from backend.app.messenger.blocks import service
from backend.app.messenger.blocks.schemas import BlockList, BlockState

router = APIRouter(tags=["blocks"])
BlockedUserId = Annotated[str, Path(min_length=1, max_length=64)]


@router.put("/blocks/{user_id}", response_model=BlockState)
async def block_user(
    user_id: BlockedUserId, user: CurrentUserDep, session: SessionDep
) -> BlockState:
    """Idempotent. The blocked user can no longer add the caller to conversations, their
    messages push nothing to the caller, and the caller's presence reads offline to them."""
    try:
        await service.block(session, blocker_id=user.id, blocked_id=user_id)
    except service.CannotBlockSelf as exc:
        raise unprocessable(("path", "user_id"), str(exc)) from exc
    return BlockState(user_id=user_id, blocked=True)


@router.delete("/blocks/{user_id}", response_model=BlockState)
async def unblock_user(
    user_id: BlockedUserId, user: CurrentUserDep, session: SessionDep
) -> BlockState:
    """Idempotent: unblocking someone who is not blocked answers the same."""
    await service.unblock(session, blocker_id=user.id, blocked_id=user_id)
    return BlockState(user_id=user_id, blocked=False)


@router.get("/blocks", response_model=BlockList)
async def list_blocks(user: CurrentUserDep, session: SessionDep) -> BlockList:
    return BlockList(user_ids=await service.blocked_by(session, blocker_id=user.id))
