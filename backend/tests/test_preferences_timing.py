"""Fast unit tier: quiet hours, digest scheduling and digest wording are pure functions."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from backend.app.messenger.digest.content import (
    UnreadConversation,
    UnreadSummary,
    digest_email,
    digest_subject,
)
from backend.app.messenger.preferences.timing import (
    InvalidTimeZone,
    in_quiet_hours,
    next_digest_at,
    parse_hhmm,
    zone,
)

BERLIN = zone("Europe/Berlin")
NEW_YORK = zone("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_now_inside_quiet_hours_in_the_users_time_zone() -> None:
    # 21:30 UTC in January is 22:30 in Berlin: inside 22:00-23:00 there, outside it in UTC.
    now = utc(2026, 1, 15, 21, 30)
    assert in_quiet_hours(now, start=time(22), end=time(23), tz=BERLIN)
    assert not in_quiet_hours(now, start=time(22), end=time(23), tz=zone("UTC"))


@pytest.mark.parametrize(
    ("local_hour", "minute", "quiet"),
    [(21, 59, False), (22, 0, True), (23, 59, True), (0, 0, True), (6, 59, True), (7, 0, False)],
)
def test_quiet_hours_spanning_midnight(local_hour: int, minute: int, quiet: bool) -> None:
    # New York in January is UTC-5.
    now = datetime(2026, 1, 15, local_hour, minute, tzinfo=NEW_YORK)
    assert in_quiet_hours(now, start=time(22), end=time(7), tz=NEW_YORK) is quiet


def test_equal_start_and_end_is_never_quiet() -> None:
    now = utc(2026, 1, 15, 8, 0)
    assert not in_quiet_hours(now, start=time(8), end=time(8), tz=zone("UTC"))


def test_quiet_hours_follow_the_wall_clock_across_a_dst_change() -> None:
    # 05:30 UTC is 06:30 in Berlin in winter (quiet until 07:00) and 07:30 in summer (not quiet).
    assert in_quiet_hours(utc(2026, 3, 28, 5, 30), start=time(22), end=time(7), tz=BERLIN)
    assert not in_quiet_hours(utc(2026, 3, 30, 5, 30), start=time(22), end=time(7), tz=BERLIN)


@pytest.mark.parametrize(
    "bad", ["7:00", "24:00", "12:60", "12:00:00", "noon", "", "1２:００", "12:00\n"]
)
def test_malformed_times_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_hhmm(bad)


@pytest.mark.parametrize("bad", ["Mars/Olympus", "../etc/passwd", "Europe/Berlin\x00", "", "/UTC"])
def test_unknown_time_zones_are_refused(bad: str) -> None:
    with pytest.raises(InvalidTimeZone):
        zone(bad)


def test_next_digest_is_today_while_the_time_is_ahead_else_tomorrow() -> None:
    at = time(8, 0)
    assert next_digest_at(utc(2026, 1, 15, 6, 0), at=at, tz=BERLIN) == utc(2026, 1, 15, 7, 0)
    assert next_digest_at(utc(2026, 1, 15, 7, 1), at=at, tz=BERLIN) == utc(2026, 1, 16, 7, 0)
    sent_today = date(2026, 1, 15)
    assert next_digest_at(utc(2026, 1, 15, 6, 0), at=at, tz=BERLIN, sent_on=sent_today) == utc(
        2026, 1, 16, 7, 0
    )


def test_digest_time_inside_a_dst_gap_fires_an_hour_later_on_the_wall_clock() -> None:
    # 2026-03-08 02:30 does not exist in New York (02:00 → 03:00): it fires at 03:30 EDT.
    fired = next_digest_at(utc(2026, 3, 8, 0, 0), at=time(2, 30), tz=NEW_YORK)
    assert fired == utc(2026, 3, 8, 7, 30)
    assert fired.astimezone(NEW_YORK).time() == time(3, 30)


def test_digest_keeps_its_local_time_across_a_dst_change() -> None:
    before = next_digest_at(utc(2026, 3, 28, 0, 0), at=time(8), tz=BERLIN)
    after = next_digest_at(utc(2026, 3, 30, 0, 0), at=time(8), tz=BERLIN)
    assert (before.hour, after.hour) == (7, 6)  # 08:00 CET, then 08:00 CEST


@pytest.mark.parametrize(
    ("counts", "subject"),
    [
        ((3, 2, 0), "3 unread messages in 2 conversations"),
        ((1, 1, 0), "1 unread message in 1 conversation"),
        ((0, 0, 4), "4 new notifications"),
        ((0, 0, 1), "1 new notification"),
        ((5, 1, 1), "5 unread messages in 1 conversation and 1 new notification"),
    ],
)
def test_digest_subject(counts: tuple[int, int, int], subject: str) -> None:
    messages, conversations, notifications = counts
    assert (
        digest_subject(messages=messages, conversations=conversations, notifications=notifications)
        == subject
    )


def test_digest_names_untitled_conversations_by_the_other_participants() -> None:
    summary = UnreadSummary(
        conversations=[
            UnreadConversation("c1", None, ["carol", "dave"], 2, "hello", utc(2026, 1, 1))
        ]
    )
    subject, context = digest_email(summary, include_content=False)
    assert subject == "2 unread messages in 1 conversation"
    assert context["conversations"] == [{"name": "carol, dave", "unread_count": 2, "latest": None}]
