"""Embedding the messenger in a host FastAPI application instead of running `messenger serve`.

    from backend.app.messenger import embed
    embed(host_app, Settings())

mounts the API under `/api/v1/messenger` (plus `/app/` and the docs, optionally) and wraps the
host's lifespan so the messenger's database pools, Redis, WebSocket hub and push workers start
before the host's own startup and stop after its shutdown. To authenticate with the host's own
users instead of JWTs, override the two identity dependencies:

    host_app.dependency_overrides[current_user] = my_user       # HTTP: -> CurrentUser
    host_app.dependency_overrides[websocket_user] = my_ws_user  # WebSocket: -> CurrentUser | None
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.app.config import Settings

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


class _PrefixScoped:
    """`InputGuard` applied to requests under the messenger's prefix only."""

    def __init__(self, app: ASGIApp, *, prefix: str, max_body_bytes: int) -> None:
        from backend.app.edge.guard import InputGuard

        self.app = app
        self.prefix = prefix.rstrip("/") + "/"
        self.guard = InputGuard(app, max_body_bytes=max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["path"] + "/").startswith(self.prefix):
            await self.guard(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def embed(
    app: FastAPI,
    settings: Settings | None = None,
    *,
    prefix: str = "/api/v1/messenger",
    background: bool = True,
    web_client: bool = False,
) -> None:
    """Include the messenger router in `app` and run its lifespan around the host's.

    `background=False` leaves push delivery and pruning to `messenger worker` processes.
    `web_client=True` also serves `/app/` (it calls the API at the default prefix)."""
    from backend.app.edge.logs import install_log_redaction
    from backend.app.main import conversation_not_found, install_cors, open_runtime
    from backend.app.messenger.conversations.service import ConversationNotFound
    from backend.app.messenger.router import router
    from backend.app.webclient import install_web

    settings = settings or Settings()
    app.include_router(router, prefix=prefix)
    # The module's input guard (413, NUL, nesting) for its own paths only: the host's routes
    # keep whatever limits the host chose. Logs get the same redaction as `messenger serve`.
    app.add_middleware(_PrefixScoped, prefix=prefix, max_body_bytes=settings.max_body_bytes)
    install_log_redaction()

    app.add_exception_handler(ConversationNotFound, conversation_not_found)
    if web_client:
        install_web(app, docs=False)
    install_cors(app, settings)

    host_lifespan: Lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(host: Any) -> AsyncIterator[Any]:
        async with open_runtime(settings, api=True, background=background) as runtime:
            app.state.runtime = runtime
            async with host_lifespan(host) as state:
                yield state

    app.router.lifespan_context = lifespan
