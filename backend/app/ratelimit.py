"""Fixed-window rate limits kept in Redis, shared by every instance."""

from __future__ import annotations

import logging
import time

from fastapi import HTTPException, status
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


async def enforce_rate_limit(
    redis: Redis, *, key: str, limit: int, window_seconds: int = 60
) -> None:
    """Raise 429 with Retry-After once `limit` calls happened in the current window.

    Fails open when Redis is unreachable: an abuse limit must not take registrations down.
    """
    window = int(time.time()) // window_seconds
    redis_key = f"ratelimit:{{{key}}}:{window}"
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.incr(redis_key)
            pipe.expire(redis_key, window_seconds + 1)
            count, _ = await pipe.execute()
    except RedisError as exc:
        log.warning("rate limiter unavailable, allowing request: %s", exc)
        return
    if count > limit:
        retry_after = window_seconds - int(time.time()) % window_seconds
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"Too many requests, retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
