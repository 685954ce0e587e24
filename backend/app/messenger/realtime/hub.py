"""WebSocket hub (being built)."""

from __future__ import annotations

from redis.asyncio import Redis

from backend.app.config import Settings


class Hub:
    def __init__(self, *, settings: Settings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass
