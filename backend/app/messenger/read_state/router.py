"""`POST /conversations/{id}/read` and `GET /unread`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, BackgroundTasks

from backend.app.auth import CurrentUserDep
from backend.app.db import SessionDep
from backend.app.errors import unprocessable
from backend.app.messenger.conversations import read_state
from backend.app.messenger.push import service as push_service
from backend.app.messenger.read_state.events import announce_read
from backend.app.messenger.read_state.schemas import ReadRequest, ReadStateOut, UnreadSummary
from backend.app.messenger.read_state.unread import unread_summary
from backend.app.runtime import RuntimeDep

router = APIRouter(tags=["read state"])


@router.post(
    "/conversations/{conversation_id}/read",
    response_model=ReadStateOut,
    responses={
        404: {"description": "No such conversation, or the caller is not a participant"},
        422: {"description": "`up_to` is not a message of this conversation"},
    },
)
async def mark_read(
    conversation_id: uuid.UUID,
    body: ReadRequest,
    rt: RuntimeDep,
    background: BackgroundTasks,
    user: CurrentUserDep,
    session: SessionDep,
) -> ReadStateOut:
    """Move the caller's read position forward to `up_to` (an older one changes nothing
    and answers the current state). Every open WebSocket connection of the caller gets
    `conversation.read` with the same state."""
    try:
        result = await read_state.mark_read(
            session, conversation_id=conversation_id, user_id=user.id, up_to=body.up_to
        )
    except read_state.MessageNotInConversation as exc:
        raise unprocessable(
            ("body", "up_to"), "up_to is not a message of this conversation"
        ) from exc
    clear_job_id = await push_service.clear_after_read(session, move=result.move)
    # Background tasks run after the response, hence after the session dependency committed.
    background.add_task(
        announce_read, rt, user_id=user.id, result=result, clear_job_id=clear_job_id
    )
    return ReadStateOut(
        conversation_id=result.conversation_id,
        last_read_message_id=result.last_read_message_id,
        unread_count=result.unread_count,
    )


@router.get("/unread", response_model=UnreadSummary)
async def get_unread(user: CurrentUserDep, session: SessionDep) -> UnreadSummary:
    """Unread messages per conversation (only those with some) and unread inbox
    notifications; `total` is their sum. O(the caller's conversations)."""
    view = await unread_summary(session, user_id=user.id)
    return UnreadSummary(
        total=view.total,
        conversations={str(cid): n for cid, n in view.conversations.items()},
        notifications=view.notifications,
    )
