"""What happens once a sent message has COMMITTED: wake the push dispatcher, tell the clients.

Never call this before the commit: a kicked push job or a `message.new` frame must never
name a message that a rollback could still take back.
"""

from __future__ import annotations

import logging

from backend.app.messenger.messages.schemas import message_json
from backend.app.messenger.messages.service import SentMessage
from backend.app.runtime import Runtime

log = logging.getLogger(__name__)


async def announce_message(
    rt: Runtime, sent: SentMessage, *, exclude_connection_id: str | None = None
) -> None:
    """Kick the push job and publish `message.new` to every participant's open connections.

    A repeated client_msg_id (`sent.created` false) announces nothing. Both steps are best effort:
    the push job is durable (a sweep picks it up) and clients catch up from the history.
    """
    if not sent.created:
        return
    if sent.push_job_id is not None:
        try:
            rt.push.kick(sent.push_job_id)
        except Exception:
            log.exception("could not kick push job %s; the sweep will pick it up", sent.push_job_id)
    if rt.hub is not None:
        await rt.hub.publish_message_new(
            message_json(sent.message),
            sent.participant_ids,
            exclude_connection_id=exclude_connection_id,
        )
