"""Badge cost: the fan-out's database step for one message to N offline recipients × 2
devices, with the per-recipient unread totals (badges) and without, interleaved.

Measures `FanOutPolicy.candidates` + `badges` + `create_deliveries` (the transaction the
badge adds to), in this process against a fresh migrated database; providers are not
involved (sending does not change with a badge: one integer more in each payload).

    python -m bench.badge_cost [--recipients 1000] [--repeats 15]
Needs BENCH_DATABASE_URL (a server where databases may be created), default the test one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid

import asyncpg

from backend.app.config import sqlalchemy_url
from backend.app.db import create_engine, create_sessionmaker
from backend.app.messenger.push import repository
from backend.app.messenger.push.fanout import FanOutPolicy
from bench.stack import create_conversation, create_devices


async def seed(db: asyncpg.Connection, recipients: list[str], sender: str) -> tuple[str, int]:
    await create_devices(db, None, recipients, per_user=2)
    conversation_id = await create_conversation(db, title="Bench", owner=sender, members=recipients)
    # Some history so unread counts are real: 20 earlier messages, one per job below.
    for seq in range(1, 21):
        await db.execute(
            "INSERT INTO messages (id, conversation_id, sender_id, content, seq) "
            "VALUES ($1, $2, $3, 'x', $4)",
            uuid.uuid4(),
            uuid.UUID(conversation_id),
            sender,
            seq,
        )
    await db.execute(
        "UPDATE conversations SET last_seq = 20 WHERE id = $1", uuid.UUID(conversation_id)
    )
    return conversation_id, 20


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    server = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"bench_badges_{os.getpid()}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = server.rsplit("/", 1)[0] + "/" + name
    try:
        migrate = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "alembic",
            "upgrade",
            "head",
            env={**os.environ, "DATABASE_URL": url},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, errors = await migrate.communicate()
        if migrate.returncode:
            raise RuntimeError(f"migration failed: {errors.decode()[-2000:]}")
        db = await asyncpg.connect(url)
        sender = "bench-sender"
        recipients = [f"bench-r{i}" for i in range(args.recipients)]
        conversation_id, _ = await seed(db, recipients, sender)
        engine = create_engine(sqlalchemy_url(url), pool_size=2)
        sessionmaker = create_sessionmaker(engine)
        policies = {"badges": FanOutPolicy(), "no badges": FanOutPolicy(with_badges=False)}
        times: dict[str, list[float]] = {k: [] for k in policies}
        for repeat in range(args.repeats + 1):  # the first round warms up
            for variant, policy in policies.items():
                job_id = await db.fetchval(
                    "INSERT INTO push_jobs (kind, conversation_id, sender_id, title, body, data) "
                    "VALUES ('message', $1, $2, 't', 'b', '{}') RETURNING id",
                    uuid.UUID(conversation_id),
                    sender,
                )
                async with sessionmaker.begin() as session:
                    job = await repository.claim_job(session, job_id=job_id, lease=30)
                assert job is not None
                started = time.perf_counter()
                async with sessionmaker.begin() as session:
                    audience = await policy.candidates(session, job)
                async with sessionmaker.begin() as session:
                    badges = await policy.badges(session, audience)
                    await repository.create_deliveries(
                        session,
                        job_id=job.id,
                        user_ids=audience.user_ids,
                        lease=30,
                        owned=False,
                        badges=badges,
                    )
                elapsed = time.perf_counter() - started
                if repeat:
                    times[variant].append(elapsed)
        await engine.dispose()
        await db.close()
        with_badges = statistics.median(times["badges"])
        without = statistics.median(times["no badges"])
        devices = 2 * args.recipients
        print(f"fan-out DB step, {args.recipients} recipients x 2 devices, {args.repeats} repeats:")
        print(
            f"  without badges: median {without * 1000:.1f} ms ({devices / without:,.0f} deliveries/s)"
        )
        print(
            f"  with badges:    median {with_badges * 1000:.1f} ms ({devices / with_badges:,.0f} deliveries/s)"
        )
        print(f"  badge cost: {100 * (with_badges - without) / without:+.1f} %")
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
