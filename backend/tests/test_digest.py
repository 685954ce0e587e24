"""The daily digest: content and subject, once per user per local day across worker
processes and restarts, catch-up after an outage, and `messenger digest --user`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx

from backend.devtools.emulators.smtp import SmtpSink, parts
from backend.tests.conftest import API, ServerFactory, bearer
from backend.tests.email_helpers import midday_zone, put_preferences
from backend.tests.messaging import create_conversation, eventually, send_message

DUE_NOW = "now() - interval '1 second'"


def child_env(settings: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "PYTEST"))}
    env.update({key.upper(): str(value) for key, value in settings.items()})
    return env


@asynccontextmanager
async def workers(settings: dict[str, Any]) -> AsyncIterator[Callable[[], None]]:
    """Start real `messenger worker` processes; all are killed at the end."""
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "backend.app.cli", "worker"],
                env=child_env(settings),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    try:
        yield start
    finally:
        for process in processes:
            process.kill()
            process.wait(10)


async def wants_digest(client: httpx.AsyncClient, user: str) -> None:
    await put_preferences(
        client,
        user,
        {
            "email_address": f"{user}@mail.test",
            "digest": {"enabled": True, "time": "08:00", "timezone": midday_zone()},
        },
    )


async def make_due(sql: asyncpg.Connection, *users: str, when: str = DUE_NOW) -> None:
    await sql.execute(
        f"UPDATE notification_preferences SET digest_next_at = {when} WHERE user_id = ANY($1)",
        list(users),
    )


async def rescheduled(sql: asyncpg.Connection, *users: str) -> bool:
    """Every user's digest was handled: their next one lies in the future again."""
    due = await sql.fetchval(
        "SELECT count(*) FROM notification_preferences"
        " WHERE user_id = ANY($1) AND digest_next_at <= now()",
        list(users),
    )
    return due == 0


async def test_digest_lists_conversations_with_counts_and_latest_messages(
    start_server: ServerFactory, smtp: SmtpSink, sql: asyncpg.Connection
) -> None:
    server = await start_server(
        **smtp.settings(), email_unsubscribe_url="https://example.com/app/#preferences"
    )
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        await wants_digest(client, "bob")
        team = await create_conversation(client, "alice", "bob", title="Team")
        await send_message(client, "alice", team["id"], "first")
        await send_message(client, "alice", team["id"], "second <b>bold</b>")
        untitled = await create_conversation(client, "carol", "bob")
        await send_message(client, "carol", untitled["id"], "hey")
        await make_due(sql, "bob")
        await eventually(lambda: len(smtp.to("bob@mail.test")) == 1)
    [mail] = smtp.to("bob@mail.test")
    assert mail["Subject"] == "3 unread messages in 2 conversations"
    assert mail["List-Unsubscribe"] == "<https://example.com/app/#preferences>"
    text, html = parts(mail)
    assert "Team: 2 unread" in text and "latest: second <b>bold</b>" in text
    assert "carol: 1 unread" in text and "latest: hey" in text
    assert "second &lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold" not in html
    await eventually(lambda: rescheduled(sql, "bob"))


async def test_digest_leaves_message_content_out_when_push_content_is_off(
    start_server: ServerFactory, smtp: SmtpSink, sql: asyncpg.Connection
) -> None:
    server = await start_server(**smtp.settings(), push_include_content=False)
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        await wants_digest(client, "bob")
        chat = await create_conversation(client, "alice", "bob")
        await send_message(client, "alice", chat["id"], "the secret plan")
        await make_due(sql, "bob")
        await eventually(lambda: len(smtp.to("bob@mail.test")) == 1)
    [mail] = smtp.to("bob@mail.test")
    assert mail["Subject"] == "1 unread message in 1 conversation"
    text, html = parts(mail)
    assert "alice: 1 unread" in text
    assert "secret" not in text and "secret" not in html


async def test_no_digest_when_nothing_is_unread(
    start_server: ServerFactory, smtp: SmtpSink, sql: asyncpg.Connection
) -> None:
    server = await start_server(**smtp.settings())
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        await wants_digest(client, "bob")
        await wants_digest(client, "dora")
        chat = await create_conversation(client, "alice", "bob")
        await send_message(client, "alice", chat["id"], "lunch?")
        await send_message(client, "bob", chat["id"], "yes")  # bob has read up to here
        await make_due(sql, "bob", "dora")
        await eventually(lambda: rescheduled(sql, "bob", "dora"))
    assert smtp.messages == []


async def test_messages_the_user_has_read_are_not_in_the_digest(
    start_server: ServerFactory, smtp: SmtpSink, sql: asyncpg.Connection
) -> None:
    server = await start_server(**smtp.settings())
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        await wants_digest(client, "bob")
        seen = await create_conversation(client, "alice", "bob", title="Seen")
        await send_message(client, "alice", seen["id"], "old news")
        read_up_to = (await send_message(client, "alice", seen["id"], "read already")).json()
        open_chat = await create_conversation(client, "carol", "bob", title="Open")
        await send_message(client, "carol", open_chat["id"], "still unread")
        await send_message(client, "carol", open_chat["id"], "also unread")
        read = await client.post(
            f"/conversations/{seen['id']}/read",
            json={"up_to": read_up_to["id"]},
            headers=bearer("bob"),
        )
        assert read.status_code == 200, read.text
        await make_due(sql, "bob")
        await eventually(lambda: len(smtp.to("bob@mail.test")) == 1)
    [mail] = smtp.to("bob@mail.test")
    assert mail["Subject"] == "2 unread messages in 1 conversation"
    text, _ = parts(mail)
    assert "Open: 2 unread" in text and "latest: also unread" in text
    assert "Seen" not in text and "read already" not in text


async def test_no_second_digest_for_what_an_earlier_digest_listed(
    start_server: ServerFactory, smtp: SmtpSink, sql: asyncpg.Connection
) -> None:
    server = await start_server(**smtp.settings())
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        await wants_digest(client, "bob")
        chat = await create_conversation(client, "alice", "bob")
        await send_message(client, "alice", chat["id"], "one")
        await make_due(sql, "bob")
        await eventually(lambda: len(smtp.messages) == 1)
        await eventually(lambda: rescheduled(sql, "bob"))

        # The next day: the same unread message, nothing new, so no digest.
        await sql.execute("UPDATE digest_runs SET local_date = local_date - 1")
        await make_due(sql, "bob")
        await eventually(lambda: rescheduled(sql, "bob"))
        assert len(smtp.messages) == 1

        # A day later something new arrived: a digest again, listing everything unread.
        await sql.execute("UPDATE digest_runs SET local_date = local_date - 1")
        await send_message(client, "alice", chat["id"], "two")
        await make_due(sql, "bob")
        await eventually(lambda: len(smtp.messages) == 2)
    assert smtp.messages[1]["Subject"] == "2 unread messages in 1 conversation"


async def test_one_scheduled_digest_per_user_per_day_with_two_workers(
    start_server: ServerFactory,
    base_settings: dict[str, Any],
    smtp: SmtpSink,
    sql: asyncpg.Connection,
) -> None:
    api = await start_server(background=False)
    users = [f"user{i}" for i in range(8)]
    async with httpx.AsyncClient(base_url=api.url + API) as client:
        for user in users:
            await wants_digest(client, user)
        chat = await create_conversation(client, "alice", *users)
        await send_message(client, "alice", chat["id"], "morning all")
        settings = {**base_settings, **smtp.settings(), "digest_batch_size": 3}
        async with workers(settings) as start_worker:
            start_worker()
            start_worker()
            await make_due(sql, *users)
            await eventually(lambda: len(smtp.messages) == len(users))
            await eventually(lambda: rescheduled(sql, *users))

            # Later the same local day: news again and the digest due again (a changed digest
            # time, a clock jump): the day's digest was sent, so nothing more.
            await send_message(client, "alice", chat["id"], "anyone?")
            await make_due(sql, *users)
            await eventually(lambda: rescheduled(sql, *users))
            await asyncio.sleep(0.5)  # room for a wrong second email to show up (no timing assert)
    assert sorted(m["To"] for m in smtp.messages) == sorted(f"{u}@mail.test" for u in users)
    assert await sql.fetchval("SELECT count(*) FROM digest_runs WHERE scheduled") == len(users)
    assert await sql.fetchval("SELECT count(*) FROM emails WHERE status = 'sent'") == len(users)


async def test_a_digest_missed_during_an_outage_is_caught_up_the_same_day(
    start_server: ServerFactory, smtp: SmtpSink, sql: asyncpg.Connection
) -> None:
    api = await start_server(background=False, **smtp.settings())
    async with httpx.AsyncClient(base_url=api.url + API) as client:
        await wants_digest(client, "bob")
        await wants_digest(client, "ines")
        chat = await create_conversation(client, "alice", "bob", "ines")
        await send_message(client, "alice", chat["id"], "while you were out")
    # Nothing ran background work when these came due: bob's an hour ago today (it is about
    # noon in his zone), ines's yesterday.
    await make_due(sql, "bob", when="now() - interval '1 hour'")
    await make_due(sql, "ines", when="now() - interval '26 hours'")
    await api.stop()

    await start_server(**smtp.settings())  # the restart
    await eventually(lambda: len(smtp.to("bob@mail.test")) == 1)
    await eventually(lambda: rescheduled(sql, "bob", "ines"))
    assert smtp.to("ines@mail.test") == []


