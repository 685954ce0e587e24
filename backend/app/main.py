"""Application factory. The lifespan owns every long-lived client: the database engine,
the Redis client, the WebSocket hub, the push dispatcher and the background loops."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI, Request, Response, status
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError

from backend.app.config import Settings
from backend.app.db import create_engine, create_sessionmaker
from backend.app.edge.guard import InputGuard
from backend.app.edge.logs import install_log_redaction
from backend.app.messenger.conversations.service import ConversationNotFound
from backend.app.redis_client import create_redis, load_cluster_map
from backend.app.runtime import Runtime, RuntimeDep
from backend.app.webclient import install_web

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1/messenger"
GC_YOUNG_THRESHOLD = 14_000  # allocations between young-generation passes (CPython: 700)


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, api: bool, background: bool, freeze_gc: bool = False
) -> AsyncIterator[Runtime]:
    """Start what this process needs; tear it down in reverse order."""
    from backend.app.messenger.notifications.loop import notification_loop
    from backend.app.messenger.pruning import prune_loop
    from backend.app.messenger.push.dispatcher import PushDispatcher
    from backend.app.messenger.realtime.hub import Hub

    if not settings.jwt_secret:
        # Never verify tokens against an empty key (the CLI resolves one; embedders must set it).
        raise RuntimeError("JWT_SECRET is not set")
    async with AsyncExitStack() as stack:
        engine = create_engine(
            settings.database_url, pool_size=settings.database_pool_size, overflow=False
        )
        stack.push_async_callback(engine.dispose)
        background_engine = create_engine(settings.database_url, pool_size=5)
        stack.push_async_callback(background_engine.dispose)
        background_sessionmaker = create_sessionmaker(background_engine)
        redis = create_redis(
            settings.redis_url,
            cluster=settings.redis_cluster,
            timeout_seconds=settings.redis_timeout_seconds,
        )
        stack.push_async_callback(redis.aclose)
        await load_cluster_map(redis, timeout_seconds=settings.redis_timeout_seconds)

        sessionmaker = create_sessionmaker(engine)
        push = PushDispatcher(
            settings=settings,
            sessionmaker=background_sessionmaker,
            interactive_sessionmaker=sessionmaker,
            redis=redis,
        )
        await push.start(run_workers=background)
        stack.push_async_callback(push.stop)
        rt = Runtime(
            settings=settings,
            engine=engine,
            sessionmaker=sessionmaker,
            background_engine=background_engine,
            background_sessionmaker=background_sessionmaker,
            redis=redis,
            push=push,
        )

        if api:
            hub = Hub(settings=settings, redis=redis)
            await hub.start()
            stack.push_async_callback(hub.stop)
            rt.hub = hub

        tasks: list[asyncio.Task[None]] = []
        if background:
            tasks.append(
                asyncio.create_task(
                    prune_loop(background_engine, background_sessionmaker, settings), name="prune"
                )
            )
            tasks.append(
                asyncio.create_task(
                    notification_loop(background_sessionmaker, redis, settings),
                    name="notifications",
                )
            )
        if background and settings.email_enabled:
            from backend.app.messenger.digest.scheduler import digest_loop
            from backend.app.messenger.email.sender import EmailSender

            sender = EmailSender(settings, background_sessionmaker)
            tasks.append(asyncio.create_task(sender.run(), name="email"))
            tasks.append(
                asyncio.create_task(
                    digest_loop(background_sessionmaker, settings, on_queued=sender.wake),
                    name="digest",
                )
            )

        async def cancel_tasks() -> None:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        stack.push_async_callback(cancel_tasks)
        if freeze_gc:
            # Everything allocated so far lives as long as the process: keep it out of the
            # collector's full passes (measured: 130-240 ms pauses during a fan-out before this).
            # Only when we own the process (the CLI); a host application decides for itself.
            gc.collect()
            gc.freeze()
            # A young-generation pass every 700 allocations was 6 % of a send's CPU (py-spy
            # --native): a request allocates thousands of short-lived objects, nearly all
            # freed by reference counting, so collect young objects 20x less often.
            gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
        yield rt


async def conversation_not_found(request: Request, exc: Exception) -> JSONResponse:
    """Unknown and not-yours are one answer (the contract's 404), wherever it is raised."""
    return JSONResponse({"detail": "Conversation not found"}, status_code=404)


# FastAPI's native OpenTelemetry layer asks on every request whether a provider has been
# configured since (2-3 % of a send's CPU). When none is at start-up, the service does
# without it: `opentelemetry-instrument messenger serve` configures one before this runs.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def opentelemetry_configured() -> bool:
    """A tracer provider is set, or FastAPI is asked to configure OpenTelemetry itself."""
    if os.environ.get("FASTAPI_OTEL_AUTO_CONFIGURE", "").lower() == "true":
        return True
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def create_app(
    settings: Settings | None = None, *, background: bool = True, freeze_gc: bool = False
) -> FastAPI:
    """`background=False` serves the API only; `messenger worker` runs the background work alone."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(
            settings, api=True, background=background, freeze_gc=freeze_gc
        ) as rt:
            app.state.runtime = rt
            yield

    app = FastAPI(
        title="Messenger backend",
        version="0.1.0",
        lifespan=lifespan,
        description="Devices, conversations, presence and push fan-out.",
        # Served from vendored assets by install_web (FastAPI's own pages need a CDN).
        docs_url=None,
        redoc_url=None,
        telemetry=None if opentelemetry_configured() else NO_TELEMETRY,
    )
    from backend.app.messenger.router import router as messenger_router

    app.include_router(messenger_router, prefix=API_PREFIX)
    # Refuses oversized and hostile requests before routing and authentication (only the CORS
    # and security-header layers, added last, sit outside it).
    app.add_middleware(InputGuard, max_body_bytes=settings.max_body_bytes)
    install_log_redaction()

    app.add_exception_handler(ConversationNotFound, conversation_not_found)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(OSError)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        """PostgreSQL unreachable or the connection dropped: a retryable 503, not a 500 (the
        request's transaction was rolled back, nothing is half-written)."""
        log.warning("request failed, database unavailable: %s", type(exc).__name__)
        return JSONResponse(
            {"detail": "Service temporarily unavailable, retry"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "1"},
        )

    @app.get("/health", tags=["operations"])
    async def health(rt: RuntimeDep) -> JSONResponse:
        checks = {"database": "ok", "redis": "ok"}
        try:
            async with asyncio.timeout(3), rt.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            checks["database"] = f"down: {type(exc).__name__}"
        try:
            async with asyncio.timeout(3):
                await rt.redis.ping()
        except Exception as exc:
            checks["redis"] = f"down: {type(exc).__name__}"
        healthy = all(v == "ok" for v in checks.values())
        # An open push circuit degrades one app's pushes, not the service: still 200.
        return JSONResponse(
            {
                "status": "ok" if healthy else "degraded",
                **checks,
                "push": rt.push.registry.open_circuits(),
            },
            status_code=status.HTTP_200_OK if healthy else status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    install_web(app)
    install_cors(app, settings)
    return app


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Browser clients on the origins in `CORS_ALLOW_ORIGINS` may call the API. Added last, so
    it is the outermost layer and answers preflights before anything else looks at them.
    Bearer tokens, not cookies: no credentials mode."""
    origins = settings.cors_origins
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["*"],
        allow_headers=["*"],
        allow_credentials=False,
        max_age=600,
    )
