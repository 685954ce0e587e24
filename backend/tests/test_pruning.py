"""Idle-device pruning: the clock, the once-per-interval scheduling and `messenger prune`."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from backend.app.config import Settings
from backend.app.db import create_engine, create_sessionmaker
from backend.app.messenger.pruning import run_if_due
from backend.devtools import infra as test_infra
from backend.tests.conftest import LiveServer, ServerFactory, bearer

ALICE = bearer("alice")
ADMIN = bearer("root", admin=True)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def server(start_server: ServerFactory) -> LiveServer:
    # The background pruner stays off: each test decides when a pass runs.
    return await start_server(background=False)


async def register(client: httpx.AsyncClient, token: str | None = None) -> int:
    response = await client.post(
        "/devices/register",
        json={
            "device_token": token or f"fcm:{secrets.token_urlsafe(40)}",
            "platform": "android",
            "provider": "fcm",
        },
        headers=ALICE,
    )
    assert response.status_code in (200, 201), response.text
    return response.json()["device_token_id"]


async def age(
    sql: asyncpg.Connection,
    device_id: int,
    *,
    registered_days_ago: float,
    pushed_days_ago: float | None = None,
) -> None:
    await sql.execute(
        "UPDATE device_tokens SET updated_at = now() - make_interval(secs => $2::float8 * 86400),"
        " last_used_at = now() - make_interval(secs => $3::float8 * 86400) WHERE id = $1",
        device_id,
        registered_days_ago,
        pushed_days_ago,
    )


async def deactivate(sql: asyncpg.Connection, device_id: int, *, days_ago: float) -> None:
    """What a provider's "token is dead" answer does, back-dated."""
    await sql.execute(
        "UPDATE device_tokens SET is_active = false,"
        " deactivated_at = now() - make_interval(secs => $2::float8 * 86400) WHERE id = $1",
        device_id,
        days_ago,
    )


async def device_ids(client: httpx.AsyncClient) -> set[int]:
    response = await client.get("/admin/devices", params={"limit": 500}, headers=ADMIN)
    return {d["id"] for d in response.json()["devices"]}


async def run_pruner(database_url: str, settings: Settings) -> int | None:
    """One scheduling decision of one instance's background pruner."""
    engine = create_engine(database_url, pool_size=2)
    try:
        return await run_if_due(engine, create_sessionmaker(engine), settings)
    finally:
        await engine.dispose()


async def test_a_device_idle_for_91_days_is_pruned_and_one_idle_for_89_days_is_kept(
    client: httpx.AsyncClient, sql: asyncpg.Connection, database_url: str, settings: Settings
) -> None:
    kept, pruned = await register(client), await register(client)
    await age(sql, kept, registered_days_ago=89, pushed_days_ago=89)
    await age(sql, pruned, registered_days_ago=91, pushed_days_ago=91)

    assert await run_pruner(database_url, settings) == 1

    assert await device_ids(client) == {kept}


async def test_a_recent_push_keeps_an_old_registration_alive(
    client: httpx.AsyncClient, sql: asyncpg.Connection, database_url: str, settings: Settings
) -> None:
    device = await register(client)
    await age(sql, device, registered_days_ago=400, pushed_days_ago=1)

    assert await run_pruner(database_url, settings) == 0

    assert await device_ids(client) == {device}


async def test_a_device_never_pushed_to_is_idle_from_its_registration(
    client: httpx.AsyncClient, sql: asyncpg.Connection, database_url: str, settings: Settings
) -> None:
    device = await register(client)
    await age(sql, device, registered_days_ago=91, pushed_days_ago=None)

    assert await run_pruner(database_url, settings) == 1

    assert await device_ids(client) == set()


async def test_re_registering_counts_as_activity(
    client: httpx.AsyncClient, sql: asyncpg.Connection, database_url: str, settings: Settings
) -> None:
    token = f"fcm:{secrets.token_urlsafe(40)}"
    device = await register(client, token)
    await age(sql, device, registered_days_ago=91, pushed_days_ago=91)

    assert await register(client, token) == device

    assert await run_pruner(database_url, settings) == 0
    assert await device_ids(client) == {device}


async def test_an_inactive_device_is_pruned_once_deactivated_for_30_days(
    client: httpx.AsyncClient, sql: asyncpg.Connection, database_url: str, settings: Settings
) -> None:
    recently_dead, long_dead = await register(client), await register(client)
    await deactivate(sql, recently_dead, days_ago=29)
    await deactivate(sql, long_dead, days_ago=31)

    assert await run_pruner(database_url, settings) == 1

    assert await device_ids(client) == {recently_dead}


async def test_the_idle_threshold_is_device_idle_days(
    client: httpx.AsyncClient,
    sql: asyncpg.Connection,
    database_url: str,
    base_settings: dict[str, object],
) -> None:
    kept, pruned = await register(client), await register(client)
    await age(sql, kept, registered_days_ago=9)
    await age(sql, pruned, registered_days_ago=11)

    removed = await run_pruner(
        database_url,
        Settings(_env_file=None, **{**base_settings, "device_idle_days": 10}),  # type: ignore[call-arg]
    )

    assert removed == 1
    assert await device_ids(client) == {kept}