def run_digest_command(settings: dict[str, Any], user: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend.app.cli", "digest", "--user", user],
        env=child_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_digest_command_sends_now_and_prints_sent_or_nothing(
    start_server: ServerFactory,
    base_settings: dict[str, Any],
    smtp: SmtpSink,
) -> None:
    api = await start_server(background=False)
    async with httpx.AsyncClient(base_url=api.url + API) as client:
        await wants_digest(client, "bob")
        await wants_digest(client, "dora")
        chat = await create_conversation(client, "alice", "bob", title="Plans")
        await send_message(client, "alice", chat["id"], "see you at 8")
    settings = {**base_settings, **smtp.settings()}

    sent = await asyncio.to_thread(run_digest_command, settings, "bob")
    assert (sent.returncode, sent.stdout) == (0, "sent\n"), sent.stderr
    [mail] = smtp.to("bob@mail.test")  # delivered before the command returned
    assert mail["Subject"] == "1 unread message in 1 conversation"
    assert "Plans: 1 unread" in parts(mail)[0]

    nothing = await asyncio.to_thread(run_digest_command, settings, "dora")
    assert (nothing.returncode, nothing.stdout) == (0, "nothing\n"), nothing.stderr
    assert smtp.to("dora@mail.test") == []


async def test_housekeeping_keeps_each_users_latest_digest_and_pending_emails(
    settings: Any, sql: asyncpg.Connection
) -> None:
    from backend.app.db import create_engine, create_sessionmaker
    from backend.app.messenger.digest.scheduler import housekeeping

    await sql.execute(
        """
        INSERT INTO digest_runs (user_id, local_date, scheduled, listed_until, created_at) VALUES
          ('bob', '2026-01-01', true, now(), now() - interval '60 days'),
          ('bob', '2026-01-02', true, now(), now() - interval '59 days'),
          ('eve', '2026-01-01', true, now(), now() - interval '60 days');
        INSERT INTO emails (kind, user_id, to_address, subject, text_body, html_body, status,
                            created_at) VALUES
          ('digest', 'bob', 'b@x.test', 's', 't', 'h', 'sent', now() - interval '8 days'),
          ('digest', 'bob', 'b@x.test', 's', 't', 'h', 'pending', now() - interval '8 days'),
          ('digest', 'bob', 'b@x.test', 's', 't', 'h', 'sent', now());
        """
    )
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        await housekeeping(create_sessionmaker(engine), batch_size=1)
    finally:
        await engine.dispose()
    runs = await sql.fetch("SELECT user_id, local_date::text FROM digest_runs ORDER BY user_id")
    assert [tuple(r) for r in runs] == [("bob", "2026-01-02"), ("eve", "2026-01-01")]
    emails = await sql.fetch("SELECT status FROM emails ORDER BY id")
    assert [r["status"] for r in emails] == ["pending", "sent"]


async def test_digest_counts_unread_inbox_notifications(
    start_server: ServerFactory, smtp: SmtpSink, sql: asyncpg.Connection
) -> None:
    from backend.tests.notification_helpers import accepted, inbox_ids, wait_until_sent

    server = await start_server(**smtp.settings())
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        await wants_digest(client, "bob")
        await wants_digest(client, "nina")
        for title in ("Export <ready>", "Maintenance tonight"):
            await wait_until_sent(
                client, await accepted(client, user_ids=["bob", "nina"], title=title)
            )
        chat = await create_conversation(client, "alice", "bob")
        await send_message(client, "alice", chat["id"], "hi")
        assert len(await inbox_ids(client, "nina")) == 2
        await make_due(sql, "bob", "nina")
        await eventually(lambda: len(smtp.messages) == 2)
    [bob] = smtp.to("bob@mail.test")
    [nina] = smtp.to("nina@mail.test")
    assert bob["Subject"] == "1 unread message in 1 conversation and 2 new notifications"
    assert nina["Subject"] == "2 new notifications"
    text, html = parts(nina)
    assert "Export <ready>" in text and "Maintenance tonight" in text
    assert "Export &lt;ready&gt;" in html
