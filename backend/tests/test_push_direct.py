"""`POST /devices/test` and `POST /internal/notify`: immediate pushes through the real libraries."""

from __future__ import annotations

import httpx

from backend.devtools.emulators import apns, fcm, webpush
from backend.devtools.providers import Providers
from backend.tests.conftest import TEST_API_KEY, ServerFactory, bearer
from backend.tests.push_helpers import register_all_providers


async def test_test_push_reaches_every_active_device_of_the_caller(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    devices = await register_all_providers(push_client, providers, "alice")

    response = await push_client.post("/devices/test", headers=bearer("alice"))

    assert response.status_code == 200, response.text
    assert sorted(response.json()["results"], key=lambda r: r["device_token_id"]) == [
        {"device_token_id": devices.ids[p], "provider": p, "outcome": "delivered"}
        for p in ("fcm", "apns", "web_push")
    ]
    assert [r.key for r in providers.fcm.received] == [devices.fcm_token]
    assert [r.key for r in providers.apns.received] == [devices.apns_token]
    assert [r.key for r in providers.webpush.received] == [devices.endpoint]


async def test_internal_notify_needs_the_service_api_key(push_client: httpx.AsyncClient) -> None:
    body = {"user_id": "alice", "title": "t", "body": "b", "data": None, "priority": "high"}
    assert (await push_client.post("/internal/notify", json=body)).status_code == 401
    wrong = await push_client.post("/internal/notify", json=body, headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401


async def test_internal_notify_pushes_title_body_and_data_to_every_device(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    devices = await register_all_providers(push_client, providers, "alice")
    body = {
        "user_id": "alice",
        "title": "Invoice ready",
        "body": "Your invoice #42 is ready",
        "data": {"invoice_id": "42"},
        "priority": "high",
    }

    response = await push_client.post(
        "/internal/notify", json=body, headers={"X-API-Key": TEST_API_KEY}
    )

    assert response.status_code == 200, response.text
    assert {r["outcome"] for r in response.json()["results"]} == {"delivered"}
    fcm_message = providers.fcm.received[0].payload
    assert fcm_message["notification"] == {
        "title": "Invoice ready",
        "body": "Your invoice #42 is ready",
    }
    assert fcm_message["data"] == {"invoice_id": "42"}
    apns_payload = providers.apns.received[0].payload
    assert apns_payload["aps"]["alert"] == {
        "title": "Invoice ready",
        "body": "Your invoice #42 is ready",
    }
    assert apns_payload["invoice_id"] == "42"
    assert providers.webpush.received[0].payload == {
        "title": "Invoice ready",
        "body": "Your invoice #42 is ready",
        "data": {"invoice_id": "42"},
    }
    assert devices.ids


async def test_internal_notify_rejects_reserved_data_keys(push_client: httpx.AsyncClient) -> None:
    body = {"user_id": "alice", "title": "t", "body": "b", "data": {"aps": "x"}}
    response = await push_client.post(
        "/internal/notify", json=body, headers={"X-API-Key": TEST_API_KEY}
    )
    assert response.status_code == 422


async def test_unconfigured_provider_reports_provider_not_configured(
    start_server: ServerFactory, providers: Providers
) -> None:
    only_fcm = {
        k: v for k, v in providers.settings().items() if not k.startswith(("apns", "web_push"))
    }
    only_fcm["web_push_endpoint_allowlist"] = providers.webpush.endpoint_prefix
    server = await start_server(**only_fcm)
    async with httpx.AsyncClient(base_url=server.url + "/api/v1/messenger") as client:
        devices = await register_all_providers(client, providers, "alice")
        response = await client.post("/devices/test", headers=bearer("alice"))
    outcomes = {r["provider"]: r["outcome"] for r in response.json()["results"]}
    assert outcomes == {
        "fcm": "delivered",
        "apns": "provider_not_configured",
        "web_push": "provider_not_configured",
    }
    assert devices.ids


async def test_dead_tokens_on_every_provider_deactivate_the_device(
    push_client: httpx.AsyncClient, providers: Providers
) -> None:
    devices = await register_all_providers(push_client, providers, "alice")
    providers.fcm.always(devices.fcm_token, fcm.unregistered())
    providers.apns.always(devices.apns_token, apns.reply(400, "BadDeviceToken"))
    providers.webpush.always(devices.endpoint, webpush.reply(410))

    response = await push_client.post("/devices/test", headers=bearer("alice"))

    assert {r["outcome"] for r in response.json()["results"]} == {"token_dead"}
    listed = (await push_client.get("/devices", headers=bearer("alice"))).json()["devices"]
    assert {d["is_active"] for d in listed} == {False}
    again = await push_client.post("/devices/test", headers=bearer("alice"))
    assert again.json()["results"] == []
