"""Concurrent callers' Redis commands share round trips, and each caller gets its own replies."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from backend.app.redis_batch import RedisBatcher
from backend.devtools import infra as test_infra
from backend.devtools.emulators.smtp import free_port


class CountingRedis(Redis):
    """A real client that counts the pipelines it opens (one per round trip here)."""

    pipelines = 0
    opened: asyncio.Event | None = None

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        self.pipelines += 1
        if self.opened is not None:
            self.opened.set()
        return super().pipeline(*args, **kwargs)


@pytest.fixture
async def redis(infrastructure: test_infra.TestInfrastructure) -> AsyncIterator[CountingRedis]:
    client = CountingRedis.from_url(infrastructure.redis_url, decode_responses=True)
    yield client
    await client.aclose()


def key() -> str:
    return f"batch-test:{uuid.uuid4().hex}"


async def test_each_caller_gets_the_replies_to_its_own_commands(redis: CountingRedis) -> None:
    batcher = RedisBatcher(redis)
    keys = [key() for _ in range(20)]

    replies = await asyncio.gather(
        *(batcher.run(lambda p, k=k, n=n: p.incrby(k, n).get(k)) for n, k in enumerate(keys))
    )

    assert replies == [[n, str(n)] for n in range(20)]
    await redis.delete(*keys)


async def test_callers_that_arrive_together_share_one_round_trip(redis: CountingRedis) -> None:
    batcher = RedisBatcher(redis)
    shared = key()

    await asyncio.gather(*(batcher.run(lambda p: p.incr(shared)) for _ in range(50)))

    assert redis.pipelines == 1
    assert await redis.get(shared) == "50"
    await redis.delete(shared)


async def test_callers_queued_during_a_round_trip_share_the_next_one(redis: CountingRedis) -> None:
    batcher = RedisBatcher(redis)
    shared = key()
    redis.opened = asyncio.Event()
    first = asyncio.create_task(batcher.run(lambda p: p.incr(shared)))
    await redis.opened.wait()  # the first round trip is on its way

    await asyncio.gather(first, *(batcher.run(lambda p: p.incr(shared)) for _ in range(30)))

    assert redis.pipelines == 2
    assert await redis.get(shared) == "31"
    await redis.delete(shared)


async def test_a_refused_command_is_that_callers_reply_only(redis: CountingRedis) -> None:
    batcher = RedisBatcher(redis)
    text, counter = key(), key()
    await redis.set(text, "not a number")

    refused, counted = await asyncio.gather(
        batcher.run(lambda p: p.incr(text)), batcher.run(lambda p: p.incr(counter))
    )

    assert isinstance(refused[0], ResponseError)
    assert counted == [1]
    await redis.delete(text, counter)


async def test_a_caller_that_gave_up_does_not_disturb_the_others(redis: CountingRedis) -> None:
    batcher = RedisBatcher(redis)
    shared = key()
    impatient = asyncio.create_task(batcher.run(lambda p: p.incr(shared)))
    patient = asyncio.create_task(batcher.run(lambda p: p.incr(shared)))
    impatient.cancel()

    assert await patient == [1]
    with pytest.raises(asyncio.CancelledError):
        await impatient
    await redis.delete(shared)


async def test_an_unreachable_redis_fails_every_caller_of_the_batch() -> None:
    unreachable = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    batcher = RedisBatcher(unreachable)

    results = await asyncio.gather(
        *(batcher.run(lambda p: p.incr("x")) for _ in range(3)), return_exceptions=True
    )

    assert all(isinstance(r, RedisConnectionError) for r in results)
    await unreachable.aclose()
