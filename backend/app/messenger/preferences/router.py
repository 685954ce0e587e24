from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from backend.app.auth import CurrentUserDep
from backend.app.db import SessionDep
from backend.app.messenger.preferences import service
from backend.app.messenger.preferences.schemas import Preferences, PreferencesUpdate

router = APIRouter(tags=["preferences"])


@router.get("/notification-preferences", response_model=Preferences)
async def get_preferences(user: CurrentUserDep, session: SessionDep) -> Any:
    """The caller's preferences; defaults when never changed."""
    view = await service.get_preferences(session, user_id=user.id)
    return view.as_contract()


@router.put("/notification-preferences", response_model=Preferences)
async def update_preferences(
    body: PreferencesUpdate, user: CurrentUserDep, session: SessionDep
) -> Any:
    """Partial update: omitted fields keep their value; `null` clears `email_address` (the
    JWT's `email` claim is used then) and `quiet_hours`."""
    changes = body.model_dump(exclude_unset=True)
    view = await service.update_preferences(
        session, user_id=user.id, changes=changes, now=datetime.now(UTC)
    )
    return view.as_contract()
