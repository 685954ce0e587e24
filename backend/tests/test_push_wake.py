"""An API-only server (`serve --no-background`) wakes the `messenger worker` processes as
soon as it commits push work, instead of leaving the job to their next sweep."""

from __future__ import annotations

from typing import Any

import httpx
from redis.asyncio import Redis

from backend.app.messenger.push.wake import WAKE_CHANNEL
from backend.app.messenger.realtime.broadcast import broadcast_channel
from backend.devtools.providers import Providers
from backend.tests.conftest import API, ServerFactory
from backend.tests.messaging import eventually, send_message
from backend.tests.push_durability_support import offline_group, workers

NEVER = 3600  # a sweep interval no test outlives: only a wake-up can start the fan-out


async def test_a_message_sent_to_an_api_only_server_is_pushed_without_waiting_for_a_sweep(
    start_server: ServerFactory, base_settings: dict[str, Any], providers: Providers
) -> None:
    api = await start_server(background=False, **providers.settings())
    redis = Redis.from_url(base_settings["redis_url"])
    channel = broadcast_channel(redis, WAKE_CHANNEL)

    async def worker_listens() -> bool:
        return dict(await redis.pubsub_numsub(channel)).get(channel.encode(), 0) >= 1

    async with (
        httpx.AsyncClient(base_url=api.url + API) as client,
        workers(base_settings, providers) as start_worker,
    ):
        conversation, _tokens = await offline_group(client, 1)
        start_worker(push_sweep_interval_seconds=NEVER)
        await eventually(worker_listens)

        await send_message(client, "alice", conversation["id"], "wake up")

        await eventually(lambda: providers.fcm.count() == 1)
    await redis.aclose()
