"""Test harness: real PostgreSQL (migrated by Alembic), real Redis, real uvicorn servers.

The machinery lives in the installable support package `backend.devtools` (shared with
`bench/` and `messenger dev`); this file only turns it into fixtures.

Every test starts from empty tables and an empty Redis database. The app under test is
served by uvicorn on an ephemeral port and driven over HTTP/WebSocket like any client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from backend.app.config import Settings
from backend.app.schema_migrations import run_migrations
from backend.app.vapid import b64url, generate_vapid_keys
from backend.devtools import infra as test_infra
from backend.devtools.emulators import ApnsEmulator, FcmEmulator, WebPushEmulator
from backend.devtools.providers import Providers
from backend.devtools.servers import API, LiveServer, bearer_header, start_live_server
from backend.devtools.subscriptions import p256dh_key, web_push_subscription

TEST_JWT_SECRET = "test-secret-0123456789abcdef0123456789abcdef"
TEST_API_KEY = "test-service-api-key"

# Every table but Alembic's bookkeeping: new domain packages need no edit here.
ALL_TABLES = """
SELECT string_agg(format('%I', tablename), ', ') FROM pg_tables
WHERE schemaname = 'public' AND tablename <> 'alembic_version'
"""


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[test_infra.TestInfrastructure]:
    infra = test_infra.start()
    yield infra
    infra.close()


@pytest.fixture(scope="session")
def database_url(infrastructure: test_infra.TestInfrastructure) -> Iterator[str]:
    name = test_infra.create_database(infrastructure)
    url = infrastructure.database_url(name)
    run_migrations(url)
    yield url
    test_infra.drop_database(infrastructure, name)


@pytest.fixture
async def clean_state(database_url: str, infrastructure: test_infra.TestInfrastructure) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        tables = await connection.fetchval(ALL_TABLES)
        await connection.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()
    redis = Redis.from_url(infrastructure.redis_url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


@pytest.fixture
def base_settings(
    database_url: str, infrastructure: test_infra.TestInfrastructure, clean_state: None
) -> dict[str, Any]:
    """Settings every test server gets; tests add what they need on top."""
    return {
        "database_url": database_url,
        "redis_url": infrastructure.redis_url,
        "jwt_secret": TEST_JWT_SECRET,
        "service_api_key": TEST_API_KEY,
        "push_sweep_interval_seconds": 0.2,
        "notification_sweep_interval_seconds": 0.2,
    }


@pytest.fixture
def settings(base_settings: dict[str, Any]) -> Settings:
    return Settings(_env_file=None, **base_settings)  # type: ignore[call-arg]


ServerFactory = Callable[..., Awaitable[LiveServer]]


@pytest.fixture
async def start_server(base_settings: dict[str, Any]) -> AsyncIterator[ServerFactory]:
    """Start the real app under uvicorn; keyword arguments override settings."""
    servers: list[LiveServer] = []

    async def start(*, background: bool = True, **overrides: Any) -> LiveServer:
        settings = Settings(_env_file=None, **{**base_settings, **overrides})  # type: ignore[call-arg]
        live = await start_live_server(settings, background=background)
        servers.append(live)
        return live

    yield start
    for live in servers:
        await live.stop()


@pytest.fixture
async def server(start_server: ServerFactory) -> LiveServer:
    return await start_server()


@pytest.fixture
async def client(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url + API, timeout=30) as http:
        yield http


def bearer(user_id: str, *, name: str | None = None, admin: bool = False) -> dict[str, str]:
    return bearer_header(TEST_JWT_SECRET, user_id, name=name, admin=admin)


# Helpers other test modules import from here (their home is backend.devtools / backend.app).
vapid_key_pair = generate_vapid_keys  # the name tests used before the move

__all__ = ["API", "LiveServer", "Providers", "b64url", "p256dh_key", "web_push_subscription"]


@pytest.fixture
async def sql(database_url: str, clean_state: None) -> AsyncIterator[asyncpg.Connection]:
    """Direct SQL for what HTTP cannot do: age rows, and check that nothing was written."""
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


# -- push providers: wire-protocol emulators --------------------------------------------------


@pytest.fixture(scope="session")
def provider_emulators() -> Iterator[Providers]:
    private, public = generate_vapid_keys()
    with FcmEmulator() as fcm, ApnsEmulator() as apns, WebPushEmulator() as webpush:
        webpush.expected_vapid_public_key = public
        yield Providers(fcm, apns, webpush, private, public)


@pytest.fixture
def providers(provider_emulators: Providers) -> Iterator[Providers]:
    provider_emulators.reset()
    yield provider_emulators
    provider_emulators.reset()


@pytest.fixture
async def push_server(start_server: ServerFactory, providers: Providers) -> LiveServer:
    return await start_server(**providers.settings())


@pytest.fixture
async def push_client(push_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=push_server.url + API, timeout=30) as http:
        yield http


# -- email: a real SMTP server ----------------------------------------------------------------


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[Any]:
    from backend.devtools.emulators.smtp import SmtpSink

    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def smtp(smtp_sink: Any) -> Iterator[Any]:
    """The session's SMTP sink, running and empty (a test may stop it to play an outage)."""
    smtp_sink.start()
    smtp_sink.reset()
    yield smtp_sink
    smtp_sink.start()
    smtp_sink.reset()
