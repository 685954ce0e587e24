"""The WebSocket endpoint (`/ws`) and presence lookups (`/presence`)."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, WebSocket, status

from backend.app import ratelimit
from backend.app.auth import CurrentUserDep, WebSocketUserDep
from backend.app.db import SessionDep, autocommit
from backend.app.errors import unprocessable
from backend.app.messenger import presence
from backend.app.messenger.blocks import service as blocks
from backend.app.messenger.conversations import read_state
from backend.app.messenger.conversations.participants import users_sharing_a_conversation
from backend.app.messenger.messages import service as messages
from backend.app.messenger.messages.events import announce_message
from backend.app.messenger.messages.schemas import message_json
from backend.app.messenger.push import service as push_service
from backend.app.messenger.read_state.events import announce_read
from backend.app.messenger.realtime.hub import CLOSE_UNAUTHORIZED, Connection
from backend.app.messenger.realtime.protocol import (
    FrameError,
    PresenceFrame,
    ReadFrame,
    SendFrame,
    error_frame,
    parse_frame,
    parse_presence,
    parse_read,
    parse_send,
)
from backend.app.messenger.realtime.schemas import PresenceResponse, UserPresence
from backend.app.runtime import Runtime, RuntimeDep, runtime_of

log = logging.getLogger(__name__)
router = APIRouter(tags=["realtime"])
MAX_PRESENCE_USERS = 1000


@router.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket, user: WebSocketUserDep) -> None:
    """Real-time channel, `?token=<JWT>`. A bad or missing token is accepted, then closed
    with 4401 (browsers cannot read the status of a refused upgrade)."""
    rt = runtime_of(websocket)
    await websocket.accept()
    if user is None:
        await websocket.close(CLOSE_UNAUTHORIZED, "invalid or missing token")
        return
    hub = rt.hub
    assert hub is not None, "the WebSocket route is only mounted in API processes"

    async def handle(connection: Connection, text: str | None, data: bytes | None) -> None:
        try:
            frame = parse_frame(text, data)
            if frame["type"] == "ping":
                connection.send_json({"type": "pong"})
            elif frame["type"] == "message.send":
                request = parse_send(frame)
                try:
                    await ratelimit.hit(
                        rt.redis,
                        key=ratelimit.user_key(ratelimit.Limit.MESSAGE_SEND, user.id),
                        limit=rt.settings.message_rate_per_minute,
                    )
                except ratelimit.RateLimited as exc:
                    connection.send_json(
                        {
                            **error_frame(
                                "rate_limited",
                                f"too many messages, retry in {exc.retry_after} s",
                                client_msg_id=request.client_msg_id,
                            ),
                            "retry_after": exc.retry_after,
                        }
                    )
                    return
                # Shielded: once the send started, it completes and is announced even if
                # this connection is torn down meanwhile.
                await asyncio.shield(hub.detach(_send(rt, connection, request)))
            elif frame["type"] == "presence":
                await _set_presence(rt, connection, parse_presence(frame))
            elif frame["type"] == "conversation.read":
                read = parse_read(frame)
                await asyncio.shield(hub.detach(_read(rt, connection, read)))
            else:
                raise FrameError("unknown_type", f"unknown frame type {frame['type']!r}")
        except FrameError as exc:
            connection.send_json(exc.frame())

    await hub.serve(websocket, user, handle)


async def _send(rt: Runtime, connection: Connection, request: SendFrame) -> None:
    """Same service as `POST /conversations/{id}/messages`; announced after the commit."""
    client_msg_id = request.client_msg_id
    try:
        async with autocommit(rt.sessionmaker) as session:
            sent = await messages.send_message(
                session,
                conversation_id=request.conversation_id,
                sender=connection.user,
                content=request.content,
                client_msg_id=client_msg_id,
                include_content=rt.settings.push_include_content,
            )
    except messages.ConversationNotFound:
        connection.send_json(
            error_frame("not_found", "Conversation not found", client_msg_id=client_msg_id)
        )
        return
    except messages.ClientMsgIdConflict:
        connection.send_json(
            error_frame(
                "conflict",
                "client_msg_id was already used for a message in another conversation",
                client_msg_id=client_msg_id,
            )
        )
        return
    except messages.InvalidMessage as exc:
        connection.send_json(error_frame("invalid_frame", str(exc), client_msg_id=client_msg_id))
        return
    except Exception as exc:  # the type only: driver errors can quote the values they refused
        log.error("message.send failed on connection %s: %s", connection.id, type(exc).__name__)
        connection.send_json(
            error_frame("internal_error", "message not stored, retry", client_msg_id=client_msg_id)
        )
        return
    connection.send_json(
        {
            "type": "message.ack",
            "client_msg_id": client_msg_id,
            "message": message_json(sent.message),
        }
    )
    await announce_message(rt, sent, exclude_connection_id=connection.id)


async def _set_presence(rt: Runtime, connection: Connection, request: PresenceFrame) -> None:
    """No answer (the contract says so); a Redis failure is logged, the connection lives on."""
    try:
        await presence.set_connection_state(
            rt.redis,
            user_id=connection.user.id,
            connection_id=connection.id,
            state=request.state,
            ttl_seconds=rt.settings.presence_ttl_seconds,
        )
    except Exception:
        log.warning("could not record presence state of connection %s", connection.id)


async def _read(rt: Runtime, connection: Connection, request: ReadFrame) -> None:
    """Same service as `POST /conversations/{id}/read`; every connection of the user
    (this one included) gets `conversation.read` after the commit."""
    try:
        async with rt.sessionmaker.begin() as session:
            result = await read_state.mark_read(
                session,
                conversation_id=request.conversation_id,
                user_id=connection.user.id,
                up_to=request.up_to,
            )
            clear_job_id = await push_service.clear_after_read(session, move=result.move)
    except read_state.ConversationNotFound:
        connection.send_json(error_frame("not_found", "Conversation not found"))
        return
    except read_state.MessageNotInConversation:
        connection.send_json(
            error_frame("invalid_position", "up_to is not a message of this conversation")
        )
        return
    except Exception:
        log.exception("conversation.read failed on connection %s", connection.id)
        connection.send_json(error_frame("internal_error", "read not stored, retry"))
        return
    await announce_read(rt, user_id=connection.user.id, result=result, clear_job_id=clear_job_id)


@router.get("/presence", response_model=PresenceResponse)
async def get_presence(
    rt: RuntimeDep,
    user: CurrentUserDep,
    session: SessionDep,
    user_ids: Annotated[
        str, Query(description=f"Comma-separated user ids, at most {MAX_PRESENCE_USERS}")
    ],
) -> PresenceResponse:
    """Online flag, state (`active`, `idle`, `offline`; online = active or idle) and
    last-seen time of users who share a conversation with the caller (and of the caller),
    unless they blocked the caller. Anyone else is reported offline with `last_seen: null`,
    exactly like a user who was never seen, so the answer reveals nothing about strangers."""
    requested = list(dict.fromkeys(u.strip() for u in user_ids.split(",") if u.strip()))
    if len(requested) > MAX_PRESENCE_USERS:
        raise unprocessable(("query", "user_ids"), f"at most {MAX_PRESENCE_USERS} user ids")
    plausible = [u for u in requested if len(u) <= 64 and "\x00" not in u]
    visible = await users_sharing_a_conversation(session, user_id=user.id, candidates=plausible)
    # Whoever blocked the caller reads as offline to them, like a stranger.
    visible -= await blocks.users_blocking(session, blocked_id=user.id, candidates=list(visible))
    if user.id in requested:
        visible.add(user.id)
    try:
        found = await presence.presence_of(rt.redis, [u for u in requested if u in visible])
    except Exception as exc:
        log.warning("presence lookup failed: %s", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "Presence is unavailable") from exc
    answers = {u: found.get(u, presence.OFFLINE) for u in requested}
    return PresenceResponse(
        presence={
            u: UserPresence(online=info.online, state=info.state, last_seen=info.last_seen)
            for u, info in answers.items()
        }
    )
