"""The presence states and the rule that derives a user's from their connections."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class PresenceState(StrEnum):
    ACTIVE = "active"
    IDLE = "idle"
    OFFLINE = "offline"


class ConnectionState(StrEnum):
    """What a client reports about its connection (the WebSocket `presence` frame)."""

    ACTIVE = "active"
    IDLE = "idle"


@dataclass(frozen=True, slots=True)
class PresenceInfo:
    state: PresenceState
    last_seen: datetime | None

    @property
    def online(self) -> bool:
        return self.state is not PresenceState.OFFLINE


OFFLINE = PresenceInfo(state=PresenceState.OFFLINE, last_seen=None)


def state_of(live_connections: Iterable[str], idle_connections: Collection[str]) -> PresenceState:
    """Active while any live connection is not idle; idle while all are; else offline."""
    state = PresenceState.OFFLINE
    for connection_id in live_connections:
        if connection_id not in idle_connections:
            return PresenceState.ACTIVE
        state = PresenceState.IDLE
    return state