async def test_only_one_of_several_concurrent_instances_prunes(
    client: httpx.AsyncClient, sql: asyncpg.Connection, database_url: str, settings: Settings
) -> None:
    device = await register(client)
    await age(sql, device, registered_days_ago=91)

    results = await asyncio.gather(*(run_pruner(database_url, settings) for _ in range(6)))

    assert sorted(results, key=lambda r: r is None) == [1, None, None, None, None, None]


async def test_a_pass_is_not_repeated_within_the_interval_after_a_restart(
    client: httpx.AsyncClient, sql: asyncpg.Connection, database_url: str, settings: Settings
) -> None:
    assert await run_pruner(database_url, settings) == 0
    device = await register(client)
    await age(sql, device, registered_days_ago=91)

    # A restarted instance: fresh engine, same database.
    assert await run_pruner(database_url, settings) is None

    assert await device_ids(client) == {device}


async def test_a_pass_runs_again_once_the_last_one_is_older_than_the_interval(
    client: httpx.AsyncClient, sql: asyncpg.Connection, database_url: str, settings: Settings
) -> None:
    assert await run_pruner(database_url, settings) == 0
    device = await register(client)
    await age(sql, device, registered_days_ago=91)
    await sql.execute(
        "UPDATE maintenance_runs SET last_completed_at = now() - make_interval(secs => $1::float8 + 1)",
        settings.prune_interval_seconds,
    )

    assert await run_pruner(database_url, settings) == 1


async def test_a_running_server_prunes_in_the_background_when_a_pass_is_due(
    client: httpx.AsyncClient, sql: asyncpg.Connection, start_server: ServerFactory
) -> None:
    device = await register(client)
    await age(sql, device, registered_days_ago=91)

    await start_server(background=True)

    for _ in range(300):  # the pass runs right after startup; poll for up to ~15 s
        if device not in await device_ids(client):
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the background pruner did not remove the idle device")
    # The pass goes on (push work, notifications) before it records its completion.
    for _ in range(300):
        if await sql.fetchval("SELECT count(*) FROM maintenance_runs") == 1:
            break
        await asyncio.sleep(0.05)
    assert await sql.fetchval("SELECT count(*) FROM maintenance_runs") == 1


async def test_pruned_devices_are_counted_in_the_metrics(
    server: LiveServer,
    client: httpx.AsyncClient,
    sql: asyncpg.Connection,
    database_url: str,
    settings: Settings,
) -> None:
    async def pruned_total() -> float:
        async with httpx.AsyncClient() as http:
            text = (await http.get(server.url + "/metrics")).text
        match = re.search(r"^messenger_pruned_devices_total (\S+)$", text, re.MULTILINE)
        assert match, text
        return float(match.group(1))

    for _ in range(2):
        await age(sql, await register(client), registered_days_ago=91)
    before = await pruned_total()

    await run_pruner(database_url, settings)

    assert await pruned_total() == before + 2


async def run_cli(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "backend.app.cli",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    return process.returncode or 0, stdout.decode(), stderr.decode()


def cli_env(database_url: str, redis_url: str) -> dict[str, str]:
    """The caller's environment minus any service setting, plus the test database and Redis."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    return {
        **env,
        "PYTHONPATH": str(PROJECT_ROOT),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
    }


async def test_the_prune_command_prints_exactly_one_line_with_the_count(
    client: httpx.AsyncClient,
    sql: asyncpg.Connection,
    database_url: str,
    infrastructure: test_infra.TestInfrastructure,
    tmp_path: Path,
) -> None:
    idle_31, idle_29, dead_31 = (
        await register(client),
        await register(client),
        await register(client),
    )
    await age(sql, idle_31, registered_days_ago=31)
    await age(sql, idle_29, registered_days_ago=29)
    await deactivate(sql, dead_31, days_ago=31)

    code, stdout, stderr = await run_cli(
        "prune", "--days", "30", env=cli_env(database_url, infrastructure.redis_url), cwd=tmp_path
    )

    assert code == 0, stderr
    assert stdout == "pruned 2\n"
    assert "pruned" in stderr  # logging goes to stderr
    assert await device_ids(client) == {idle_29}


async def test_the_prune_command_uses_device_idle_days_without_days(
    client: httpx.AsyncClient,
    sql: asyncpg.Connection,
    database_url: str,
    infrastructure: test_infra.TestInfrastructure,
    tmp_path: Path,
) -> None:
    await age(sql, await register(client), registered_days_ago=31)

    code, stdout, stderr = await run_cli(
        "prune", env=cli_env(database_url, infrastructure.redis_url), cwd=tmp_path
    )

    assert code == 0, stderr
    assert stdout == "pruned 0\n"
