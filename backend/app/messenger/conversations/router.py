from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from backend.app.auth import CurrentUserDep
from backend.app.db import SessionDep
from backend.app.errors import unprocessable
from backend.app.messenger.conversations import notification_settings, participants, service
from backend.app.messenger.conversations.cursor import InvalidCursor, decode_cursor, encode_cursor
from backend.app.messenger.conversations.schemas import (
    AddParticipantsRequest,
    ConversationList,
    ConversationOut,
    CreateConversationRequest,
    LeaveResponse,
    NotificationSettings,
    NotificationSettingsUpdate,
)
from backend.app.messenger.conversations.service import ConversationView
from backend.app.ratelimit import Limit, enforce_rate_limit, user_key
from backend.app.runtime import Runtime, RuntimeDep

router = APIRouter(tags=["conversations"])
NOT_FOUND = {404: {"description": "No such conversation, or the caller is not a participant"}}
CHANGE_RESPONSES = {
    422: {"description": "Invalid body, or the conversation would pass MAX_PARTICIPANTS"},
    429: {"description": "More than CONVERSATION_RATE_PER_MINUTE creations/additions"},
}


def _out(view: ConversationView) -> ConversationOut:
    return ConversationOut(
        id=view.id,
        title=view.title,
        participant_ids=view.participant_ids,
        created_at=view.created_at,
        unread_count=view.unread_count,
        last_read_message_id=view.last_read_message_id,
    )


async def _count_change(rt: Runtime, user_id: str) -> None:
    """Creations and participant additions share one per-user limit (push-spam guard)."""
    await enforce_rate_limit(
        rt.redis,
        key=user_key(Limit.CONVERSATION_CHANGE, user_id),
        limit=rt.settings.conversation_rate_per_minute,
    )


def _too_many(exc: service.TooManyParticipants, field: str) -> HTTPException:
    return unprocessable(("body", field), str(exc))


@router.post(
    "/conversations",
    response_model=ConversationOut,
    status_code=status.HTTP_201_CREATED,
    responses=CHANGE_RESPONSES,
)
async def create_conversation(
    body: CreateConversationRequest, rt: RuntimeDep, user: CurrentUserDep, session: SessionDep
) -> ConversationOut:
    """The caller is always a participant, whether listed or not. Users who blocked the
    caller are left out silently; `participant_ids` shows who is really in."""
    await _count_change(rt, user.id)
    try:
        view = await service.create_conversation(
            session,
            creator_id=user.id,
            title=body.title,
            participant_ids=body.participant_ids,
            max_participants=rt.settings.max_participants,
        )
    except service.TooManyParticipants as exc:
        raise _too_many(exc, "participant_ids") from exc
    return _out(view)


@router.get("/conversations", response_model=ConversationList)
async def list_conversations(
    user: CurrentUserDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ConversationList:
    """The caller's conversations, newest activity (last message, else creation) first,
    `limit` per page. Pass `next_cursor` as `cursor` for the next page; null on the last."""
    try:
        after = decode_cursor(cursor) if cursor else None
    except InvalidCursor as exc:
        raise unprocessable(("query", "cursor"), str(exc)) from exc
    views, next_cursor = await service.list_conversations(
        session, user_id=user.id, limit=limit, after=after
    )
    return ConversationList(
        conversations=[_out(v) for v in views],
        next_cursor=encode_cursor(next_cursor) if next_cursor else None,
    )


@router.get("/conversations/{conversation_id}", response_model=ConversationOut, responses=NOT_FOUND)
async def get_conversation(
    conversation_id: uuid.UUID, user: CurrentUserDep, session: SessionDep
) -> ConversationOut:
    view = await service.get_conversation(session, conversation_id=conversation_id, user_id=user.id)
    return _out(view)


@router.post(
    "/conversations/{conversation_id}/participants",
    response_model=ConversationOut,
    responses={**NOT_FOUND, **CHANGE_RESPONSES},
)
async def add_participants(
    conversation_id: uuid.UUID,
    body: AddParticipantsRequest,
    rt: RuntimeDep,
    user: CurrentUserDep,
    session: SessionDep,
) -> ConversationOut:
    """Add users to a conversation (an extension beyond the contract).

    Any participant may add others; users already in it are left untouched (their
    notification settings are kept). Answers 200 with the updated conversation; 404 when
    the conversation is unknown or the caller is not a participant. Users who blocked the
    caller are left out silently; past MAX_PARTICIPANTS it is 422 and nothing changes.
    """
    await _count_change(rt, user.id)
    try:
        view = await participants.add_participants(
            session,
            conversation_id=conversation_id,
            user_id=user.id,
            new_user_ids=body.user_ids,
            max_participants=rt.settings.max_participants,
        )
    except service.TooManyParticipants as exc:
        raise _too_many(exc, "user_ids") from exc
    return _out(view)


@router.delete(
    "/conversations/{conversation_id}/participants/me",
    response_model=LeaveResponse,
    responses=NOT_FOUND,
)
async def leave_conversation(
    conversation_id: uuid.UUID, user: CurrentUserDep, session: SessionDep
) -> LeaveResponse:
    """The caller leaves: the conversation becomes 404 for them and leaves their list, and
    they get no more events or pushes from it. Another participant may add them again."""
    await participants.leave_conversation(session, conversation_id=conversation_id, user_id=user.id)
    return LeaveResponse(left=True)


@router.get(
    "/conversations/{conversation_id}/notification-settings",
    response_model=NotificationSettings,
    responses=NOT_FOUND,
)
async def get_notification_settings(
    conversation_id: uuid.UUID, user: CurrentUserDep, session: SessionDep
) -> NotificationSettings:
    """The caller's settings for this conversation. `muted` is the mute in effect now:
    a `muted_until` in the past reads as `muted: false`."""
    view = await notification_settings.get_notification_settings(
        session, conversation_id=conversation_id, user_id=user.id
    )
    return NotificationSettings(
        muted=view.muted, muted_until=view.muted_until, push_enabled=view.push_enabled
    )


@router.put(
    "/conversations/{conversation_id}/notification-settings",
    response_model=NotificationSettings,
    responses=NOT_FOUND,
)
async def update_notification_settings(
    conversation_id: uuid.UUID,
    body: NotificationSettingsUpdate,
    user: CurrentUserDep,
    session: SessionDep,
) -> NotificationSettings:
    """Partial update of the caller's settings; fields left out keep their value.

    Mute rule: when `muted_until` is set, muted while it is in the future (a past one
    means not muted); when it is null, `muted` decides (indefinite mute). `muted: false`
    also clears `muted_until`; `muted_until` sent without `muted` means "mute until then".
    A `muted_until` without an offset is read as UTC. Answers with the settings now in
    effect.
    """
    view = await notification_settings.update_notification_settings(
        session, conversation_id=conversation_id, user_id=user.id, changes=body.changes()
    )
    return NotificationSettings(
        muted=view.muted, muted_until=view.muted_until, push_enabled=view.push_enabled
    )
