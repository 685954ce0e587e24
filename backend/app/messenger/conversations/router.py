from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from backend.app.auth import CurrentUserDep
from backend.app.db import SessionDep
from backend.app.messenger.conversations import service
from backend.app.messenger.conversations.schemas import (
    AddParticipantsRequest,
    ConversationList,
    ConversationOut,
    CreateConversationRequest,
    NotificationSettings,
    NotificationSettingsUpdate,
)
from backend.app.messenger.conversations.service import ConversationView

router = APIRouter(tags=["conversations"])
NOT_FOUND = {404: {"description": "No such conversation, or the caller is not a participant"}}


def _out(view: ConversationView) -> ConversationOut:
    return ConversationOut(
        id=view.id,
        title=view.title,
        participant_ids=view.participant_ids,
        created_at=view.created_at,
        unread_count=view.unread_count,
        last_read_message_id=view.last_read_message_id,
    )


@router.post("/conversations", response_model=ConversationOut, status_code=status.HTTP_201_CREATED)
async def create_conversation(
    body: CreateConversationRequest, user: CurrentUserDep, session: SessionDep
) -> ConversationOut:
    """The caller is always a participant, whether listed or not."""
    view = await service.create_conversation(
        session, creator_id=user.id, title=body.title, participant_ids=body.participant_ids
    )
    return _out(view)


@router.get("/conversations", response_model=ConversationList)
async def list_conversations(user: CurrentUserDep, session: SessionDep) -> ConversationList:
    """The caller's conversations, newest activity (last message, else creation) first."""
    views = await service.list_conversations(session, user_id=user.id)
    return ConversationList(conversations=[_out(v) for v in views])


@router.get("/conversations/{conversation_id}", response_model=ConversationOut, responses=NOT_FOUND)
async def get_conversation(
    conversation_id: uuid.UUID, user: CurrentUserDep, session: SessionDep
) -> ConversationOut:
    view = await service.get_conversation(session, conversation_id=conversation_id, user_id=user.id)
    return _out(view)


@router.post(
    "/conversations/{conversation_id}/participants",
    response_model=ConversationOut,
    responses=NOT_FOUND,
)
async def add_participants(
    conversation_id: uuid.UUID,
    body: AddParticipantsRequest,
    user: CurrentUserDep,
    session: SessionDep,
) -> ConversationOut:
    """Add users to a conversation (an extension beyond the contract).

    Any participant may add others; users already in it are left untouched (their
    notification settings are kept). Answers 200 with the updated conversation; 404 when
    the conversation is unknown or the caller is not a participant.
    """
    view = await service.add_participants(
        session, conversation_id=conversation_id, user_id=user.id, new_user_ids=body.user_ids
    )
    return _out(view)


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
    view = await service.get_notification_settings(
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
    view = await service.update_notification_settings(
        session, conversation_id=conversation_id, user_id=user.id, changes=body.changes()
    )
    return NotificationSettings(
        muted=view.muted, muted_until=view.muted_until, push_enabled=view.push_enabled
    )
