"""The typed runtime object: every long-lived client one process holds, built once by the
lifespan (or `messenger worker`) and handed to routers through `Annotated` dependencies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request, WebSocket, status
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from backend.app.config import Settings
from backend.app.messenger.preferences.claims import EmailClaimMemory
from backend.app.redis_client import RedisClient

if TYPE_CHECKING:
    from backend.app.messenger.push.dispatcher import PushDispatcher
    from backend.app.messenger.realtime.hub import Hub


@dataclass(slots=True)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # Background work has its own pool so request bursts cannot starve it (and vice versa).
    background_engine: AsyncEngine
    background_sessionmaker: async_sessionmaker[AsyncSession]
    redis: RedisClient
    push: PushDispatcher
    # Only processes that serve the API hold WebSocket connections.
    hub: Hub | None = None
    # Which JWT `email` claims this process already stored (saves a write per request).
    email_claims: EmailClaimMemory = field(default_factory=EmailClaimMemory)


def runtime_of(connection: Request | WebSocket) -> Runtime:
    """The one place that reads `app.state`; everything else asks for `RuntimeDep`."""
    runtime: Runtime | None = getattr(connection.app.state, "runtime", None)
    if runtime is None:  # only while the lifespan has not run (an embedding mistake)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "Messenger is not started")
    return runtime


# Dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in the
# thread pool, a thread hop per dependency per request (it dominated the send path's CPU).
async def get_runtime(request: Request) -> Runtime:
    return runtime_of(request)


async def get_settings(request: Request) -> Settings:
    return runtime_of(request).settings


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
