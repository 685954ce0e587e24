"""A worker killed (SIGKILL) in the middle of a broadcast: another one finishes it, and every
recipient ends up with exactly one inbox entry."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx

from backend.tests.conftest import API, Providers, ServerFactory
from backend.tests.messaging import eventually
from backend.tests.notification_helpers import accepted, admin_entry, inbox_ids, wait_until_sent
from backend.tests.push_durability_support import worker_env, workers

RECIPIENTS = 5_000
SEND_CONCURRENCY = 50


async def while_progressing(count: Callable[[], Awaitable[int]], target: int) -> None:
    """Wait for `count()` to reach `target`, one hang guard per step of progress (a loaded
    machine may take longer than one guard for 5,000 recipients; a stuck one still fails)."""
    while (seen := await count()) < target:

        async def moved(seen: int = seen) -> bool:
            return await count() > seen

        await eventually(moved)


def start_worker(settings: dict[str, Any]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "backend.app.cli", "worker"],
        env=worker_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_a_broadcast_survives_a_killed_worker_without_duplicates(
    start_server: ServerFactory, base_settings: dict[str, Any], sql: asyncpg.Connection
) -> None:
    # The API node does no background work; 5,000 ids need more than the default body limit.
    api = await start_server(background=False, max_body_bytes=1_000_000)
    # Small batches, so the kill lands in the middle of the work.
    worker_settings = {
        **base_settings,
        "notification_batch_size": 50,
        "notification_sweep_interval_seconds": 0.1,
    }
    users = [f"member-{index:05d}" for index in range(RECIPIENTS)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        async with httpx.AsyncClient(base_url=api.url + API, timeout=30) as client:
            notification_id = await accepted(
                client, user_ids=users, title="Maintenance", channels=["in_app"]
            )
            processes.append(start_worker(worker_settings))

            async def some_done() -> bool:
                return await sql.fetchval("SELECT count(*) FROM notification_inbox") >= 200

            await eventually(some_done)
            processes[0].send_signal(signal.SIGKILL)
            processes[0].wait(10)
            assert await sql.fetchval("SELECT count(*) FROM notification_inbox") < RECIPIENTS

            processes.append(start_worker(worker_settings))
            sent = await wait_until_sent(client, notification_id)

            assert sent["recipients"] == RECIPIENTS
            assert sent["in_app"] == {"read": 0, "unread": RECIPIENTS}
            for user in (users[0], users[2_500], users[-1]):
                assert await inbox_ids(client, user) == [notification_id]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)

    per_user = await sql.fetch(
        "SELECT user_id, count(*) AS n FROM notification_inbox GROUP BY user_id"
    )
    assert sorted(row["user_id"] for row in per_user) == users
    assert {row["n"] for row in per_user} == {1}
    assert await sql.fetchval("SELECT count(*) FROM notification_recipients") == RECIPIENTS


async def test_a_push_broadcast_survives_a_killed_worker_and_pushes_each_device_once(
    start_server: ServerFactory,
    base_settings: dict[str, Any],
    providers: Providers,
    sql: asyncpg.Connection,
) -> None:
    api = await start_server(background=False, max_body_bytes=1_000_000, **providers.settings())
    users = [f"member-{index:05d}" for index in range(RECIPIENTS)]
    # 5,000 Android devices, one per member (registered in one statement: setup, not the subject).
    await sql.execute(
        """
        INSERT INTO device_tokens (user_id, token, token_hash, platform, provider)
        SELECT u, 'fcm-' || u || '-token', sha256(convert_to('fcm-' || u || '-token', 'UTF8')),
               'android', 'fcm'
        FROM unnest($1::varchar[]) AS u
        """,
        users,
    )
    small_batches = {
        "notification_batch_size": 50,
        "notification_sweep_interval_seconds": 0.1,
        "push_concurrency_per_provider": SEND_CONCURRENCY,
    }
    async with (
        httpx.AsyncClient(base_url=api.url + API, timeout=30) as client,
        workers(base_settings, providers) as start_push_worker,
    ):
        notification_id = await accepted(
            client, user_ids=users, title="Maintenance", channels=["push"]
        )
        # The doomed worker materialises but does not get round to pushing (its push sweep is
        # an hour away): the kill lands mid-materialisation, with push work queued in the outbox.
        doomed = start_push_worker(**small_batches, push_sweep_interval_seconds=3600)

        async def some_materialised() -> bool:
            return await sql.fetchval("SELECT count(*) FROM notification_recipients") >= 200

        await eventually(some_materialised)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        materialised = await sql.fetchval("SELECT count(*) FROM notification_recipients")
        assert materialised < RECIPIENTS  # the crash really was mid-broadcast

        start_push_worker(**small_batches)

        async def materialised_now() -> int:
            return int(await sql.fetchval("SELECT count(*) FROM notification_recipients"))

        async def pushed() -> int:
            return providers.fcm.count()

        await while_progressing(materialised_now, RECIPIENTS)
        await wait_until_sent(client, notification_id)
        tokens = {f"fcm-{user}-token" for user in users}
        await while_progressing(pushed, RECIPIENTS)
        await eventually(lambda: {r.key for r in providers.fcm.received} == tokens)

        async def settled() -> bool:
            return (await admin_entry(client, notification_id))["push"]["pending"] == 0

        await eventually(settled)

    # Materialised once: every member is in exactly one push job of this notification.
    assert (
        await sql.fetchval(
            "SELECT count(*) FROM (SELECT unnest(recipient_ids) FROM push_jobs) AS r"
        )
        == await sql.fetchval("SELECT count(DISTINCT u) FROM push_jobs, unnest(recipient_ids) AS u")
        == RECIPIENTS
    )
    pushes = Counter(r.key for r in providers.fcm.received)
    assert len(pushes) == RECIPIENTS
    assert set(pushes.values()) == {1}
    assert all(
        push.payload["data"]["notification_id"] == notification_id
        for push in providers.fcm.received
    )
