"""Push work survives a killed worker, and competing workers never send one push twice."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from typing import Any

import httpx

from backend.devtools.providers import Providers
from backend.tests.conftest import API, ServerFactory, bearer
from backend.tests.messaging import eventually, send_message
from backend.tests.push_durability_support import offline_group, workers
from backend.tests.push_helpers import register


async def test_work_of_a_worker_killed_mid_fan_out_is_finished_by_another(
    start_server: ServerFactory, base_settings: dict[str, Any], providers: Providers
) -> None:
    # The API node does no push work itself: only the worker processes send.
    api = await start_server(background=False, **providers.settings())
    slow = {
        "push_concurrency_per_provider": 2,
        "push_lease_seconds": 3,
        "push_send_timeout_seconds": 1,
    }
    async with (
        httpx.AsyncClient(base_url=api.url + API) as client,
        workers(base_settings, providers) as start_worker,
    ):
        conversation, tokens = await offline_group(client, 20)
        providers.fcm.latency = 0.2
        doomed = start_worker(**slow)
        await send_message(client, "alice", conversation["id"], "survives a crash")

        await eventually(lambda: providers.fcm.count() >= 4)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        delivered_before_crash = providers.fcm.count()
        assert delivered_before_crash < len(tokens)  # the crash really was mid-fan-out

        start_worker(**slow)
        await eventually(lambda: {r.key for r in providers.fcm.received} == set(tokens))
        await asyncio.sleep(1)

    pushes = Counter(r.key for r in providers.fcm.received)
    # At least once: only sends in flight at the kill, or answered in the last recording
    # interval (50 ms, shorter than one 200 ms round trip), may repeat: at most two rounds of
    # the concurrency bound. A repeat carries the same collapse tag, so the device replaces it.
    assert sum(count - 1 for count in pushes.values()) <= 2 * slow["push_concurrency_per_provider"]
    tags: dict[str, set[str]] = {}
    for push in providers.fcm.received:
        tags.setdefault(push.key, set()).add(push.payload["android"]["notification"]["tag"])
    assert all(len(tag) == 1 for tag in tags.values())


async def test_two_workers_on_one_backlog_never_send_the_same_push(
    start_server: ServerFactory, base_settings: dict[str, Any], providers: Providers
) -> None:
    api = await start_server(background=False, **providers.settings())
    async with (
        httpx.AsyncClient(base_url=api.url + API) as client,
        workers(base_settings, providers) as start_worker,
    ):
        conversation, tokens = await offline_group(client, 30)
        for index in range(5):
            await send_message(client, "alice", conversation["id"], f"backlog {index}")
        providers.fcm.latency = 0.02
        small_batches = {"push_claim_batch_size": 10, "push_concurrency_per_provider": 4}
        start_worker(**small_batches)
        start_worker(**small_batches)

        await eventually(lambda: providers.fcm.count() >= 5 * len(tokens))
        await asyncio.sleep(1)

    pushes = Counter((r.key, r.payload["data"]["message_id"]) for r in providers.fcm.received)
    assert len(pushes) == 5 * len(tokens)
    assert set(pushes.values()) == {1}


async def test_api_only_node_still_answers_test_pushes(
    start_server: ServerFactory, providers: Providers
) -> None:
    api = await start_server(background=False, **providers.settings())
    async with httpx.AsyncClient(base_url=api.url + API) as client:
        await register(
            client, "alice", {"device_token": "f" * 40, "platform": "android", "provider": "fcm"}
        )
        response = await client.post("/devices/test", headers=bearer("alice"))
    assert [r["outcome"] for r in response.json()["results"]] == ["delivered"]
