"""Admin views of the device registry: filtered keyset listing and statistics."""

from __future__ import annotations

import asyncio
import base64
import secrets
from typing import Any

import asyncpg
import httpx
import pytest

from backend.devtools.subscriptions import web_push_subscription
from backend.tests.conftest import API, LiveServer, ServerFactory, bearer

ADMIN = bearer("root", admin=True)


@pytest.fixture
async def server(start_server: ServerFactory) -> LiveServer:
    # No background pruner: these tests age rows and must still see them.
    return await start_server(background=False)


def fcm_token() -> str:
    return f"{secrets.token_urlsafe(8)}:APA91b{secrets.token_urlsafe(60)}"


def apns_token() -> str:
    return secrets.token_hex(32)


TOKENS = {"fcm": fcm_token, "apns": apns_token, "web_push": web_push_subscription}


async def register(
    client: httpx.AsyncClient, user: str, provider: str, platform: str, token: str | None = None
) -> int:
    response = await client.post(
        "/devices/register",
        json={
            "device_token": token or TOKENS[provider](),
            "platform": platform,
            "provider": provider,
            "device_name": f"{user}'s {platform}",
        },
        headers=bearer(user),
    )
    assert response.status_code in (200, 201), response.text
    return response.json()["device_token_id"]


async def admin_list(client: httpx.AsyncClient, **params: Any) -> httpx.Response:
    return await client.get("/admin/devices", params=params, headers=ADMIN)


