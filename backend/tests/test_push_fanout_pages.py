"""A fan-out goes page by page (the first of PUSH_FANOUT_BATCH_SIZE recipients, each next one
twice as large): the first page's pushes go out before the next page is even read, and a fan-out cut short between pages is finished by
the next taker of the job without a second push to anyone."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.config import Settings
from backend.app.db import create_engine, create_sessionmaker
from backend.app.messenger.push.dispatcher import PushDispatcher
from backend.app.messenger.push.fanout import FanOutPolicy
from backend.app.messenger.push.repository import JobRow
from backend.app.messenger.push.vocabulary import SkipReason
from backend.app.redis_client import create_redis
from backend.devtools.providers import Providers
from backend.tests.conftest import API, ServerFactory
from backend.tests.messaging import eventually, send_message
from backend.tests.push_durability_support import offline_group

PAGE = 4
MEMBERS = 10  # user0 … user9: pages of 4 and then (up to 8) 6, in user id order


@asynccontextmanager
async def dispatcher(settings: Settings, policy: FanOutPolicy) -> AsyncIterator[PushDispatcher]:
    """A worker's push dispatcher in this process, so its fan-out policy can be watched."""
    engine = create_engine(settings.database_url, pool_size=4)
    redis = create_redis(settings.redis_url)
    push = PushDispatcher(
        settings=settings, sessionmaker=create_sessionmaker(engine), redis=redis, policy=policy
    )
    await push.start(run_workers=True)
    try:
        yield push
    finally:
        await push.stop()
        await redis.aclose()
        await engine.dispose()


class PageWatch:
    """A recipient filter (the policy's seam) that records each page and, on the second,
    waits for `release` before letting the fan-out go on."""

    def __init__(self) -> None:
        self.pages: list[list[str]] = []
        self.release = asyncio.Event()

    async def __call__(self, session: AsyncSession, job: JobRow, user_ids: list[str]) -> set[str]:
        self.pages.append(sorted(user_ids))
        if len(self.pages) == 2:
            await self.release.wait()
        return set()


async def message_to_offline_group(start_server: ServerFactory, providers: Providers) -> list[str]:
    """Devices' tokens in user order; the message's push job waits in the outbox (the API
    node does no push work)."""
    api = await start_server(background=False, **providers.settings())
    async with httpx.AsyncClient(base_url=api.url + API) as client:
        conversation, tokens = await offline_group(client, MEMBERS)
        await send_message(client, "alice", conversation["id"], "to every page")
    return tokens


def worker_settings(base_settings: dict[str, Any], providers: Providers, **extra: Any) -> Settings:
    values = {**base_settings, **providers.settings(), "push_fanout_batch_size": PAGE, **extra}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def job_finished(sql: asyncpg.Connection) -> bool:
    return await sql.fetchval(
        "SELECT j.fanned_out_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM push_deliveries d "
        "WHERE d.job_id = j.id AND d.status = 'pending') FROM push_jobs j WHERE kind = 'message'"
    )


async def test_first_page_is_pushed_before_the_next_page_is_read(
    start_server: ServerFactory,
    base_settings: dict[str, Any],
    providers: Providers,
    sql: asyncpg.Connection,
) -> None:
    tokens = await message_to_offline_group(start_server, providers)
    watch = PageWatch()
    policy = FanOutPolicy()
    policy.register(SkipReason.BLOCKED, watch)

    async with dispatcher(worker_settings(base_settings, providers), policy):
        # The fan-out is held on its second page: only the first page can be pushed now.
        await eventually(lambda: providers.fcm.count() >= PAGE and len(watch.pages) == 2)
        assert {r.key for r in providers.fcm.received} == set(tokens[:PAGE])
        assert await sql.fetchval("SELECT fanned_out_at FROM push_jobs") is None
        watch.release.set()
        await eventually(lambda: job_finished(sql))

    assert watch.pages == [[f"user{i}" for i in range(a, b)] for a, b in ((0, 4), (4, 10))]
    assert Counter(r.key for r in providers.fcm.received) == Counter(tokens)


async def test_fan_out_cut_short_between_pages_is_finished_without_a_second_push(
    start_server: ServerFactory,
    base_settings: dict[str, Any],
    providers: Providers,
    sql: asyncpg.Connection,
) -> None:
    tokens = await message_to_offline_group(start_server, providers)
    short_lease = {"push_lease_seconds": 3, "push_send_timeout_seconds": 1}
    settings = worker_settings(base_settings, providers, **short_lease)
    watch = PageWatch()  # never released: this worker stops in the middle of the fan-out
    held = FanOutPolicy()
    held.register(SkipReason.BLOCKED, watch)
    async with dispatcher(settings, held):
        await eventually(lambda: providers.fcm.count() >= PAGE and len(watch.pages) == 2)
        await eventually(
            lambda: sql.fetchval(
                "SELECT count(*) = 0 FROM push_deliveries WHERE status = 'pending'"
            )
        )
    assert await sql.fetchval("SELECT count(*) FROM push_deliveries") == PAGE

    # Another worker takes the job over once its lease runs out and redoes every page.
    async with dispatcher(settings, FanOutPolicy()):
        await eventually(lambda: job_finished(sql))

    assert Counter(r.key for r in providers.fcm.received) == Counter(tokens)
    assert await sql.fetchval("SELECT fanout_attempts FROM push_jobs") == 2
