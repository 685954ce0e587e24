from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import (
    APIRouter,
    BackgroundTasks,
    HTTPException,
    Query,
    Response,
    status,
)

from backend.app.auth import CurrentUserDep
from backend.app.db import AutocommitSessionDep, SessionDep
from backend.app.errors import unprocessable
from backend.app.messenger.messages import service
from backend.app.messenger.messages.events import announce_message
from backend.app.messenger.messages.schemas import MessageOut, MessagePage, SendMessageRequest
from backend.app.ratelimit import Limit, enforce_rate_limit, user_key
from backend.app.runtime import RuntimeDep

router = APIRouter(tags=["messages"])
NOT_FOUND = {404: {"description": "No such conversation, or the caller is not a participant"}}


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=MessageOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": MessageOut, "description": "Repeated client_msg_id: the original message"},
        409: {"description": "client_msg_id already used by the caller in another conversation"},
        429: {"description": "More than MESSAGE_RATE_PER_MINUTE sends in a minute"},
        **NOT_FOUND,
    },
)
async def send_message(
    conversation_id: uuid.UUID,
    body: SendMessageRequest,
    rt: RuntimeDep,
    response: Response,
    background: BackgroundTasks,
    user: CurrentUserDep,
    session: AutocommitSessionDep,
) -> MessageOut:
    """Store a message; participants' open WebSocket connections get `message.new`
    (the caller's included) and offline participants a push.

    Repeating a `client_msg_id` answers 200 with the original message and sends nothing.
    Sends over REST and WebSocket share one per-user limit (`MESSAGE_RATE_PER_MINUTE`).
    """
    await enforce_rate_limit(
        rt.redis,
        key=user_key(Limit.MESSAGE_SEND, user.id),
        limit=rt.settings.message_rate_per_minute,
    )
    try:
        sent = await service.send_message(
            session,
            conversation_id=conversation_id,
            sender=user,
            content=body.content,
            client_msg_id=body.client_msg_id,
            include_content=rt.settings.push_include_content,
        )
    except service.ClientMsgIdConflict as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "client_msg_id was already used for a message in another conversation",
        ) from exc
    if not sent.created:
        response.status_code = status.HTTP_200_OK
    else:
        # Background tasks run after the response, hence after the message committed.
        background.add_task(announce_message, rt, sent)
    return MessageOut.of(sent.message)


@router.get(
    "/conversations/{conversation_id}/messages", response_model=MessagePage, responses=NOT_FOUND
)
async def list_messages(
    conversation_id: uuid.UUID,
    user: CurrentUserDep,
    session: SessionDep,
    before: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> MessagePage:
    """Newest first, strictly older than the message `before`. `next_before` is the last
    message's id when the page is full (pass it as `before` for the next page), else null.
    A `before` that is no message of this conversation is a 422."""
    try:
        messages = await service.list_messages(
            session, conversation_id=conversation_id, user_id=user.id, before=before, limit=limit
        )
    except service.UnknownCursor as exc:
        raise unprocessable(
            ("query", "before"), "before is not a message of this conversation"
        ) from exc
    return MessagePage(
        messages=[MessageOut.of(m) for m in messages],
        next_before=messages[-1].id if len(messages) == limit else None,
    )
