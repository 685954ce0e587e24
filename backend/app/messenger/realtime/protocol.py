"""WebSocket frames: parsing and validation of what clients send, and the error frame.

Error codes (`{"type": "error", "code", "detail"}`; the connection stays open):
`frame_too_large` (over 64 KiB), `invalid_json`, `invalid_frame` (not a JSON object, no
string `type`, binary frame, or fields of a known type that fail validation),
`unknown_type`, `rate_limited` (with `retry_after` seconds: more than
MESSAGE_RATE_PER_MINUTE sends over REST and WebSocket together), `not_found` (no such
conversation or not a participant), `conflict` (client_msg_id already used in another
conversation), `invalid_position` (a `conversation.read` whose `up_to` is no message of
that conversation), `internal_error`.
Errors about a `message.send` also carry its `client_msg_id`, so clients can tell which
send failed.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from backend.app.edge.text import UnsafeInput, loads_checked
from backend.app.messenger.messages.schemas import ClientMsgId, Content
from backend.app.messenger.presence import ConnectionState

MAX_FRAME_BYTES = 64 * 1024


class FrameError(Exception):
    def __init__(self, code: str, detail: str, *, client_msg_id: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.client_msg_id = client_msg_id

    def frame(self) -> dict[str, Any]:
        return error_frame(self.code, self.detail, client_msg_id=self.client_msg_id)


def error_frame(code: str, detail: str, *, client_msg_id: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
    if client_msg_id is not None:
        frame["client_msg_id"] = client_msg_id
    return frame


class SendFrame(BaseModel):
    model_config = ConfigDict(extra="ignore")

    conversation_id: uuid.UUID
    content: Content
    client_msg_id: ClientMsgId | None = None


class PresenceFrame(BaseModel):
    model_config = ConfigDict(extra="ignore")

    state: ConnectionState


class ReadFrame(BaseModel):
    model_config = ConfigDict(extra="ignore")

    conversation_id: uuid.UUID
    up_to: uuid.UUID


def _too_large(text: str) -> bool:
    # Cheap bounds first: a code point takes 1-4 bytes in UTF-8.
    if len(text) > MAX_FRAME_BYTES:
        return True
    return len(text) * 4 > MAX_FRAME_BYTES and len(text.encode()) > MAX_FRAME_BYTES


def parse_frame(text: str | None, data: bytes | None) -> dict[str, Any]:
    """A JSON object with a string `type`, from a text frame of at most 64 KiB."""
    if text is None:
        size = len(data or b"")
        if size > MAX_FRAME_BYTES:
            raise FrameError("frame_too_large", f"frames are limited to {MAX_FRAME_BYTES} bytes")
        raise FrameError("invalid_frame", "binary frames are not supported; send JSON text")
    if _too_large(text):
        raise FrameError("frame_too_large", f"frames are limited to {MAX_FRAME_BYTES} bytes")
    try:
        frame = loads_checked(text)
    except UnsafeInput as exc:  # NUL, lone surrogates, deep nesting: refused, connection kept
        raise FrameError("invalid_frame", str(exc)) from exc
    except ValueError as exc:
        raise FrameError("invalid_json", f"frame is not valid JSON: {exc}") from exc
    if not isinstance(frame, dict):
        raise FrameError("invalid_frame", "a frame is a JSON object")
    if not isinstance(frame.get("type"), str):
        raise FrameError("invalid_frame", "a frame needs a string `type`")
    return frame


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'frame'}: {error['msg']}"
        for error in exc.errors()
    )


def parse_presence(frame: dict[str, Any]) -> PresenceFrame:
    try:
        return PresenceFrame.model_validate(frame)
    except ValidationError as exc:
        raise FrameError("invalid_frame", f"invalid presence: {_problems(exc)}") from exc


def parse_read(frame: dict[str, Any]) -> ReadFrame:
    try:
        return ReadFrame.model_validate(frame)
    except ValidationError as exc:
        raise FrameError("invalid_frame", f"invalid conversation.read: {_problems(exc)}") from exc


def parse_send(frame: dict[str, Any]) -> SendFrame:
    client_msg_id = frame.get("client_msg_id")
    try:
        return SendFrame.model_validate(frame)
    except ValidationError as exc:
        problems = _problems(exc)
        raise FrameError(
            "invalid_frame",
            f"invalid message.send: {problems}",
            client_msg_id=client_msg_id if isinstance(client_msg_id, str) else None,
        ) from exc
