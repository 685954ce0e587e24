"""Scenario 7: computing the daily digest for N users whose digest time has come.

Setup (not measured): N users, each in a conversation of their own with one unread message
from a shared sender, and each with the digest on, an address, and the digest due now.
Measured: the app's own `run_due_digests` (claim due users in batches with SKIP LOCKED, what
earlier digests listed, the unread summary, the `digest_runs` rows, the rendered emails
queued, every user rescheduled), on the app's engine. Sending (SMTP) is not part of it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from backend.app.config import Settings
from backend.app.db import create_engine, create_sessionmaker
from backend.app.messenger.digest.scheduler import run_due_digests
from backend.app.messenger.digest.sources import default_source
from bench.context import Bench
from bench.report import Figure
from bench.stack import log

SCENARIO = "7 digest"

_SETUP = [
    """
    INSERT INTO conversations (id, title, created_by, last_seq)
    SELECT md5($2 || g)::uuid, CASE WHEN g % 2 = 0 THEN 'Room ' || g END, $2 || 'sender', 1
    FROM generate_series(1, $1) AS g
    """,
    """
    INSERT INTO conversation_participants (conversation_id, user_id, last_read_seq)
    SELECT md5($2 || g)::uuid, u, CASE WHEN u = $2 || 'sender' THEN 1 ELSE 0 END
    FROM generate_series(1, $1) AS g, LATERAL (VALUES ($2 || g), ($2 || 'sender')) AS p(u)
    """,
    """
    INSERT INTO messages (id, conversation_id, sender_id, content, seq)
    SELECT gen_random_uuid(), md5($2 || g)::uuid, $2 || 'sender', 'Lunch at ' || g || '?', 1
    FROM generate_series(1, $1) AS g
    """,
    """
    INSERT INTO notification_preferences (user_id, email_address, digest_enabled, digest_time,
                                          digest_timezone, digest_next_at)
    SELECT $2 || g, 'u' || g || '@bench.test', true, '08:00', $3, now() - interval '1 second'
    FROM generate_series(1, $1) AS g
    """,
]


def _midday_zone() -> str:
    offset = 12 - datetime.now(UTC).hour
    if offset == 0:
        return "UTC"
    return f"Etc/GMT-{offset}" if offset > 0 else f"Etc/GMT+{-offset}"


async def run(bench: Bench) -> None:
    users = bench.sizes.digest_users
    prefix = f"bench-{bench.run_id}-digest-"
    log(f"digest: generating {users:,} users with a due digest and one unread message each")
    started = time.perf_counter()
    for statement in _SETUP[:3]:
        await bench.db.execute(statement, users, prefix, timeout=1800)
    await bench.db.execute(_SETUP[3], users, prefix, _midday_zone(), timeout=1800)
    for table in ("conversations", "conversation_participants", "messages"):
        await bench.db.execute(f"ANALYZE {table}", timeout=600)
    await bench.db.execute("ANALYZE notification_preferences", timeout=600)
    log(f"digest: setup took {time.perf_counter() - started:.1f} s")

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=bench.infra.database_url, smtp_host="127.0.0.1"
    )
    engine = create_engine(settings.database_url, pool_size=2)
    try:
        sessionmaker = create_sessionmaker(engine)
        async with engine.connect():
            pass
        started = time.perf_counter()
        queued = await run_due_digests(sessionmaker, settings, source=default_source())
        elapsed = time.perf_counter() - started
        await bench.db.execute("DELETE FROM emails WHERE to_address LIKE '%@bench.test'")
    finally:
        await engine.dispose()
    if queued != users:
        raise RuntimeError(f"run_due_digests queued {queued:,} digests, expected {users:,}")
    log(f"digest: {queued:,} digests in {elapsed:.2f} s")
    variant = f"{users:,} users, batch {settings.digest_batch_size}"
    bench.results.add(Figure(SCENARIO, variant, "compute and queue every digest", "s", [elapsed]))
    bench.results.add(Figure(SCENARIO, variant, "digests per second", "/s", [queued / elapsed]))
