"""The in-app inbox: the caller's entries only, newest first, keyset pages, read state."""

from __future__ import annotations

import httpx

from backend.tests.conftest import bearer
from backend.tests.notification_helpers import accepted, inbox, wait_until_sent


async def _send(client: httpx.AsyncClient, user_id: str, count: int) -> list[str]:
    """`count` notifications to one user, each fully materialised before the next."""
    ids = []
    for index in range(count):
        notification_id = await accepted(client, user_ids=[user_id], title=f"Notice {index}")
        await wait_until_sent(client, notification_id)
        ids.append(notification_id)
    return ids


async def test_an_entry_carries_the_notification(client: httpx.AsyncClient) -> None:
    notification_id = await accepted(
        client,
        user_ids=["alice"],
        title="Export ready",
        body="Your CSV is ready.",
        type="export",
        priority="high",
        action_url="/exports/7",
        data={"export_id": "7"},
    )
    await wait_until_sent(client, notification_id)

    [entry] = (await inbox(client, "alice"))["notifications"]
    assert set(entry) == {
        "id",
        "notification_id",
        "type",
        "title",
        "body",
        "priority",
        "action_url",
        "data",
        "created_at",
        "read_at",
    }
    assert entry["notification_id"] == notification_id
    assert (entry["type"], entry["title"], entry["body"]) == (
        "export",
        "Export ready",
        "Your CSV is ready.",
    )
    assert (entry["priority"], entry["action_url"]) == ("high", "/exports/7")
    assert entry["data"] == {"export_id": "7"}
    assert entry["read_at"] is None


async def test_defaults_are_general_normal_and_empty_body(client: httpx.AsyncClient) -> None:
    notification_id = await accepted(client, user_ids=["alice"], title="Hello")
    await wait_until_sent(client, notification_id)

    [entry] = (await inbox(client, "alice"))["notifications"]
    assert (entry["type"], entry["priority"], entry["body"]) == ("general", "normal", "")
    assert entry["action_url"] is None and entry["data"] is None


async def test_pages_go_newest_first_without_repeats_or_gaps(client: httpx.AsyncClient) -> None:
    sent = await _send(client, "alice", 5)

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await inbox(client, "alice", **params)
        seen += [e["notification_id"] for e in page["notifications"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(sent))


async def test_limit_and_cursor_are_validated(client: httpx.AsyncClient) -> None:
    for params in ({"limit": 0}, {"limit": 201}, {"cursor": "garbage"}):
        response = await client.get("/notifications", params=params, headers=bearer("alice"))
        assert response.status_code == 422, params


async def test_nobody_sees_another_users_inbox(client: httpx.AsyncClient) -> None:
    await _send(client, "alice", 1)
    [entry] = (await inbox(client, "alice"))["notifications"]

    assert (await inbox(client, "bob"))["notifications"] == []
    response = await client.post(f"/notifications/{entry['id']}/read", headers=bearer("bob"))
    assert response.status_code == 404
    [still] = (await inbox(client, "alice"))["notifications"]
    assert still["read_at"] is None


async def test_reading_an_unknown_entry_is_404(client: httpx.AsyncClient) -> None:
    for entry_id in ("999999", "not-a-number", "00000000-0000-0000-0000-000000000000"):
        response = await client.post(f"/notifications/{entry_id}/read", headers=bearer("alice"))
        assert response.status_code == 404, entry_id


async def test_mark_read_returns_the_entry_and_keeps_the_first_read_time(
    client: httpx.AsyncClient,
) -> None:
    await _send(client, "alice", 1)
    [entry] = (await inbox(client, "alice"))["notifications"]

    first = await client.post(f"/notifications/{entry['id']}/read", headers=bearer("alice"))
    again = await client.post(f"/notifications/{entry['id']}/read", headers=bearer("alice"))

    assert first.status_code == 200
    assert first.json()["id"] == entry["id"]
    assert first.json()["read_at"] is not None
    assert again.json()["read_at"] == first.json()["read_at"]


async def test_unread_only_lists_unread_entries(client: httpx.AsyncClient) -> None:
    older, newer = await _send(client, "alice", 2)
    entries = (await inbox(client, "alice"))["notifications"]
    newer_entry = next(e for e in entries if e["notification_id"] == newer)
    await client.post(f"/notifications/{newer_entry['id']}/read", headers=bearer("alice"))

    unread = await inbox(client, "alice", unread_only="true")
    assert [e["notification_id"] for e in unread["notifications"]] == [older]


async def test_read_all_marks_only_the_callers_unread_entries(client: httpx.AsyncClient) -> None:
    await _send(client, "alice", 3)
    await _send(client, "bob", 1)

    first = await client.post("/notifications/read-all", headers=bearer("alice"))
    again = await client.post("/notifications/read-all", headers=bearer("alice"))

    assert first.json() == {"updated": 3}
    assert again.json() == {"updated": 0}
    assert (await inbox(client, "alice", unread_only=True))["notifications"] == []
    assert len((await inbox(client, "bob", unread_only=True))["notifications"]) == 1
