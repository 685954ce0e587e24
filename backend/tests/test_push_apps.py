"""Push apps: several sets of credentials, each device pushed with its own app's, and a circuit
breaker per app. Two FCM projects, two APNs topics (one sandbox) and two VAPID keys, all
against the wire-protocol emulators."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.app.vapid import generate_vapid_keys
from backend.devtools.emulators import WebPushEmulator, webpush
from backend.devtools.providers import Providers
from backend.tests.conftest import API, LiveServer, ServerFactory, bearer
from backend.tests.messaging import eventually
from backend.tests.push_helpers import register

BETA_PROJECT = "beta-project"
BETA_TOPIC = "com.example.messenger.beta"


@dataclass
class BetaApps:
    fcm_credentials_file: str
    webpush: WebPushEmulator
    vapid_private_key: str
    vapid_public_key: str


@pytest.fixture(scope="module")
def beta_apps(provider_emulators: Providers) -> Iterator[BetaApps]:
    """A second Firebase project and APNs topic on the shared emulators, and a second push
    service that accepts only the second VAPID key."""
    credentials = provider_emulators.fcm.add_project(BETA_PROJECT)
    provider_emulators.apns.add_topic(BETA_TOPIC)
    private, public = generate_vapid_keys()
    with WebPushEmulator(expected_vapid_public_key=public) as second:
        yield BetaApps(credentials, second, private, public)


def apps_file(tmp_path: Path, providers: Providers, beta: BetaApps) -> str:
    path = tmp_path / "push-apps.toml"
    path.write_text(
        f"""
[[apps]]
id = "beta"
provider = "fcm"
credentials_file = "{beta.fcm_credentials_file}"
project_id = "{BETA_PROJECT}"

[[apps]]
id = "beta"
provider = "apns"
key_path = "{providers.apns.key_path}"
key_id = "{providers.apns.key_id}"
team_id = "{providers.apns.team_id}"
topic = "{BETA_TOPIC}"
use_sandbox = true

