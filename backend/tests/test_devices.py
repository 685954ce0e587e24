"""Device registry, as a client sees it: register, re-register, list, unregister."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest

from backend.app.vapid import b64url
from backend.devtools.subscriptions import p256dh_key, web_push_subscription
from backend.tests.conftest import API, ServerFactory, bearer

ALICE = bearer("alice")
BOB = bearer("bob")


def fcm_token() -> str:
    return f"{secrets.token_urlsafe(8)}:APA91b{secrets.token_urlsafe(110)}"


def apns_token() -> str:
    return secrets.token_hex(32)


def registration(
    device_token: str, platform: str, provider: str, device_name: str | None = "Phone"
) -> dict[str, Any]:
    return {
        "device_token": device_token,
        "platform": platform,
        "provider": provider,
        "device_name": device_name,
    }


async def register(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> httpx.Response:
    return await client.post("/devices/register", json=body, headers=headers)


async def devices_of(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get("/devices", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["devices"]


async def device_rows(sql: asyncpg.Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in await sql.fetch("SELECT * FROM device_tokens ORDER BY id")]


def unique_user() -> str:
    """Rate-limit counters live in Redis, which concurrent test sessions may share."""
    return f"user-{secrets.token_hex(6)}"


async def wait_for_fresh_rate_limit_window(seconds_needed: float = 5) -> None:
    """The limiter counts per fixed minute; start a burst where it cannot straddle two windows."""
    into_window = time.time() % 60
    if into_window > 60 - seconds_needed:
        await asyncio.sleep(60 - into_window + 0.05)


# --- Registering --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "platform"),
    [("fcm", "android"), ("fcm", "ios"), ("fcm", "web"), ("apns", "ios"), ("web_push", "web")],
)
async def test_registering_a_new_token_of_each_provider_creates_a_device(
    client: httpx.AsyncClient, provider: str, platform: str
) -> None:
    token = {"fcm": fcm_token, "apns": apns_token, "web_push": web_push_subscription}[provider]()

    response = await register(client, ALICE, registration(token, platform, provider, "My device"))

    assert response.status_code == 201, response.text
    body = response.json()
    assert body == {
        "status": "registered",
        "device_token_id": body["device_token_id"],
        "user_id": "alice",
        "platform": platform,
        "provider": provider,
    }
    assert isinstance(body["device_token_id"], int)
    [device] = await devices_of(client, ALICE)
    assert device["id"] == body["device_token_id"]
    assert (device["platform"], device["provider"]) == (platform, provider)
    assert device["device_name"] == "My device"
    assert device["is_active"] is True
    assert device["registered_at"]
    assert device["last_used_at"] is None


async def test_a_web_push_endpoint_on_a_configured_allow_list_is_accepted(
    start_server: ServerFactory,
) -> None:
    server = await start_server(web_push_endpoint_allowlist="https://push.example.test/")
    subscription = web_push_subscription("https://push.example.test/subscriptions/abc123")
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        response = await register(client, ALICE, registration(subscription, "web", "web_push"))
    assert response.status_code == 201, response.text


async def test_a_wildcard_allow_list_entry_accepts_subdomains(client: httpx.AsyncClient) -> None:
    # The default allow-list has https://*.notify.windows.com/ (Edge on Windows).
    endpoint = "https://wns2-par02p.notify.windows.com/w/?token=BQYAAADc%2bNn%3d"
    response = await register(
        client, ALICE, registration(web_push_subscription(endpoint), "web", "web_push")
    )
    assert response.status_code == 201, response.text


async def test_registering_a_known_token_again_updates_the_same_device(
    client: httpx.AsyncClient,
) -> None:
    token = fcm_token()
    first = await register(client, ALICE, registration(token, "android", "fcm"))

    again = await register(client, ALICE, registration(token, "android", "fcm"))

    assert again.status_code == 200, again.text
    assert again.json() == {**first.json(), "status": "updated"}
    assert len(await devices_of(client, ALICE)) == 1


async def test_re_registering_refreshes_the_device_name_and_platform(
    client: httpx.AsyncClient,
) -> None:
    token = fcm_token()
    await register(client, ALICE, registration(token, "android", "fcm", "Old name"))

    response = await register(client, ALICE, registration(token, "ios", "fcm", "New name"))

    assert response.status_code == 200
    assert response.json()["platform"] == "ios"
    [device] = await devices_of(client, ALICE)
    assert (device["platform"], device["device_name"]) == ("ios", "New name")


async def test_re_registering_a_web_push_subscription_keeps_one_device_per_endpoint(
    client: httpx.AsyncClient,
) -> None:
    endpoint = f"https://updates.push.services.mozilla.com/wpush/v2/{secrets.token_urlsafe(30)}"
    first = await register(
        client, ALICE, registration(web_push_subscription(endpoint), "web", "web_push")
    )

    # The browser re-subscribed: same endpoint, new keys.
    again = await register(
        client, ALICE, registration(web_push_subscription(endpoint), "web", "web_push")
    )

    assert again.status_code == 200
    assert again.json()["device_token_id"] == first.json()["device_token_id"]
    assert len(await devices_of(client, ALICE)) == 1


async def test_an_apns_token_is_the_same_device_whatever_the_hex_case(
    client: httpx.AsyncClient,
) -> None:
    token = apns_token()
    first = await register(client, ALICE, registration(token.upper(), "ios", "apns"))

    again = await register(client, ALICE, registration(token.lower(), "ios", "apns"))

    assert again.status_code == 200
    assert again.json()["device_token_id"] == first.json()["device_token_id"]


async def test_registering_a_known_token_moves_it_to_the_caller(
    client: httpx.AsyncClient,
) -> None:
    token = fcm_token()
    first = await register(client, ALICE, registration(token, "android", "fcm"))

    response = await register(client, BOB, registration(token, "android", "fcm", "Bob's phone"))

    assert response.status_code == 200
    assert response.json() == {
        "status": "updated",
        "device_token_id": first.json()["device_token_id"],
        "user_id": "bob",
        "platform": "android",
        "provider": "fcm",
    }
    assert await devices_of(client, ALICE) == []
    [device] = await devices_of(client, BOB)
    assert device["device_name"] == "Bob's phone"


async def test_re_registering_reactivates_an_inactive_device(
    start_server: ServerFactory,
) -> None:
    server = await start_server(max_active_devices_per_user=1)
    old, new = fcm_token(), fcm_token()
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        await register(client, ALICE, registration(old, "android", "fcm"))
        await register(client, ALICE, registration(new, "android", "fcm"))  # deactivates `old`

        response = await register(client, ALICE, registration(old, "android", "fcm"))

        assert response.status_code == 200
        active = {d["id"]: d["is_active"] for d in await devices_of(client, ALICE)}
    assert active[response.json()["device_token_id"]] is True


async def test_concurrent_registrations_of_one_token_create_exactly_one_device(
    client: httpx.AsyncClient, sql: asyncpg.Connection
) -> None:
    body, user = registration(fcm_token(), "android", "fcm"), bearer(unique_user())

    responses = await asyncio.gather(*(register(client, user, body) for _ in range(20)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201], [r.text for r in responses if r.status_code >= 300]
    assert len({r.json()["device_token_id"] for r in responses}) == 1
    assert await sql.fetchval("SELECT count(*) FROM device_tokens") == 1


async def test_concurrent_registrations_of_one_token_by_different_users_leave_one_owner(
    client: httpx.AsyncClient, sql: asyncpg.Connection
) -> None:
    body = registration(fcm_token(), "android", "fcm")
    users = [f"user-{i}" for i in range(10)]

    responses = await asyncio.gather(*(register(client, bearer(u), body) for u in users))

    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    owners = await sql.fetch("SELECT user_id FROM device_tokens")
    assert len(owners) == 1
    assert owners[0]["user_id"] in users


async def test_registering_past_the_device_cap_deactivates_the_least_recently_used_device(
    start_server: ServerFactory, sql: asyncpg.Connection
) -> None:
    server = await start_server(max_active_devices_per_user=3, background=False)
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        ids = [
            (await register(client, ALICE, registration(fcm_token(), "android", "fcm"))).json()[
                "device_token_id"
            ]
            for _ in range(3)
        ]
        # Oldest registration but pushed to recently; the second one is the least recently used.
        await sql.execute(
            "UPDATE device_tokens SET updated_at = now() - interval '20 days',"
            " last_used_at = now() - interval '1 hour' WHERE id = $1",
            ids[0],
        )
        await sql.execute(
            "UPDATE device_tokens SET updated_at = now() - interval '10 days' WHERE id = $1",
            ids[1],
        )
        await sql.execute(
            "UPDATE device_tokens SET updated_at = now() - interval '5 days' WHERE id = $1",
            ids[2],
        )

        fourth = await register(client, ALICE, registration(fcm_token(), "android", "fcm"))

        assert fourth.status_code == 201
        active = {d["id"]: d["is_active"] for d in await devices_of(client, ALICE)}
    assert active == {
        ids[0]: True,
        ids[1]: False,
        ids[2]: True,
        fourth.json()["device_token_id"]: True,
    }


async def test_registrations_beyond_the_rate_limit_get_429_and_write_nothing(
    start_server: ServerFactory, sql: asyncpg.Connection
) -> None:
    server = await start_server(device_registrations_per_minute=3)
    user = bearer(unique_user())
    await wait_for_fresh_rate_limit_window()
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        for _ in range(3):
            assert (
                await register(client, user, registration(fcm_token(), "android", "fcm"))
            ).status_code == 201
        before = await device_rows(sql)

        response = await register(client, user, registration(fcm_token(), "android", "fcm"))

    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert await device_rows(sql) == before


async def test_the_rate_limit_is_per_user(start_server: ServerFactory) -> None:
    server = await start_server(device_registrations_per_minute=1)
    first_user, second_user = bearer(unique_user()), bearer(unique_user())
    await wait_for_fresh_rate_limit_window()
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        await register(client, first_user, registration(fcm_token(), "android", "fcm"))
        limited = await register(client, first_user, registration(fcm_token(), "android", "fcm"))

        other_user = await register(
            client, second_user, registration(fcm_token(), "android", "fcm")
        )

    assert limited.status_code == 429
    assert other_user.status_code == 201


# --- Malformed registrations ---------------------------------------------------------------

ALLOWED_ENDPOINT = "https://fcm.googleapis.com/fcm/send/abc"


def _not_on_curve() -> str:
    # 0x04 || x || y with y = x + 1: a 65-byte uncompressed encoding that is not a P-256 point.
    x = bytes(range(1, 33))
    return b64url(b"\x04" + x + bytes(range(2, 34)))


def _subscription_json(**fields: Any) -> str:
    return json.dumps(fields)


VALID_KEYS = {"p256dh": p256dh_key(), "auth": b64url(bytes(16))}

MALFORMED: dict[str, tuple[dict[str, Any], str]] = {
    # id: (body, a fragment the 422 must name)
    "unknown platform": (registration(fcm_token(), "windows", "fcm"), "platform"),
    "unknown provider": (registration(fcm_token(), "android", "gcm"), "provider"),
    "apns for android": (registration(apns_token(), "android", "apns"), "cannot serve"),
    "apns for web": (registration(apns_token(), "web", "apns"), "cannot serve"),
    "web_push for ios": (
        registration(web_push_subscription(), "ios", "web_push"),
        "cannot serve",
    ),
    "web_push for android": (
        registration(web_push_subscription(), "android", "web_push"),
        "cannot serve",
    ),
    "apns token not hex": (registration("zz" * 32, "ios", "apns"), "hex"),
    "apns token too short": (registration("ab" * 31, "ios", "apns"), "64-200"),
    "apns token too long": (registration("ab" * 101, "ios", "apns"), "64-200"),
    "fcm token too short": (registration("a" * 31, "android", "fcm"), "32-4096"),
    "fcm token too long": (registration("a" * 4097, "android", "fcm"), "32-4096"),
    "fcm token with bad characters": (
        registration("abc def/" + "a" * 40, "android", "fcm"),
        "32-4096",
    ),
    "web_push not json": (registration("not json at all", "web", "web_push"), "JSON"),
    "web_push json but not an object": (registration("[1, 2]", "web", "web_push"), "JSON"),
    "web_push without endpoint": (
        registration(_subscription_json(keys=VALID_KEYS), "web", "web_push"),
        "endpoint",
    ),
    "web_push without keys": (
        registration(_subscription_json(endpoint=ALLOWED_ENDPOINT), "web", "web_push"),
        "keys",
    ),
    "web_push http endpoint": (
        registration(
            web_push_subscription("http://fcm.googleapis.com/fcm/send/x"), "web", "web_push"
        ),
        "https",
    ),
    "web_push endpoint not allow-listed": (
        registration(web_push_subscription("https://push.evil.test/x"), "web", "web_push"),
        "ALLOWLIST",
    ),
    "web_push endpoint on a look-alike host": (
        registration(
            web_push_subscription("https://fcm.googleapis.com.evil.test/x"), "web", "web_push"
        ),
        "ALLOWLIST",
    ),
    "web_push loopback endpoint": (
        registration(web_push_subscription("https://127.0.0.1/x"), "web", "web_push"),
        "ALLOWLIST",
    ),
    "web_push p256dh compressed (33 bytes)": (
        registration(web_push_subscription(p256dh=b64url(b"\x02" + bytes(32))), "web", "web_push"),
        "65-byte",
    ),
    "web_push p256dh not on the curve": (
        registration(web_push_subscription(p256dh=_not_on_curve()), "web", "web_push"),
        "curve",
    ),
    "web_push p256dh not base64url": (
        registration(web_push_subscription(p256dh="not base64!"), "web", "web_push"),
        "p256dh",
    ),
    "web_push auth 12 bytes": (
        registration(web_push_subscription(auth=b64url(bytes(12))), "web", "web_push"),
        "16 bytes",
    ),
    "web_push auth empty": (
        registration(web_push_subscription(auth=""), "web", "web_push"),
        "auth",
    ),
    "device_name over 255 characters": (
        registration(fcm_token(), "android", "fcm", "x" * 256),
        "device_name",
    ),
    "device_name with control characters": (
        registration(fcm_token(), "android", "fcm", "bad\nname"),
        "device_name",
    ),
    "missing device_token": (
        {
            k: v
            for k, v in registration(fcm_token(), "android", "fcm").items()
            if k != "device_token"
        },
        "device_token",
    ),
    "missing platform": (
        {k: v for k, v in registration(fcm_token(), "android", "fcm").items() if k != "platform"},
        "platform",
    ),
    "missing provider": (
        {k: v for k, v in registration(fcm_token(), "android", "fcm").items() if k != "provider"},
        "provider",
    ),
    "empty device_token": (registration("", "android", "fcm"), "device_token"),
    "device_token not a string": (registration(12345, "android", "fcm"), "device_token"),  # type: ignore[arg-type]
}


async def test_a_malformed_registration_is_rejected_with_422_and_writes_nothing(
    client: httpx.AsyncClient, sql: asyncpg.Connection, subtests: pytest.Subtests
) -> None:
    await register(client, ALICE, registration(fcm_token(), "android", "fcm"))
    before = await device_rows(sql)

    for case, (body, named) in MALFORMED.items():
        with subtests.test(case):
            response = await register(client, ALICE, body)

            assert response.status_code == 422, response.text
            assert named in response.text
            assert await device_rows(sql) == before


async def test_a_body_that_is_not_json_is_rejected_with_422(
    client: httpx.AsyncClient, sql: asyncpg.Connection
) -> None:
    response = await client.post(
        "/devices/register",
        content=b"device_token=abc",
        headers={**ALICE, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert await sql.fetchval("SELECT count(*) FROM device_tokens") == 0


PRIVATE_ENDPOINTS = [
    "https://127.0.0.1/push",
    "https://[::1]/push",
    "https://10.1.2.3/push",
    "https://192.168.0.10/push",
    "https://169.254.169.254/latest/meta-data",
    "https://localhost/push",
    "https://printer.local/push",
]


async def test_a_broad_allow_list_prefix_does_not_open_loopback_or_private_addresses(
    start_server: ServerFactory, sql: asyncpg.Connection, subtests: pytest.Subtests
) -> None:
    server = await start_server(web_push_endpoint_allowlist="https://")
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        for endpoint in PRIVATE_ENDPOINTS:
            with subtests.test(endpoint):
                response = await register(
                    client, ALICE, registration(web_push_subscription(endpoint), "web", "web_push")
                )
                assert response.status_code == 422
                assert "private or loopback" in response.text
    assert await sql.fetchval("SELECT count(*) FROM device_tokens") == 0


async def test_a_loopback_endpoint_is_accepted_when_the_allow_list_names_it(
    start_server: ServerFactory,
) -> None:
    server = await start_server(web_push_endpoint_allowlist="https://127.0.0.1:8443/")
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        response = await register(
            client,
            ALICE,
            registration(web_push_subscription("https://127.0.0.1:8443/push/1"), "web", "web_push"),
        )
    assert response.status_code == 201, response.text


# --- Listing ---------------------------------------------------------------------------------


async def test_listing_shows_only_the_callers_devices(client: httpx.AsyncClient) -> None:
    mine = await register(client, ALICE, registration(fcm_token(), "android", "fcm", "Mine"))
    await register(client, BOB, registration(fcm_token(), "android", "fcm", "Bob's"))

    devices = await devices_of(client, ALICE)

    assert [d["id"] for d in devices] == [mine.json()["device_token_id"]]
    assert set(devices[0]) == {
        "id",
        "platform",
        "provider",
        "app_id",
        "device_name",
        "is_active",
        "registered_at",
        "last_used_at",
    }


async def test_no_response_reveals_a_raw_token_or_web_push_keys(
    client: httpx.AsyncClient,
) -> None:
    fcm, apns = fcm_token(), apns_token()
    endpoint = f"https://fcm.googleapis.com/fcm/send/{secrets.token_urlsafe(30)}"
    p256dh, auth = p256dh_key(), b64url(secrets.token_bytes(16))
    subscription = web_push_subscription(endpoint, p256dh=p256dh, auth=auth)
    admin = bearer("root", admin=True)
    bodies = [
        (await register(client, ALICE, registration(fcm, "android", "fcm"))).text,
        (await register(client, ALICE, registration(apns, "ios", "apns"))).text,
        (await register(client, ALICE, registration(subscription, "web", "web_push"))).text,
        (await register(client, ALICE, registration(fcm, "android", "fcm"))).text,
        (await register(client, ALICE, registration(subscription, "web", "web_push"))).text,
        (await client.get("/devices", headers=ALICE)).text,
        (await client.get("/admin/devices", headers=admin)).text,
        (await client.get("/admin/devices", params={"user_id": "alice"}, headers=admin)).text,
        (await client.get("/admin/devices/stats", headers=admin)).text,
    ]
    secrets_sent = [fcm, apns, endpoint, p256dh, auth, "fcm/send/"]
    for body in bodies:
        for secret in secrets_sent:
            assert secret not in body


# --- Unregistering ---------------------------------------------------------------------------


async def test_unregistering_an_own_device_removes_it(client: httpx.AsyncClient) -> None:
    token = fcm_token()
    await register(client, ALICE, registration(token, "android", "fcm"))

    response = await client.delete(f"/devices/{token}", headers=ALICE)

    assert response.status_code == 200
    assert response.json() == {"success": True, "message": "Device unregistered"}
    assert await devices_of(client, ALICE) == []


async def test_unregistering_a_device_twice_is_404_the_second_time(
    client: httpx.AsyncClient,
) -> None:
    token = fcm_token()
    await register(client, ALICE, registration(token, "android", "fcm"))
    await client.delete(f"/devices/{token}", headers=ALICE)

    response = await client.delete(f"/devices/{token}", headers=ALICE)

    assert response.status_code == 404


async def test_unregistering_someone_elses_device_is_404_and_keeps_it(
    client: httpx.AsyncClient,
) -> None:
    token = fcm_token()
    await register(client, ALICE, registration(token, "android", "fcm"))

    response = await client.delete(f"/devices/{token}", headers=BOB)

    assert response.status_code == 404
    assert len(await devices_of(client, ALICE)) == 1


async def test_unregistering_an_unknown_token_is_404(client: httpx.AsyncClient) -> None:
    response = await client.delete(f"/devices/{fcm_token()}", headers=ALICE)
    assert response.status_code == 404


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABn_x-Y=",
        "https://wns2-par02p.notify.windows.com/w/?token=BQYAAADc%2bNn%3d",
    ],
)
async def test_a_web_push_device_is_unregistered_by_its_url_encoded_endpoint(
    client: httpx.AsyncClient, endpoint: str
) -> None:
    await register(client, ALICE, registration(web_push_subscription(endpoint), "web", "web_push"))

    response = await client.delete(f"/devices/{quote(endpoint, safe='')}", headers=ALICE)

    assert response.status_code == 200, response.text
    assert await devices_of(client, ALICE) == []


async def test_an_apns_device_is_unregistered_with_the_token_as_registered(
    client: httpx.AsyncClient,
) -> None:
    token = apns_token().upper()
    await register(client, ALICE, registration(token, "ios", "apns"))

    response = await client.delete(f"/devices/{token}", headers=ALICE)

    assert response.status_code == 200
    assert await devices_of(client, ALICE) == []
