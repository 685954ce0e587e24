"""Retryable provider answers are retried with backoff; dead answers and outages end cleanly."""

from __future__ import annotations

import asyncio

import httpx

from backend.devtools.emulators import apns, fcm, webpush
from backend.devtools.providers import Providers
from backend.tests.conftest import ServerFactory, bearer
from backend.tests.messaging import eventually
from backend.tests.push_helpers import metric, register_all_providers


async def test_rate_limited_push_is_retried_after_retry_after_and_delivered(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    devices = await register_all_providers(push_client, providers, "alice")
    providers.fcm.script(devices.fcm_token, fcm.quota_exceeded(retry_after=1))

    response = await push_client.post("/devices/test", headers=bearer("alice"))

    outcomes = {r["provider"]: r["outcome"] for r in response.json()["results"]}
    assert outcomes["fcm"] == "retry_scheduled"
    received = await asyncio.to_thread(providers.fcm.wait_for, 2)
    assert [r.status for r in received] == [429, 200]
    assert received[1].at - received[0].at >= 0.9  # Retry-After honoured

    async def device_used() -> bool:
        listed = (await push_client.get("/devices", headers=bearer("alice"))).json()["devices"]
        return any(d["id"] == devices.ids["fcm"] and d["last_used_at"] for d in listed)

    await eventually(device_used)


async def test_unavailable_provider_is_retried_with_backoff_then_delivered(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    devices = await register_all_providers(push_client, providers, "alice")
    providers.apns.script(devices.apns_token, apns.reply(503, "ServiceUnavailable"))
    providers.webpush.script(devices.endpoint, webpush.reply(503), webpush.reply(500))

    response = await push_client.post("/devices/test", headers=bearer("alice"))

    outcomes = {r["provider"]: r["outcome"] for r in response.json()["results"]}
    assert outcomes == {
        "fcm": "delivered",
        "apns": "retry_scheduled",
        "web_push": "retry_scheduled",
    }
    assert [r.status for r in await asyncio.to_thread(providers.apns.wait_for, 2)] == [503, 200]
    statuses = [r.status for r in await asyncio.to_thread(providers.webpush.wait_for, 3)]
    assert statuses == [503, 500, 201]
    listed = (await push_client.get("/devices", headers=bearer("alice"))).json()["devices"]
    assert all(d["is_active"] for d in listed)


async def test_permanent_outage_ends_as_failed_after_max_attempts(
    start_server: ServerFactory, providers: Providers
) -> None:
    server = await start_server(**providers.settings(), push_max_attempts=3)
    async with httpx.AsyncClient(base_url=server.url + "/api/v1/messenger") as client:
        devices = await register_all_providers(client, providers, "alice")
        providers.webpush.always(devices.endpoint, webpush.reply(503))
        async with httpx.AsyncClient(base_url=server.url) as root:
            failed_before = await metric(
                root, "messenger_pushes_total", provider="web_push", outcome="failed"
            )
            await client.post("/devices/test", headers=bearer("alice"))

            async def failed_once() -> bool:
                now = await metric(
                    root, "messenger_pushes_total", provider="web_push", outcome="failed"
                )
                return now == failed_before + 1

            await eventually(failed_once)
        await asyncio.sleep(0.5)  # nothing more may arrive after the final attempt
        assert providers.webpush.count() == 3
        listed = (await client.get("/devices", headers=bearer("alice"))).json()["devices"]
        assert all(d["is_active"] for d in listed)  # a retried device keeps its active flag


async def test_configuration_error_keeps_the_device(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    devices = await register_all_providers(push_client, providers, "alice")
    providers.apns.always(devices.apns_token, apns.reply(403, "InvalidProviderToken"))
    providers.fcm.always(devices.fcm_token, fcm.invalid_argument_payload())

    response = await push_client.post("/devices/test", headers=bearer("alice"))

    outcomes = {r["provider"]: r["outcome"] for r in response.json()["results"]}
    assert outcomes == {"fcm": "failed", "apns": "failed", "web_push": "delivered"}
    listed = (await push_client.get("/devices", headers=bearer("alice"))).json()["devices"]
    assert all(d["is_active"] for d in listed)


async def test_apns_410_older_than_the_last_registration_keeps_the_device(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    devices = await register_all_providers(push_client, providers, "alice")
    providers.apns.always(devices.apns_token, apns.reply(410, "Unregistered", timestamp_ms=1_000))

    response = await push_client.post("/devices/test", headers=bearer("alice"))

    outcomes = {r["provider"]: r["outcome"] for r in response.json()["results"]}
    assert outcomes["apns"] == "failed"
    listed = (await push_client.get("/devices", headers=bearer("alice"))).json()["devices"]
    assert all(d["is_active"] for d in listed)
