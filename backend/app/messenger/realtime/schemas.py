from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from backend.app.messenger.presence import PresenceState


class UserPresence(BaseModel):
    online: bool
    state: PresenceState
    last_seen: datetime | None


class PresenceResponse(BaseModel):
    presence: dict[str, UserPresence]
