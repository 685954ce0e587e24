"""Test harness: real PostgreSQL (migrated by Alembic), real Redis, real uvicorn servers.

Every test starts from empty tables and an empty Redis database. The app under test is
served by uvicorn on an ephemeral port and driven over HTTP/WebSocket like any client.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from redis.asyncio import Redis

from backend.app.auth import mint_token
from backend.app.cli import run_migrations
from backend.app.config import Settings
from backend.app.main import create_app
from backend.tests import infra as test_infra

TEST_JWT_SECRET = "test-secret-0123456789abcdef0123456789abcdef"
TEST_API_KEY = "test-service-api-key"
API = "/api/v1/messenger"

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


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # leave pytest's signal handling alone
        yield


@dataclass
class LiveServer:
    url: str
    ws_url: str
    settings: Settings
    server: uvicorn.Server
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 15)


ServerFactory = Callable[..., Awaitable[LiveServer]]


@pytest.fixture
async def start_server(base_settings: dict[str, Any]) -> AsyncIterator[ServerFactory]:
    """Start the real app under uvicorn; keyword arguments override settings."""
    servers: list[LiveServer] = []

    async def start(*, background: bool = True, **overrides: Any) -> LiveServer:
        settings = Settings(_env_file=None, **{**base_settings, **overrides})  # type: ignore[call-arg]
        # IPPROTO_TCP explicitly: asyncio then sets TCP_NODELAY on accepted connections.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(settings, background=background), log_level="warning", lifespan="on"
        )
        server = _Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("server exited during startup")
            await asyncio.sleep(0.01)
        live = LiveServer(
            url=f"http://127.0.0.1:{port}",
            ws_url=f"ws://127.0.0.1:{port}{API}/ws",
            settings=settings,
            server=server,
            task=task,
        )
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
    settings = Settings(_env_file=None, jwt_secret=TEST_JWT_SECRET)  # type: ignore[call-arg]
    token = mint_token(settings, user_id=user_id, name=name, admin=admin)
    return {"Authorization": f"Bearer {token}"}


# --- Device registry helpers (shared by the device, admin, auth and pruning tests) ---


def b64url(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def p256dh_key() -> str:
    """A fresh browser-side P-256 public key, as a PushSubscription carries it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return b64url(point)


def web_push_subscription(
    endpoint: str | None = None, *, p256dh: str | None = None, auth: str | None = None
) -> str:
    """The `PushSubscription` JSON a browser hands out: a real key pair and 16 random auth bytes.

    The default endpoint is on the default allow-list (Chrome's push service) and unique.
    """
    import json
    import secrets

    if endpoint is None:
        endpoint = f"https://fcm.googleapis.com/fcm/send/{secrets.token_urlsafe(24)}"
    keys = {
        "p256dh": p256dh if p256dh is not None else p256dh_key(),
        "auth": auth if auth is not None else b64url(secrets.token_bytes(16)),
    }
    return json.dumps({"endpoint": endpoint, "keys": keys})


@pytest.fixture
async def sql(database_url: str, clean_state: None) -> AsyncIterator[asyncpg.Connection]:
    """Direct SQL for what HTTP cannot do: age rows, and check that nothing was written."""
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


# -- push providers: wire-protocol emulators --------------------------------------------------


@dataclass
class Providers:
    fcm: Any
    apns: Any
    webpush: Any
    vapid_private_key: str
    vapid_public_key: str

    def settings(self) -> dict[str, Any]:
        """Server settings that point all three real provider libraries at the emulators."""
        return {
            "fcm_credentials_file": self.fcm.credentials_file,
            "fcm_endpoint": self.fcm.endpoint,
            "apns_key_path": self.apns.key_path,
            "apns_key_id": self.apns.key_id,
            "apns_team_id": self.apns.team_id,
            "apns_topic": self.apns.topic,
            "apns_host": self.apns.host_port,
            "apns_ca_file": self.apns.ca_file,
            "web_push_private_key": self.vapid_private_key,
            "web_push_public_key": self.vapid_public_key,
            "web_push_claims_email": "ops@example.com",
            "web_push_endpoint_allowlist": self.webpush.endpoint_prefix,
            "web_push_ca_file": self.webpush.ca_file,
            # Keep retries quick in tests; the backoff shape itself is what is checked.
            "push_retry_base_seconds": 0.05,
            "push_retry_max_seconds": 0.2,
        }

    def reset(self) -> None:
        for emulator in (self.fcm, self.apns, self.webpush):
            emulator.reset()


def vapid_key_pair() -> tuple[str, str]:
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return (
        base64.urlsafe_b64encode(private).decode().rstrip("="),
        base64.urlsafe_b64encode(public).decode().rstrip("="),
    )


@pytest.fixture(scope="session")
def provider_emulators() -> Iterator[Providers]:
    from backend.tests.emulators import ApnsEmulator, FcmEmulator, WebPushEmulator

    private, public = vapid_key_pair()
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
    from backend.tests.emulators.smtp import SmtpSink

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