async def all_pages(client: httpx.AsyncClient, **params: Any) -> list[list[int]]:
    pages: list[list[int]] = []
    cursor = None
    while True:
        response = await admin_list(client, **params, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        pages.append([d["id"] for d in response.json()["devices"]])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages


async def test_admin_list_filters_by_user_platform_provider_and_active_flag(
    start_server: ServerFactory, subtests: pytest.Subtests
) -> None:
    # With a cap of two active devices, each user's first device ends up inactive.
    server = await start_server(max_active_devices_per_user=2, background=False)
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        a1 = await register(client, "alice", "web_push", "web")
        a2 = await register(client, "alice", "fcm", "android")
        a3 = await register(client, "alice", "apns", "ios")
        b1 = await register(client, "bob", "fcm", "web")
        b2 = await register(client, "bob", "fcm", "ios")
        b3 = await register(client, "bob", "fcm", "android")
        cases: list[tuple[dict[str, Any], list[int]]] = [
            ({}, [a1, a2, a3, b1, b2, b3]),
            ({"user_id": "alice"}, [a1, a2, a3]),
            ({"user_id": "nobody"}, []),
            ({"platform": "web"}, [a1, b1]),
            ({"platform": "ios"}, [a3, b2]),
            ({"provider": "fcm"}, [a2, b1, b2, b3]),
            ({"provider": "web_push"}, [a1]),
            ({"is_active": "false"}, [a1, b1]),
            ({"is_active": "true"}, [a2, a3, b2, b3]),
            ({"user_id": "bob", "provider": "fcm", "platform": "ios"}, [b2]),
            ({"user_id": "bob", "is_active": "false"}, [b1]),
        ]
        for params, expected in cases:
            with subtests.test(**params):
                response = await admin_list(client, **params)
                assert response.status_code == 200, response.text
                assert [d["id"] for d in response.json()["devices"]] == expected
                assert response.json()["next_cursor"] is None


async def test_admin_list_rows_carry_the_owner_and_the_device_fields(
    client: httpx.AsyncClient,
) -> None:
    device_id = await register(client, "alice", "fcm", "android")

    [device] = (await admin_list(client)).json()["devices"]

    assert device["id"] == device_id
    assert device["user_id"] == "alice"
    assert set(device) == {
        "id",
        "user_id",
        "platform",
        "provider",
        "app_id",
        "device_name",
        "is_active",
        "registered_at",
        "last_used_at",
        "token_preview",
    }


@pytest.mark.parametrize("bad", [{"platform": "windows"}, {"provider": "gcm"}, {"is_active": "x"}])
async def test_admin_list_rejects_an_unknown_filter_value(
    client: httpx.AsyncClient, bad: dict[str, str]
) -> None:
    assert (await admin_list(client, **bad)).status_code == 422


async def test_admin_list_pages_cover_every_device_exactly_once(
    client: httpx.AsyncClient,
) -> None:
    ids = [await register(client, f"user-{i % 3}", "fcm", "android") for i in range(6)]

    pages = await all_pages(client, limit=3)

    assert pages == [ids[:3], ids[3:]]


async def test_admin_list_pagination_is_stable_under_inserts_between_pages(
    client: httpx.AsyncClient,
) -> None:
    ids = [await register(client, "alice", "fcm", "android") for _ in range(5)]
    page = (await admin_list(client, limit=2)).json()
    seen = [d["id"] for d in page["devices"]]

    while page["next_cursor"] is not None:
        ids.append(await register(client, "bob", "fcm", "ios"))  # lands after every cursor
        page = (await admin_list(client, limit=2, cursor=page["next_cursor"])).json()
        seen += [d["id"] for d in page["devices"]]

    assert seen == ids


async def test_admin_list_pagination_applies_filters_on_every_page(
    client: httpx.AsyncClient,
) -> None:
    fcm_ids = []
    for _ in range(4):
        fcm_ids.append(await register(client, "alice", "fcm", "android"))
        await register(client, "alice", "apns", "ios")

    pages = await all_pages(client, provider="fcm", limit=3)

    assert pages == [fcm_ids[:3], fcm_ids[3:]]


async def test_admin_list_defaults_to_50_per_page(client: httpx.AsyncClient) -> None:
    await asyncio.gather(*(register(client, f"user-{i % 3}", "fcm", "android") for i in range(51)))

    first = (await admin_list(client)).json()

    assert len(first["devices"]) == 50
    assert first["next_cursor"] is not None


@pytest.mark.parametrize(("limit", "status"), [(0, 422), (1, 200), (500, 200), (501, 422)])
async def test_admin_list_limit_must_be_between_1_and_500(
    client: httpx.AsyncClient, limit: int, status: int
) -> None:
    await register(client, "alice", "fcm", "android")
    await register(client, "alice", "fcm", "android")

    response = await admin_list(client, limit=limit)

    assert response.status_code == status
    if status == 200:
        assert len(response.json()["devices"]) == min(limit, 2)


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


BAD_CURSORS = {
    "not base64": "not-a-cursor!",
    "no payload": "@@@@",
    "not a number": _b64("id:abc"),
    "another scheme": _b64("offset:5"),
    "negative": _b64("id:-1"),
    "beyond bigint": _b64("id:" + "9" * 30),
    "non-ascii digits": _b64("id:١٢"),
    "not utf-8": base64.urlsafe_b64encode(b"\xff\xfe").decode(),
}


async def test_admin_list_rejects_a_cursor_it_did_not_hand_out(
    client: httpx.AsyncClient, subtests: pytest.Subtests
) -> None:
    await register(client, "alice", "fcm", "android")
    for case, cursor in BAD_CURSORS.items():
        with subtests.test(case):
            response = await client.get(f"/admin/devices?cursor={cursor}", headers=ADMIN)
            assert response.status_code == 422, response.text


async def test_admin_list_shows_a_token_preview_of_at_most_eight_characters(
    client: httpx.AsyncClient,
) -> None:
    fcm = "dGhpcyBp" + "s" * 40
    apns = "ABCDEF12" + "0" * 56
    endpoint = "https://updates.push.services.mozilla.com/wpush/v2/" + "x" * 40
    await register(client, "alice", "fcm", "android", fcm)
    await register(client, "alice", "apns", "ios", apns)
    await register(client, "alice", "web_push", "web", web_push_subscription(endpoint))

    devices = (await admin_list(client)).json()["devices"]

    assert [d["token_preview"] for d in devices] == ["dGhpcyBp…", "abcdef12…", "updates.…"]


@pytest.mark.parametrize("path", ["/admin/devices", "/admin/devices/stats"])
async def test_admin_endpoints_are_forbidden_to_non_admins(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path, headers=bearer("alice"))
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["/admin/devices", "/admin/devices/stats"])
async def test_admin_endpoints_require_a_token(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 401


async def test_device_stats_of_an_empty_registry_are_all_zero(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/admin/devices/stats", headers=ADMIN)

    assert response.status_code == 200
    assert response.json() == {
        "total": 0,
        "active": 0,
        "inactive": 0,
        "by_provider": {"fcm": 0, "apns": 0, "web_push": 0},
        "by_platform": {"android": 0, "ios": 0, "web": 0},
        "idle_over_days": {"30": 0, "60": 0, "90": 0},
    }


async def test_device_stats_count_every_device_and_idle_active_ones_by_the_pruning_clock(
    client: httpx.AsyncClient, sql: asyncpg.Connection
) -> None:
    idle_31 = await register(client, "alice", "fcm", "android")
    idle_61 = await register(client, "alice", "apns", "ios")
    idle_91 = await register(client, "bob", "web_push", "web")
    pushed_recently = await register(client, "bob", "fcm", "ios")
    inactive_old = await register(client, "carol", "fcm", "web")
    await register(client, "carol", "fcm", "android")  # fresh
    for device_id, days in [(idle_31, 31), (idle_61, 61), (idle_91, 91), (pushed_recently, 100)]:
        await sql.execute(
            "UPDATE device_tokens SET updated_at = now() - make_interval(days => $2) WHERE id = $1",
            device_id,
            days,
        )
    await sql.execute(
        "UPDATE device_tokens SET last_used_at = now() - interval '1 day' WHERE id = $1",
        pushed_recently,
    )
    await sql.execute(
        "UPDATE device_tokens SET is_active = false, deactivated_at = now(),"
        " updated_at = now() - interval '200 days' WHERE id = $1",
        inactive_old,
    )

    response = await client.get("/admin/devices/stats", headers=ADMIN)

    assert response.status_code == 200
    assert response.json() == {
        "total": 6,
        "active": 5,
        "inactive": 1,
        "by_provider": {"fcm": 4, "apns": 1, "web_push": 1},
        "by_platform": {"android": 2, "ios": 2, "web": 2},
        "idle_over_days": {"30": 3, "60": 2, "90": 1},
    }
