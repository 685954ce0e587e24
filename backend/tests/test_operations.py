"""What operators rely on: health, metrics, the API description, migrations and the CLI."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from alembic import command
from backend.app.cli import PROJECT_ROOT
from backend.app.config import Settings
from backend.app.embedded import redis_server_binary
from backend.app.schema_migrations import alembic_config, run_migrations
from backend.app.vapid import b64url
from backend.devtools import infra as test_infra
from backend.tests.conftest import API, LiveServer, ServerFactory

CONTRACT_ENDPOINTS = {
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("POST", f"{API}/devices/register"),
    ("DELETE", f"{API}/devices/{{}}"),
    ("GET", f"{API}/devices"),
    ("POST", f"{API}/devices/test"),
    ("GET", f"{API}/push/vapid-public-key"),
    ("GET", f"{API}/admin/devices"),
    ("GET", f"{API}/admin/devices/stats"),
    ("POST", f"{API}/conversations"),
    ("GET", f"{API}/conversations"),
    ("GET", f"{API}/conversations/{{}}"),
    ("GET", f"{API}/conversations/{{}}/notification-settings"),
    ("PUT", f"{API}/conversations/{{}}/notification-settings"),
    ("POST", f"{API}/conversations/{{}}/messages"),
    ("GET", f"{API}/conversations/{{}}/messages"),
    ("GET", f"{API}/presence"),
    ("POST", f"{API}/internal/notify"),
}
CONTRACT_METRICS = (
    "messenger_pushes_total",
    "messenger_push_skipped_total",
    "messenger_push_latency_seconds",
    "messenger_pruned_devices_total",
    "messenger_websocket_connections",
)


async def get(server: LiveServer, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url) as http:
        return await http.get(path)


# --- Health and metrics ------------------------------------------------------------------------


async def test_health_reports_ok_when_database_and_redis_answer(server: LiveServer) -> None:
    response = await get(server, "/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok", "push": []}


@pytest.fixture
def private_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own, so that the test can stop it."""
    directory = Path(tempfile.mkdtemp(prefix="msgredis"))
    socket_path = directory / "redis.sock"
    process = subprocess.Popen(
        [
            redis_server_binary(),
            *("--port", "0", "--unixsocket", str(socket_path), "--dir", str(directory)),
            *("--save", "", "--appendonly", "no"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if socket_path.exists():
                break
            time.sleep(0.02)
        yield f"unix://{socket_path}", process
    finally:
        process.kill()
        process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


async def test_health_is_503_naming_redis_when_redis_goes_down(
    start_server: ServerFactory, private_redis: tuple[str, subprocess.Popen[bytes]]
) -> None:
    redis_url, redis_process = private_redis
    server = await start_server(redis_url=redis_url, background=False)
    assert (await get(server, "/health")).status_code == 200

    redis_process.terminate()
    await asyncio.to_thread(redis_process.wait, 10)
    response = await get(server, "/health")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] != "ok"
    assert body["database"] == "ok"
    assert body["redis"].startswith("down")


async def test_health_is_503_naming_the_database_when_it_is_down(
    start_server: ServerFactory,
) -> None:
    server = await start_server(
        database_url="postgresql://postgres@127.0.0.1:1/messenger", background=False
    )

    response = await get(server, "/health")

    assert response.status_code == 503
    body = response.json()
    assert body["database"].startswith("down")
    assert body["redis"] == "ok"


async def test_metrics_expose_the_contract_metric_families(server: LiveServer) -> None:
    response = await get(server, "/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for name in CONTRACT_METRICS:
        assert re.search(rf"^# TYPE {name} ", response.text, re.MULTILINE), name
    # Samples that exist before any traffic.
    assert re.search(r"^messenger_pruned_devices_total \S+$", response.text, re.MULTILINE)
    assert re.search(r"^messenger_websocket_connections \S+$", response.text, re.MULTILINE)


# --- API description ---------------------------------------------------------------------------


async def test_the_openapi_schema_is_public_and_lists_every_contract_endpoint(
    server: LiveServer, subtests: pytest.Subtests
) -> None:
    response = await get(server, "/openapi.json")

    assert response.status_code == 200
    documented = {
        (method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
        for path, operations in response.json()["paths"].items()
        for method in operations
    }
    for method, path in sorted(CONTRACT_ENDPOINTS, key=lambda e: (e[1], e[0])):
        with subtests.test(f"{method} {path}"):
            assert (method, path) in documented


async def test_the_interactive_docs_are_public(server: LiveServer) -> None:
    response = await get(server, "/docs")

    assert response.status_code == 200
    assert "openapi.json" in response.text


async def test_the_vapid_public_key_is_served_without_authentication(
    start_server: ServerFactory,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    private = b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    public = b64url(
        key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )
    server = await start_server(web_push_private_key=private, web_push_public_key=public)

    response = await get(server, f"{API}/push/vapid-public-key")

    assert response.status_code == 200
    assert response.json() == {"public_key": public}


# --- Migrations ----------------------------------------------------------------------------------


async def _tables(url: str) -> set[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await connection.close()


def test_migrations_upgrade_downgrade_and_upgrade_again_on_a_fresh_database(
    infrastructure: test_infra.TestInfrastructure,
) -> None:
    name = test_infra.create_database(infrastructure, prefix="messenger_migrations")
    url = infrastructure.database_url(name)
    try:
        run_migrations(url, "head")
        tables = asyncio.run(_tables(url))
        assert {"device_tokens", "maintenance_runs", "messages", "push_jobs"} <= tables

        command.downgrade(alembic_config(url), "base")
        assert asyncio.run(_tables(url)) == {"alembic_version"}

        run_migrations(url, "head")
        assert asyncio.run(_tables(url)) == tables
    finally:
        test_infra.drop_database(infrastructure, name)


# --- Command line --------------------------------------------------------------------------------


def messenger(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    return subprocess.run(
        [sys.executable, "-m", "backend.app.cli", *args],
        env={**base, "PYTHONPATH": str(PROJECT_ROOT), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_vapid_keys_command_prints_a_usable_key_pair(tmp_path: Path) -> None:
    result = messenger("vapid-keys", tmp_path=tmp_path)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == [
        "WEB_PUSH_PRIVATE_KEY",
        "WEB_PUSH_PUBLIC_KEY",
    ]
    private, public = (line.split("=", 1)[1] for line in lines)

    def decode(value: str) -> bytes:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))

    key = ec.derive_private_key(int.from_bytes(decode(private), "big"), ec.SECP256R1())
    point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), decode(public))
    assert key.public_key().public_numbers() == point.public_numbers()


async def test_the_token_command_mints_a_jwt_the_server_accepts(
    server: LiveServer, tmp_path: Path
) -> None:
    result = await asyncio.to_thread(
        messenger,
        "token",
        "--user",
        "ops",
        "--name",
        "Ops",
        "--admin",
        tmp_path=tmp_path,
        JWT_SECRET=server.settings.jwt_secret,
    )

    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    claims = jwt.decode(token, server.settings.jwt_secret, algorithms=["HS256"])
    assert (claims["sub"], claims["name"], claims["roles"]) == ("ops", "Ops", ["admin"])
    async with httpx.AsyncClient(base_url=server.url + API) as http:
        response = await http.get(
            "/admin/devices/stats", headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200


# --- Configuration -------------------------------------------------------------------------------


def test_env_example_documents_every_setting_with_its_default() -> None:
    documented = dict(
        line.removeprefix("# ").split("=", 1)
        for line in (PROJECT_ROOT / ".env.example").read_text().splitlines()
        if re.fullmatch(r"# [A-Z][A-Z0-9_]*=.*", line)
    )

    assert sorted(name.lower() for name in documented) == sorted(Settings.model_fields)
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert Settings(_env_file=None, **documented) == defaults  # type: ignore[arg-type]


async def test_a_request_while_the_database_is_down_is_503_not_500(
    start_server: ServerFactory,
) -> None:
    from backend.tests.conftest import bearer

    server = await start_server(
        database_url="postgresql://postgres@127.0.0.1:1/messenger", background=False
    )

    async with httpx.AsyncClient(base_url=server.url + API) as http:
        response = await http.get("/conversations", headers=bearer("alice"))

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
