"""`InputGuard`: a pure ASGI middleware that refuses hostile requests before routing and auth.

- Bodies over `MAX_BODY_BYTES` get 413, whether announced by Content-Length or arriving
  chunked, and the rest is never read (one unauthenticated client cannot exhaust memory).
- NUL in the path, a query parameter or a header value gets 4xx.
- JSON bodies with NUL, unpaired surrogates or deep nesting get 422.

Pure ASGI (not BaseHTTPMiddleware): it wraps `receive`, so it can stop reading mid-body,
and it adds no task or buffering of responses. A body that passes is replayed to the app
unchanged.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.app.edge.text import UnsafeInput, loads_checked

BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


class BodyTooLarge(Exception):
    pass


async def _send_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # We did not read the whole request: the connection cannot be reused.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _invalid(location: str, message: str) -> dict[str, Any]:
    return {"detail": [{"loc": [location], "msg": message, "type": "value_error"}]}


def _scope_problem(scope: Scope) -> tuple[int, dict[str, Any]] | None:
    """NUL in the path, query or a header value (percent-encoded or raw)."""
    raw_path: bytes = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "replace")
    if b"\x00" in unquote_to_bytes(raw_path) or "\x00" in scope.get("path", ""):
        return 422, _invalid("path", "the path must not contain NUL characters")
    query: bytes = scope.get("query_string", b"")
    if b"\x00" in unquote_to_bytes(query.replace(b"+", b" ")):
        return 422, _invalid("query", "query parameters must not contain NUL characters")
    for _, value in scope.get("headers", ()):
        if b"\x00" in value:
            return 400, {"detail": "header values must not contain NUL characters"}
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return b"json" in value.lower()
    return True  # FastAPI parses a body without Content-Type as JSON


class InputGuard:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = _scope_problem(scope)
        if problem is not None:
            await _send_json(send, *problem)
            return
        length = _content_length(scope)
        if length is not None and length < 0:
            await _send_json(send, 400, {"detail": "invalid Content-Length"})
            return
        if length is not None and length > self.max_body_bytes:
            await self._too_large(send)
            return
        if scope["method"] in BODYLESS_METHODS and not length:
            await self.app(scope, receive, send)
            return
        try:
            body, disconnected = await self._read_body(receive)
        except BodyTooLarge:
            await self._too_large(send)
            return
        if body and _is_json(scope):
            try:
                loads_checked(body)
            except UnsafeInput as exc:
                await _send_json(send, 422, _invalid("body", str(exc)))
                return
            except ValueError:
                pass  # malformed JSON: FastAPI answers it with its usual 422
        await self.app(scope, _replay(body, disconnected, receive), send)

    async def _read_body(self, receive: Receive) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"".join(chunks), True
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), False

    async def _too_large(self, send: Send) -> None:
        await _send_json(
            send,
            413,
            {"detail": f"request body larger than {self.max_body_bytes} bytes"},
        )


def _replay(body: bytes, disconnected: bool, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            if disconnected and not body:
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
