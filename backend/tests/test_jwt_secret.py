"""The JWT_SECRET start-up rule and JWT_LEEWAY_SECONDS, through the real command and API."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt

from backend.tests.conftest import API, TEST_JWT_SECRET, ServerFactory

MESSENGER = [sys.executable, "-m", "backend.app.cli"]


def run_messenger(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "DATABASE", "REDIS"))}
    return subprocess.run(
        [*MESSENGER, *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_refuses_to_start_without_jwt_secret(tmp_path: Path, database_url: str) -> None:
    result = run_messenger("serve", env={"DATABASE_URL": database_url}, cwd=tmp_path)

    assert result.returncode != 0
    assert "JWT_SECRET" in result.stderr


def test_worker_refuses_a_jwt_secret_shorter_than_32_characters(
    tmp_path: Path, database_url: str
) -> None:
    result = run_messenger(
        "worker", env={"DATABASE_URL": database_url, "JWT_SECRET": "x" * 31}, cwd=tmp_path
    )

    assert result.returncode != 0
    assert "JWT_SECRET" in result.stderr


def test_without_database_url_token_uses_a_secret_generated_once_under_data(
    tmp_path: Path,
) -> None:
    first = run_messenger("token", "--user", "alice", env={}, cwd=tmp_path)
    second = run_messenger("token", "--user", "bob", env={}, cwd=tmp_path)

    secret = (tmp_path / ".data" / "jwt_secret").read_text().strip()
    assert len(secret) >= 32
    assert jwt.decode(first.stdout.strip(), secret, algorithms=["HS256"])["sub"] == "alice"
    assert jwt.decode(second.stdout.strip(), secret, algorithms=["HS256"])["sub"] == "bob"


async def test_a_token_issued_slightly_in_the_future_is_accepted_within_the_leeway(
    start_server: ServerFactory,
) -> None:
    server = await start_server(jwt_leeway_seconds=30)
    now = int(time.time())
    skewed = jwt.encode(
        {"sub": "alice", "iat": now + 10, "nbf": now + 10, "exp": now + 600},
        TEST_JWT_SECRET,
        algorithm="HS256",
    )
    async with httpx.AsyncClient(base_url=server.url + API) as http:
        response = await http.get("/devices", headers={"Authorization": f"Bearer {skewed}"})
    assert response.status_code == 200


async def test_a_token_expired_beyond_the_leeway_is_401(start_server: ServerFactory) -> None:
    server = await start_server(jwt_leeway_seconds=30)
    now = int(time.time())
    expired = jwt.encode({"sub": "alice", "exp": now - 31}, TEST_JWT_SECRET, algorithm="HS256")
    async with httpx.AsyncClient(base_url=server.url + API) as http:
        response = await http.get("/devices", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
