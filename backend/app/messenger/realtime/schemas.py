from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class UserPresence(BaseModel):
    online: bool
    last_seen: datetime | None


class PresenceResponse(BaseModel):
    presence: dict[str, UserPresence]