[[apps]]
id = "beta"
provider = "web_push"
private_key = "{beta.vapid_private_key}"
public_key = "{beta.vapid_public_key}"
claims_email = "ops@example.com"
"""
    )
    return str(path)


@pytest.fixture
async def apps_server(
    start_server: ServerFactory, providers: Providers, beta_apps: BetaApps, tmp_path: Path
) -> LiveServer:
    beta_apps.webpush.reset()
    settings = providers.settings()
    settings["web_push_endpoint_allowlist"] = (
        f"{providers.webpush.endpoint_prefix},{beta_apps.webpush.endpoint_prefix}"
    )
    return await start_server(**settings, push_apps_file=apps_file(tmp_path, providers, beta_apps))


@pytest.fixture
async def client(apps_server: LiveServer) -> Iterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=apps_server.url + API, timeout=30) as http:
        yield http


@dataclass
class Device:
    id: int
    key: str  # what the emulator records it under (token or endpoint)


async def register_device(
    client: httpx.AsyncClient,
    provider: str,
    app_id: str | None,
    beta: BetaApps,
    providers: Providers,
) -> Device:
    body: dict[str, Any] = {"app_id": app_id}
    if provider == "fcm":
        key = "fcm-" + secrets.token_urlsafe(40)
        body |= {"device_token": key, "platform": "android", "provider": "fcm"}
    elif provider == "apns":
        key = secrets.token_hex(32)
        body |= {"device_token": key, "platform": "ios", "provider": "apns"}
    else:
        emulator = beta.webpush if app_id == "beta" else providers.webpush
        subscription = emulator.subscribe()
        key = subscription["endpoint"]
        body |= {
            "device_token": json.dumps(subscription),
            "platform": "web",
            "provider": "web_push",
        }
    return Device(await register(client, "alice", body), key)


async def admin_apps(client: httpx.AsyncClient) -> dict[tuple[str, str], dict[str, Any]]:
    response = await client.get("/admin/push/apps", headers=bearer("root", admin=True))
    assert response.status_code == 200, response.text
    return {(a["provider"], a["app_id"]): a for a in response.json()["apps"]}


async def test_each_device_is_pushed_with_its_own_apps_credentials(
    client: httpx.AsyncClient, providers: Providers, beta_apps: BetaApps
) -> None:
    devices = {
        (provider, app): await register_device(client, provider, app, beta_apps, providers)
        for provider in ("fcm", "apns", "web_push")
        for app in (None, "beta")
    }

    response = await client.post("/devices/test", headers=bearer("alice"))

    assert {r["outcome"] for r in response.json()["results"]} == {"delivered"}
    fcm_projects = {r.key: r.headers[":project"] for r in providers.fcm.received if r.status == 200}
    assert fcm_projects[devices["fcm", None].key] == providers.fcm.project_id
    assert fcm_projects[devices["fcm", "beta"].key] == BETA_PROJECT
    topics = {r.key: r.headers["apns-topic"] for r in providers.apns.received if r.status == 200}
    assert topics[devices["apns", None].key] == providers.apns.topic
    assert topics[devices["apns", "beta"].key] == BETA_TOPIC
    # Each push service accepts only its own VAPID key: the wrong key never reached either.
    assert {r.status for r in providers.webpush.received} == {201}
    assert {r.status for r in beta_apps.webpush.received} == {201}
    assert [r.key for r in beta_apps.webpush.received] == [devices["web_push", "beta"].key]


async def test_devices_list_their_app(
    client: httpx.AsyncClient, providers: Providers, beta_apps: BetaApps
) -> None:
    await register_device(client, "fcm", "beta", beta_apps, providers)
    await register_device(client, "apns", None, beta_apps, providers)

    listed = (await client.get("/devices", headers=bearer("alice"))).json()["devices"]

    assert sorted(d["app_id"] for d in listed) == ["beta", "default"]


async def test_registering_for_an_app_that_is_not_configured_is_refused(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/devices/register",
        json={"device_token": "f" * 40, "platform": "android", "provider": "fcm", "app_id": "nope"},
        headers=bearer("alice"),
    )

    assert response.status_code == 422
    assert "nope" in response.text
    assert (await client.get("/devices", headers=bearer("alice"))).json()["devices"] == []


async def test_each_web_push_app_serves_its_own_vapid_key(
    client: httpx.AsyncClient, providers: Providers, beta_apps: BetaApps
) -> None:
    default = await client.get("/push/vapid-public-key")
    beta = await client.get("/push/vapid-public-key", params={"app_id": "beta"})
    unknown = await client.get("/push/vapid-public-key", params={"app_id": "nope"})

    assert default.json() == {"public_key": providers.vapid_public_key}
    assert beta.json() == {"public_key": beta_apps.vapid_public_key}
    assert unknown.status_code == 404


async def test_admins_see_every_app_with_its_active_devices(
    client: httpx.AsyncClient, providers: Providers, beta_apps: BetaApps
) -> None:
    await register_device(client, "apns", "beta", beta_apps, providers)
    await register_device(client, "apns", "beta", beta_apps, providers)

    apps = await admin_apps(client)

    assert set(apps) == {(p, a) for p in ("fcm", "apns", "web_push") for a in ("default", "beta")}
    assert apps["apns", "beta"] == {
        "app_id": "beta",
        "provider": "apns",
        "configured": True,
        "circuit": "closed",
        "last_error": None,
        "devices_active": 2,
    }
    assert apps["apns", "default"]["devices_active"] == 0


async def test_an_app_whose_push_service_is_down_opens_its_circuit_while_others_flow_then_recovers(
    client: httpx.AsyncClient, apps_server: LiveServer, providers: Providers, beta_apps: BetaApps
) -> None:
    healthy = await register_device(client, "web_push", None, beta_apps, providers)
    failing = await register_device(client, "web_push", "beta", beta_apps, providers)
    beta_apps.webpush.stop()  # the beta app's push service is down: connections refused
    try:

        async def circuit_open() -> bool:
            await client.post("/devices/test", headers=bearer("alice"))
            return (await admin_apps(client))["web_push", "beta"]["circuit"] == "open"

        await eventually(circuit_open, interval=0.2)
        response = await client.post("/devices/test", headers=bearer("alice"))
        outcomes = {r["device_token_id"]: r["outcome"] for r in response.json()["results"]}

        assert outcomes == {healthy.id: "delivered", failing.id: "retry_scheduled"}
        apps = await admin_apps(client)
        assert apps["web_push", "default"]["circuit"] == "closed"
        assert "transport" in apps["web_push", "beta"]["last_error"]
        async with httpx.AsyncClient(base_url=apps_server.url) as root:
            health = await root.get("/health")
            metrics = (await root.get("/metrics")).text
        assert health.status_code == 200
        assert [(c["provider"], c["app_id"]) for c in health.json()["push"]] == [
            ("web_push", "beta")
        ]
        assert 'messenger_push_circuit_open{app_id="beta",provider="web_push"} 1.0' in metrics
    finally:
        beta_apps.webpush.start()  # back up, on the same address

    async def recovered() -> bool:
        delivered = any(
            r.key == failing.key and r.status == 201 for r in beta_apps.webpush.received
        )
        return delivered and (await admin_apps(client))["web_push", "beta"]["circuit"] == "closed"

    await eventually(recovered, interval=0.2)


async def test_held_back_deliveries_do_not_hammer_a_failing_push_service(
    client: httpx.AsyncClient, providers: Providers, beta_apps: BetaApps
) -> None:
    failing = await register_device(client, "web_push", "beta", beta_apps, providers)
    beta_apps.webpush.always(failing.key, webpush.reply(503))

    async def circuit_open() -> bool:
        await client.post("/devices/test", headers=bearer("alice"))
        return (await admin_apps(client))["web_push", "beta"]["circuit"] == "open"

    await eventually(circuit_open, interval=0.2)
    attempts_when_opened = beta_apps.webpush.count()
    response = await client.post("/devices/test", headers=bearer("alice"))

    assert [r["outcome"] for r in response.json()["results"]] == ["retry_scheduled"]
    assert beta_apps.webpush.count() == attempts_when_opened
    assert "503" in (await admin_apps(client))["web_push", "beta"]["last_error"]
