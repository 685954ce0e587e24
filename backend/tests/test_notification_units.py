"""Fast unit tier: request validation and opaque cursors of the notification center."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from backend.app.messenger.notifications import history, inbox
from backend.app.messenger.notifications.schemas import CreateNotificationRequest


def test_defaults_follow_the_contract() -> None:
    request = CreateNotificationRequest(user_ids=["a"], title="t")
    assert (request.type, request.priority, request.body) == ("general", "normal", "")
    assert request.channels == ["in_app", "push"]


@pytest.mark.parametrize("url", ["https://example.com/a?b=c", "/inbox/1"])
def test_action_url_accepts_https_and_paths(url: str) -> None:
    assert CreateNotificationRequest(all=True, title="t", action_url=url).action_url == url


@pytest.mark.parametrize("url", ["http://x", "//evil.example/x", "https://", "ftp://x", "x"])
def test_action_url_refuses_the_rest(url: str) -> None:
    with pytest.raises(ValidationError):
        CreateNotificationRequest(all=True, title="t", action_url=url)


def test_repeated_channels_are_refused() -> None:
    with pytest.raises(ValidationError):
        CreateNotificationRequest(all=True, title="t", channels=["push", "push"])


def test_inbox_cursor_round_trips_and_refuses_foreign_ones() -> None:
    assert inbox.decode_cursor(inbox.encode_cursor(42)) == 42
    for bad in ("", "!!", "aWQ6NDI", inbox.encode_cursor(2**63)[:-1] + "x"):
        with pytest.raises(ValueError):
            inbox.decode_cursor(bad)


def test_history_cursor_round_trips() -> None:
    at, notification_id = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), uuid.uuid4()
    assert history.decode_cursor(history.encode_cursor(at, notification_id)) == (
        at,
        notification_id,
    )
    with pytest.raises(ValueError):
        history.decode_cursor("bm9wZQ")
