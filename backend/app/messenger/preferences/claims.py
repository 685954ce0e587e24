"""Remember each user's JWT `email` claim without a database write per request.

Each process keeps the claim it last stored per user (bounded LRU) and writes only when a
token carries a different one; the write itself changes nothing when the row already holds
it (several instances), so steady traffic costs no writes at all.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backend.app.runtime import Runtime

log = logging.getLogger(__name__)


class EmailClaimMemory:
    def __init__(self, max_users: int = 100_000) -> None:
        self._stored: OrderedDict[str, str] = OrderedDict()
        self._max_users = max_users

    def is_stored(self, user_id: str, email: str) -> bool:
        if self._stored.get(user_id) != email:
            return False
        self._stored.move_to_end(user_id)
        return True

    def stored(self, user_id: str, email: str) -> None:
        self._stored[user_id] = email
        self._stored.move_to_end(user_id)
        while len(self._stored) > self._max_users:
            self._stored.popitem(last=False)


async def remember_email_claim(runtime: Runtime, *, user_id: str, email: str) -> None:
    """Best effort: a failed write is retried on the user's next call, never fails this one."""
    memory = runtime.email_claims
    if memory.is_stored(user_id, email):
        return
    from backend.app.messenger.preferences import service  # runtime.py imports this module

    try:
        async with runtime.sessionmaker.begin() as session:
            await service.remember_email_claim(session, user_id=user_id, email=email)
    except Exception as exc:
        log.warning("could not store the email claim of a user: %s", type(exc).__name__)
        return
    memory.stored(user_id, email)
