"""Conversations: creation, listing, access rules, participants and notification settings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from backend.tests.conftest import bearer
from backend.tests.messaging import create_conversation, send_message


async def test_create_conversation_answers_201_with_the_caller_as_participant(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/conversations",
        json={"title": "Trip", "participant_ids": ["bob", "carol"]},
        headers=bearer("alice"),
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "title",
        "participant_ids",
        "created_at",
        "unread_count",
        "last_read_message_id",
    }
    uuid.UUID(body["id"])
    assert body["title"] == "Trip"
    assert sorted(body["participant_ids"]) == ["alice", "bob", "carol"]
    datetime.fromisoformat(body["created_at"])


async def test_create_conversation_counts_repeated_ids_once(client: httpx.AsyncClient) -> None:
    body = await create_conversation(client, "alice", "bob", "bob", "alice")

    assert sorted(body["participant_ids"]) == ["alice", "bob"]


async def test_create_conversation_without_title(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/conversations", json={"participant_ids": ["bob"]}, headers=bearer("alice")
    )

    assert response.status_code == 201
    assert response.json()["title"] is None


async def test_create_conversation_rejects_overlong_user_id(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/conversations", json={"title": None, "participant_ids": ["x" * 65]}, headers=bearer("a")
    )

    assert response.status_code == 422


@pytest.mark.parametrize(
    "body",
    [{"title": "a\x00b", "participant_ids": []}, {"title": None, "participant_ids": ["b\x00"]}],
    ids=["title", "participant"],
)
async def test_create_conversation_rejects_nul_characters(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await client.post("/conversations", json=body, headers=bearer("alice"))

    assert response.status_code == 422


async def test_conversation_endpoints_require_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/conversations")

    assert response.status_code == 401


async def test_participant_gets_the_conversation(client: httpx.AsyncClient) -> None:
    created = await create_conversation(client, "alice", "bob", title="Lunch")

    response = await client.get(f"/conversations/{created['id']}", headers=bearer("bob"))

    assert response.status_code == 200
    assert response.json() == created


async def test_non_participant_gets_404_for_the_conversation(client: httpx.AsyncClient) -> None:
    created = await create_conversation(client, "alice", "bob")

    response = await client.get(f"/conversations/{created['id']}", headers=bearer("mallory"))

    assert response.status_code == 404


async def test_unknown_conversation_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/conversations/{uuid.uuid4()}", headers=bearer("alice"))

    assert response.status_code == 404


async def test_list_holds_only_the_callers_conversations(client: httpx.AsyncClient) -> None:
    mine = await create_conversation(client, "alice", "bob")
    await create_conversation(client, "carol", "dave")

    response = await client.get("/conversations", headers=bearer("bob"))

    assert response.status_code == 200
    assert response.json() == {"conversations": [mine], "next_cursor": None}


async def test_list_puts_newest_activity_first(client: httpx.AsyncClient) -> None:
    first = await create_conversation(client, "alice", "bob", title="first")
    second = await create_conversation(client, "alice", "carol", title="second")
    third = await create_conversation(client, "alice", "dave", title="third")
    assert (await send_message(client, "alice", first["id"], "bump")).status_code == 201

    response = await client.get("/conversations", headers=bearer("alice"))

    titles = [c["title"] for c in response.json()["conversations"]]
    assert titles == ["first", "third", "second"]
    assert third["created_at"] > second["created_at"]


async def test_participant_adds_participants(client: httpx.AsyncClient) -> None:
    created = await create_conversation(client, "alice", "bob")

    response = await client.post(
        f"/conversations/{created['id']}/participants",
        json={"user_ids": ["carol", "bob"]},
        headers=bearer("bob"),
    )

    assert response.status_code == 200
    assert response.json() == {**created, "participant_ids": ["alice", "bob", "carol"]}


async def test_added_participant_can_read_the_conversation(client: httpx.AsyncClient) -> None:
    created = await create_conversation(client, "alice", "bob")
    await client.post(
        f"/conversations/{created['id']}/participants",
        json={"user_ids": ["carol"]},
        headers=bearer("alice"),
    )

    response = await client.get(f"/conversations/{created['id']}", headers=bearer("carol"))

    assert response.status_code == 200


async def test_non_participant_gets_404_when_adding_participants(
    client: httpx.AsyncClient,
) -> None:
    created = await create_conversation(client, "alice", "bob")

    response = await client.post(
        f"/conversations/{created['id']}/participants",
        json={"user_ids": ["mallory"]},
        headers=bearer("mallory"),
    )

    assert response.status_code == 404
    assert (
        await client.get(f"/conversations/{created['id']}", headers=bearer("mallory"))
    ).status_code == 404


async def test_adding_nobody_is_422(client: httpx.AsyncClient) -> None:
    created = await create_conversation(client, "alice", "bob")

    response = await client.post(
        f"/conversations/{created['id']}/participants",
        json={"user_ids": []},
        headers=bearer("alice"),
    )

    assert response.status_code == 422


# Notification settings


def settings_url(conversation_id: str) -> str:
    return f"/conversations/{conversation_id}/notification-settings"


async def test_notification_settings_default_to_unmuted_with_push(
    client: httpx.AsyncClient,
) -> None:
    created = await create_conversation(client, "alice", "bob")

    response = await client.get(settings_url(created["id"]), headers=bearer("bob"))

    assert response.status_code == 200
    assert response.json() == {"muted": False, "muted_until": None, "push_enabled": True}


async def test_notification_settings_update_is_read_back(client: httpx.AsyncClient) -> None:
    created = await create_conversation(client, "alice", "bob")
    until = datetime.now(UTC) + timedelta(hours=8)
    wanted = {"muted": True, "muted_until": until.isoformat(), "push_enabled": False}

    put = await client.put(settings_url(created["id"]), json=wanted, headers=bearer("bob"))
    got = await client.get(settings_url(created["id"]), headers=bearer("bob"))

    assert put.status_code == 200
    assert put.json() == got.json()
    assert got.json()["muted"] is True
    assert got.json()["push_enabled"] is False
    assert datetime.fromisoformat(got.json()["muted_until"]) == until


async def test_notification_settings_belong_to_one_participant(
    client: httpx.AsyncClient,
) -> None:
    created = await create_conversation(client, "alice", "bob")
    await client.put(settings_url(created["id"]), json={"muted": True}, headers=bearer("bob"))

    response = await client.get(settings_url(created["id"]), headers=bearer("alice"))

    assert response.json() == {"muted": False, "muted_until": None, "push_enabled": True}


async def test_notification_settings_partial_update_keeps_other_fields(
    client: httpx.AsyncClient,
) -> None:
    created = await create_conversation(client, "alice", "bob")
    await client.put(
        settings_url(created["id"]), json={"push_enabled": False}, headers=bearer("bob")
    )

    response = await client.put(
        settings_url(created["id"]), json={"muted": True}, headers=bearer("bob")
    )

    assert response.json() == {"muted": True, "muted_until": None, "push_enabled": False}


async def test_muted_until_in_the_past_means_not_muted(client: httpx.AsyncClient) -> None:
    created = await create_conversation(client, "alice", "bob")
    past = datetime.now(UTC) - timedelta(minutes=5)

    await client.put(
        settings_url(created["id"]),
        json={"muted": True, "muted_until": past.isoformat()},
        headers=bearer("bob"),
    )
    response = await client.get(settings_url(created["id"]), headers=bearer("bob"))

    assert response.json()["muted"] is False
    assert datetime.fromisoformat(response.json()["muted_until"]) == past


async def test_muted_until_in_the_future_means_muted(client: httpx.AsyncClient) -> None:
    created = await create_conversation(client, "alice", "bob")
    future = datetime.now(UTC) + timedelta(minutes=5)

    response = await client.put(
        settings_url(created["id"]),
        json={"muted": True, "muted_until": future.isoformat()},
        headers=bearer("bob"),
    )

    assert response.json()["muted"] is True


async def test_unmuting_clears_muted_until(client: httpx.AsyncClient) -> None:
    created = await create_conversation(client, "alice", "bob")
    future = datetime.now(UTC) + timedelta(hours=1)
    await client.put(
        settings_url(created["id"]),
        json={"muted": True, "muted_until": future.isoformat()},
        headers=bearer("bob"),
    )

    response = await client.put(
        settings_url(created["id"]), json={"muted": False}, headers=bearer("bob")
    )

    assert response.json() == {"muted": False, "muted_until": None, "push_enabled": True}


@pytest.mark.parametrize("body", [{"muted": None}, {"push_enabled": None}, {"muted": "maybe"}])
async def test_notification_settings_reject_non_boolean_switches(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    created = await create_conversation(client, "alice", "bob")

    response = await client.put(settings_url(created["id"]), json=body, headers=bearer("bob"))

    assert response.status_code == 422


async def test_non_participant_gets_404_for_notification_settings(
    client: httpx.AsyncClient,
) -> None:
    created = await create_conversation(client, "alice", "bob")

    got = await client.get(settings_url(created["id"]), headers=bearer("mallory"))
    put = await client.put(
        settings_url(created["id"]), json={"muted": True}, headers=bearer("mallory")
    )

    assert (got.status_code, put.status_code) == (404, 404)


async def test_muted_until_alone_mutes_until_then(client: httpx.AsyncClient) -> None:
    created = await create_conversation(client, "alice", "bob")
    future = datetime.now(UTC) + timedelta(hours=1)

    response = await client.put(
        settings_url(created["id"]),
        json={"muted_until": future.isoformat()},
        headers=bearer("bob"),
    )

    assert response.json()["muted"] is True
    assert datetime.fromisoformat(response.json()["muted_until"]) == future


async def test_unmuting_wins_over_a_muted_until_sent_with_it(client: httpx.AsyncClient) -> None:
    created = await create_conversation(client, "alice", "bob")
    future = datetime.now(UTC) + timedelta(hours=1)

    response = await client.put(
        settings_url(created["id"]),
        json={"muted": False, "muted_until": future.isoformat()},
        headers=bearer("bob"),
    )

    assert response.json() == {"muted": False, "muted_until": None, "push_enabled": True}
