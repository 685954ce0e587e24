"""What happens once a read has COMMITTED: every open connection of the reader, on every
instance, learns the new read state (`conversation.read`).

Never call this before the commit: a frame must not announce a position a rollback could
still take back.
"""

from __future__ import annotations

import logging
from typing import Any

from backend.app.messenger.conversations.read_state import ReadResult
from backend.app.runtime import Runtime

log = logging.getLogger(__name__)


def read_frame(result: ReadResult) -> dict[str, Any]:
    return {
        "type": "conversation.read",
        "conversation_id": str(result.conversation_id),
        "last_read_message_id": (
            str(result.last_read_message_id) if result.last_read_message_id is not None else None
        ),
        "unread_count": result.unread_count,
    }


async def announce_read(
    rt: Runtime, *, user_id: str, result: ReadResult, clear_job_id: int | None = None
) -> None:
    """Best effort, like `message.new`: a client that misses it catches up from `GET /unread`.

    Sent whether or not the position moved, so the connection that asked always gets an
    answer carrying the current state. Also wakes the clear-on-read push (durable: the
    sweep sends it anyway).
    """
    if clear_job_id is not None:
        try:
            rt.push.kick(clear_job_id)
        except Exception:
            log.exception("could not kick clear push job %s; the sweep will", clear_job_id)
    if rt.hub is None:
        return
    try:
        await rt.hub.publish(read_frame(result), [user_id])
    except Exception:
        log.exception("could not announce a read of conversation %s", result.conversation_id)
