"""The authorization matrix, for every endpoint of the OpenAPI schema (new endpoints join
automatically): no token → 401; a user token on /internal → 401; a non-admin on /admin → 403;
a user who is not a participant → 404 on everything conversation-scoped, and never anyone
else's data in any answer."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from backend.tests.conftest import API, LiveServer, bearer
from backend.tests.messaging import create_conversation, presence, send_message

PUBLIC = {"/health", "/metrics", f"{API}/push/vapid-public-key"}
PLACEHOLDER = re.compile(r"\{([^}]+)\}")
SECRET_TITLE = "alice and bob's secret plans"
SECRET_CONTENT = "meet at the old mill"


def fill(path: str, values: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), str(uuid.uuid4())), path)


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for path, methods in schema["paths"].items():
        for method in methods:
            if method in {"get", "post", "put", "patch", "delete"}:
                yield method.upper(), path


@pytest.fixture
async def schema(client: httpx.AsyncClient, server: LiveServer) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        return (await http.get("/openapi.json")).json()


async def test_every_endpoint_but_the_public_ones_is_401_without_credentials(
    server: LiveServer, schema: dict[str, Any]
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        for method, path in operations(schema):
            if path in PUBLIC:
                continue
            response = await http.request(method, fill(path, {}), json={})
            assert response.status_code == 401, (method, path, response.status_code)


async def test_a_user_token_is_not_an_api_key(server: LiveServer, schema: dict[str, Any]) -> None:
    internal = [(m, p) for m, p in operations(schema) if p.startswith(f"{API}/internal/")]
    assert internal
    async with httpx.AsyncClient(base_url=server.url) as http:
        for method, path in internal:
            response = await http.request(
                method, fill(path, {}), json={}, headers=bearer("alice", admin=True)
            )
            assert response.status_code == 401, (method, path)


async def test_admin_endpoints_are_403_for_users_without_the_admin_role(
    server: LiveServer, schema: dict[str, Any]
) -> None:
    admin = [(m, p) for m, p in operations(schema) if p.startswith(f"{API}/admin/")]
    assert admin
    async with httpx.AsyncClient(base_url=server.url) as http:
        for method, path in admin:
            response = await http.request(method, fill(path, {}), headers=bearer("mallory"))
            assert response.status_code == 403, (method, path)


# Bodies that pass validation, so that only the authorization decides the answer.
VALID_BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/conversations/{conversation_id}/participants"): {"user_ids": ["mallory"]},
    ("PUT", "/conversations/{conversation_id}/notification-settings"): {"muted": True},
    ("POST", "/conversations/{conversation_id}/messages"): {"content": "let me in"},
}


async def test_conversation_endpoints_are_404_for_non_participants_and_leak_nothing(
    server: LiveServer, client: httpx.AsyncClient, schema: dict[str, Any]
) -> None:
    conversation = await create_conversation(client, "alice", "bob", title=SECRET_TITLE)
    message = (await send_message(client, "alice", conversation["id"], SECRET_CONTENT)).json()
    scoped = [(m, p) for m, p in operations(schema) if "{conversation_id}" in p]
    assert len(scoped) >= 6
    values = {"conversation_id": conversation["id"]}
    async with httpx.AsyncClient(base_url=server.url) as http:
        for method, path in scoped:
            relative = path.removeprefix(API)
            body = VALID_BODIES.get((method, relative), {"up_to": message["id"]})
            response = await http.request(
                method, fill(path, values), json=body, headers=bearer("mallory")
            )
            assert response.status_code == 404, (method, path, response.status_code)
            assert SECRET_TITLE not in response.text
            assert SECRET_CONTENT not in response.text
            assert "bob" not in response.text

    # Nothing the stranger tried changed the conversation.
    after = await client.get(f"/conversations/{conversation['id']}", headers=bearer("alice"))
    assert after.json()["participant_ids"] == ["alice", "bob"]


async def test_lists_hold_only_the_callers_own_things(client: httpx.AsyncClient) -> None:
    await create_conversation(client, "alice", "bob", title=SECRET_TITLE)
    await client.post(
        "/devices/register",
        json={"device_token": "a" * 64, "platform": "ios", "provider": "apns"},
        headers=bearer("alice"),
    )
    await client.put("/blocks/bob", headers=bearer("alice"))

    for path in ("/conversations", "/devices", "/blocks"):
        response = await client.get(path, headers=bearer("mallory"))
        assert response.status_code == 200
        assert SECRET_TITLE not in response.text
        assert "alice" not in response.text and "bob" not in response.text


async def test_another_users_device_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    token = "b" * 64
    await client.post(
        "/devices/register",
        json={"device_token": token, "platform": "ios", "provider": "apns"},
        headers=bearer("alice"),
    )

    response = await client.delete(f"/devices/{token}", headers=bearer("mallory"))

    assert response.status_code == 404
    assert len((await client.get("/devices", headers=bearer("alice"))).json()["devices"]) == 1


async def test_presence_of_strangers_reads_offline(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    from backend.tests.messaging import ws_client

    async with ws_client(server.ws_url, "alice"):
        answer = await presence(client, "mallory", "alice")

    assert answer["alice"] == {"online": False, "last_seen": None} | {
        k: v for k, v in answer["alice"].items() if k not in ("online", "last_seen")
    }
