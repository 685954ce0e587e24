"""Scenario 6: a notification broadcast (`"all": true`) to 100,000 users.

Setup (not measured): one INSERT ... SELECT generate_series gives each of N users of this run
one active Android device (so `all` reaches them), then ANALYZE.
Measured against one `messenger serve` (API and background work in one process):
- accept: the POST /internal/notifications round trip, seen by the client;
- materialise: from the row's `created_at` to its `finished_at` (both PostgreSQL's clock, so
  the polling interval never enters the figure): every recipient row and inbox entry written;
- inbox rows per second over that span.
Push and email delivery of notifications are not wired yet (see the README), so there is no
pushes/s figure here.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from bench.context import Bench
from bench.report import Figure
from bench.stack import log, service_settings, start_service

SCENARIO = "6 notification broadcast"

_GENERATE = """
INSERT INTO device_tokens (user_id, token, token_hash, platform, provider, device_name)
SELECT $1 || g, tok, sha256(convert_to(tok, 'UTF8')), 'android', 'fcm', 'bench'
FROM (SELECT g, $1 || 'tok-' || g || '-' || repeat('x', 40) AS tok
      FROM generate_series(1, $2) AS g) AS rows
"""
_AUDIENCE = """
SELECT count(*) FROM (SELECT user_id FROM device_tokens WHERE is_active
                      UNION SELECT user_id FROM notification_inbox) AS audience
"""


async def run(bench: Bench) -> None:
    users = bench.sizes.broadcast_users
    prefix = f"bench-{bench.run_id}-broadcast-"
    log(f"notifications: giving {users:,} users an active device")
    await bench.db.execute(_GENERATE, prefix, users, timeout=600)
    await bench.db.execute("ANALYZE device_tokens", timeout=600)

    settings = service_settings(bench.infra, None)
    headers = {"X-API-Key": settings["SERVICE_API_KEY"]}
    service = await start_service("serve", settings, bench.workdir, name="notifications")
    try:
        async with httpx.AsyncClient(
            base_url=f"{service.url}/api/v1/messenger", timeout=60
        ) as http:
            # Warm-up (not measured): one small send, so connections and statements exist.
            warm_up = await http.post(
                "/internal/notifications",
                json={"user_ids": [prefix + "1"], "title": "warm-up"},
                headers=headers,
            )
            await _finished(bench, warm_up.json()["notification_id"])
            audience = await bench.db.fetchval(_AUDIENCE)
            started = time.perf_counter()
            response = await http.post(
                "/internal/notifications",
                json={"all": True, "title": "Maintenance tonight", "body": "22:00-23:00 UTC"},
                headers=headers,
            )
            accept_ms = (time.perf_counter() - started) * 1000
        if response.status_code != 202:
            raise RuntimeError(f"broadcast refused: {response.status_code} {response.text}")
        notification_id = response.json()["notification_id"]
        row = await _finished(bench, notification_id)
    finally:
        await service.stop()
    inbox = await bench.db.fetchval(
        "SELECT count(*) FROM notification_inbox WHERE notification_id = $1::uuid", notification_id
    )
    if row["recipient_count"] != audience or inbox != audience:
        raise RuntimeError(
            f"broadcast reached {row['recipient_count']:,} recipients and {inbox:,} inboxes, "
            f"expected {audience:,}"
        )
    seconds = float(row["seconds"])
    materialising = float(row["materialising"])
    log(f"notifications: accepted in {accept_ms:.1f} ms, {inbox:,} inbox rows in {seconds:.2f} s")
    variant = f"all: {audience:,} users"
    add = bench.results.add
    add(Figure(SCENARIO, variant, "accept (POST round trip)", "ms", [accept_ms]))
    add(Figure(SCENARIO, variant, "accepted → last inbox row", "s", [seconds]))
    add(
        Figure(
            SCENARIO,
            variant,
            "first batch → last inbox row",
            "s",
            [materialising],
            note="the rest of the previous figure is the wake-up of the loop after the commit",
        )
    )
    add(Figure(SCENARIO, variant, "inbox rows per second", "/s", [inbox / materialising]))
    await bench.db.execute("DELETE FROM device_tokens WHERE user_id LIKE $1 || '%'", prefix)


async def _finished(bench: Bench, notification_id: str) -> Any:
    """Poll the notification row until it is `sent`; its own timestamps give the figures."""
    deadline = time.monotonic() + 600
    while True:
        row = await bench.db.fetchrow(
            "SELECT status, recipient_count,"
            " extract(epoch FROM finished_at - created_at) AS seconds,"
            " extract(epoch FROM finished_at - started_at) AS materialising"
            " FROM notifications WHERE id = $1::uuid",
            notification_id,
        )
        if row["status"] == "sent":
            return row
        if time.monotonic() > deadline:
            raise RuntimeError(f"notification not finished after 600 s: {dict(row)}")
        await asyncio.sleep(0.1)
