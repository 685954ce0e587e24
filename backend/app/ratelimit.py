"""Fixed-window per-user rate limits kept in Redis, shared by every instance.

A count shares its Redis round trip with other callers' commands (`redis_batch`).

Fails open: when Redis is down or does not answer within a short timeout the request goes
through (an abuse limit must never take sending down), and for a few seconds after such a
failure the limiter does not even ask, so a black-holed Redis costs one timeout, not one per
request. It asks again afterwards, so limits come back by themselves when Redis does.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from enum import StrEnum

from fastapi import HTTPException, status

from backend.app.redis_batch import batcher_for
from backend.app.redis_client import RedisClient

log = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 0.5
PAUSE_AFTER_FAILURE_SECONDS = 5.0


class Limit(StrEnum):
    """What is counted; the Redis key names derive from these."""

    MESSAGE_SEND = "message-send"
    CONVERSATION_CHANGE = "conversation-change"
    DEVICE_TEST = "device-test"
    DEVICE_REGISTER = "device-register"


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited, retry in {retry_after} s")
        self.retry_after = retry_after


# Per Redis client (one per process in production; tests run several apps in one process).
_paused_until: weakref.WeakKeyDictionary[RedisClient, float] = weakref.WeakKeyDictionary()


async def hit(redis: RedisClient, *, key: str, limit: int, window_seconds: int = 60) -> None:
    """Count one call; raise RateLimited when `limit` calls already happened in this window."""
    now = time.time()
    if now < _paused_until.get(redis, 0.0):
        return
    window = int(now) // window_seconds
    redis_key = f"ratelimit:{{{key}}}:{window}"
    try:
        async with asyncio.timeout(REDIS_TIMEOUT_SECONDS):
            count, expired = await batcher_for(redis).run(
                lambda pipe: pipe.incr(redis_key).expire(redis_key, window_seconds + 1)
            )
        for reply in (count, expired):
            if isinstance(reply, Exception):
                raise reply
    except Exception as exc:  # RedisError, timeouts, connection errors: fail open
        _paused_until[redis] = time.time() + PAUSE_AFTER_FAILURE_SECONDS
        log.warning("rate limiter unavailable, allowing requests: %s", type(exc).__name__)
        return
    if count > limit:
        raise RateLimited(max(1, window_seconds - int(now) % window_seconds))


async def enforce_rate_limit(
    redis: RedisClient, *, key: str, limit: int, window_seconds: int = 60
) -> None:
    """`hit` for HTTP routes: 429 with Retry-After."""
    try:
        await hit(redis, key=key, limit=limit, window_seconds=window_seconds)
    except RateLimited as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"Too many requests, retry in {exc.retry_after} s",
            headers={"Retry-After": str(exc.retry_after)},
        ) from exc


def user_key(limit: Limit, user_id: str) -> str:
    return f"{limit.value}:{user_id}"
