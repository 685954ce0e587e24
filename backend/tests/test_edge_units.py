"""Unit tier for the pure logic of the hardening work: no servers, no I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from backend.app.edge.fields import check_datetime
from backend.app.edge.logs import redact
from backend.app.edge.text import UnsafeInput, loads_checked, text_problem
from backend.app.messenger.conversations.cursor import (
    ConversationCursor,
    InvalidCursor,
    decode_cursor,
    encode_cursor,
)

# Cursor codec


def test_a_cursor_round_trips_with_microseconds_and_offset() -> None:
    cursor = ConversationCursor(
        activity=datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC), id=uuid.uuid4()
    )

    assert decode_cursor(encode_cursor(cursor)) == cursor


@pytest.mark.parametrize(
    "value",
    ["", "not base64 !", "W10", "eyJhIjoxfQ", encode_cursor.__name__, "A" * 300],
)
def test_a_cursor_we_did_not_issue_is_refused(value: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(value)


def test_a_cursor_without_a_time_zone_is_refused() -> None:
    import base64
    import json

    raw = json.dumps(["2026-01-01T00:00:00", str(uuid.uuid4())]).encode()

    with pytest.raises(InvalidCursor):
        decode_cursor(base64.urlsafe_b64encode(raw).decode().rstrip("="))


# Text safety


@pytest.mark.parametrize("value", ["a\x00b", "\ud800", "x\udfffy"])
def test_nul_and_lone_surrogates_are_problems(value: str) -> None:
    assert text_problem(value) is not None


@pytest.mark.parametrize("value", ["", "plain", "émoji 😀", "\u200b"])
def test_ordinary_text_is_fine(value: str) -> None:
    assert text_problem(value) is None


def test_deep_json_is_refused_without_recursion_error() -> None:
    with pytest.raises(UnsafeInput):
        loads_checked("[" * 100_000 + "]" * 100_000)


def test_json_nested_just_within_the_limit_is_accepted() -> None:
    assert loads_checked("[" * 32 + "]" * 32) is not None


def test_a_nul_in_a_json_key_is_refused() -> None:
    with pytest.raises(UnsafeInput):
        loads_checked('{"a\\u0000": 1}')


def test_malformed_json_is_a_plain_value_error() -> None:
    with pytest.raises(ValueError) as caught:
        loads_checked("{")
    assert not isinstance(caught.value, UnsafeInput)


# Dates


def test_a_naive_date_is_read_as_utc() -> None:
    assert check_datetime(datetime(2030, 1, 1)) == datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-12))),
        datetime(1970, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
        datetime(1, 1, 1, tzinfo=UTC),
    ],
)
def test_dates_outside_1970_to_9999_in_utc_are_refused(value: datetime) -> None:
    with pytest.raises(ValueError):
        check_datetime(value)


# Log redaction


def test_query_strings_device_paths_and_jwts_are_redacted() -> None:
    jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
    line = (
        f'1.2.3.4 - "WebSocket /api/v1/messenger/ws?token={jwt_like}" [accepted] '
        '"DELETE /api/v1/messenger/devices/https%3A%2F%2Fpush.example%2Fabc HTTP/1.1" '
        f"Bearer {jwt_like}"
    )

    cleaned = redact(line)

    assert "token=" not in cleaned
    assert "push.example" not in cleaned
    assert "eyJ" not in cleaned


def test_fixed_device_routes_stay_readable() -> None:
    line = '"POST /api/v1/messenger/devices/register HTTP/1.1" "GET /admin/devices/stats"'

    assert redact(line) == line
