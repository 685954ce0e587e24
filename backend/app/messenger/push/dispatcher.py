"""Push dispatcher (being built)."""

from __future__ import annotations

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.config import Settings


class PushDispatcher:
    def __init__(
        self, *, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.redis = redis

    async def start(self, *, run_workers: bool) -> None:
        pass

    async def stop(self) -> None:
        pass

    def kick(self, job_id: int) -> None:
        pass
