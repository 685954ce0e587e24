"""Email through a real SMTP server (aiosmtpd): notification emails, retries, metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.config import Settings
from backend.app.db import create_engine, create_sessionmaker
from backend.app.messenger.email import service as email_service
from backend.app.messenger.preferences import service as preferences
from backend.devtools.emulators.smtp import SmtpSink, parts
from backend.tests.conftest import API, ServerFactory
from backend.tests.email_helpers import bearer_with_email, put_preferences
from backend.tests.messaging import eventually


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Any]:
    """A session factory on the test database, for calling service functions directly."""
    engine = create_engine(settings.database_url, pool_size=2)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def notify_by_email(
    db: Any, settings: Settings, user_ids: list[str], **fields: Any
) -> list[int]:
    """What the notifications package does for channel `email` (wired there by its owner)."""
    session: AsyncSession
    async with db.begin() as session:
        recipients = await preferences.email_recipients(session, user_ids=user_ids)
        return await email_service.enqueue_notification_email(
            session, settings, notification_id="n-1", recipients=recipients, **fields
        )


async def metric(client: httpx.AsyncClient, root: str, kind: str, outcome: str) -> float:
    text = (await client.get(f"{root}/metrics")).text
    line = f'messenger_emails_total{{kind="{kind}",outcome="{outcome}"}} '
    return next(float(row.split()[-1]) for row in text.splitlines() if row.startswith(line))


async def test_notification_email_has_the_title_as_subject_and_escaped_html(
    start_server: ServerFactory, smtp: SmtpSink, db: Any
) -> None:
    server = await start_server(**smtp.settings())
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        await client.get(
            "/notification-preferences", headers=bearer_with_email("ann", "ann@x.test")
        )
        ids = await notify_by_email(
            db,
            server.settings,
            ["ann"],
            title="Invoice <ready>",
            body='Pay <script>alert("x")</script> & go',
            action_url="https://example.com/invoices?id=1&v=2",
        )
    assert len(ids) == 1
    await eventually(lambda: len(smtp.to("ann@x.test")) == 1)
    [mail] = smtp.to("ann@x.test")
    assert mail["Subject"] == "Invoice <ready>"
    assert mail["From"] == "Messenger <messenger@example.com>"
    assert mail["Message-ID"]
    text, html = parts(mail)
    assert 'Pay <script>alert("x")</script> & go' in text
    assert "https://example.com/invoices?id=1&v=2" in text
    assert "<script>" not in html
    assert "Pay &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; go" in html
    assert "Invoice &lt;ready&gt;" in html
    assert 'href="https://example.com/invoices?id=1&amp;v=2"' in html


async def test_notification_email_goes_only_to_users_with_an_address_and_email_on(
    start_server: ServerFactory, smtp: SmtpSink, db: Any
) -> None:
    server = await start_server(**smtp.settings())
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        await put_preferences(client, "ann", {"email_address": "ann@own.test"})
        await client.get("/notification-preferences", headers=bearer_with_email("bob", "b@x.test"))
        await client.get("/notification-preferences", headers=bearer_with_email("cy", "cy@x.test"))
        await put_preferences(client, "cy", {"email": False})
        ids = await notify_by_email(
            db,
            server.settings,
            ["ann", "bob", "cy", "nobody"],
            title="Hi",
            body="",
            action_url=None,
        )
    assert len(ids) == 2
    await eventually(lambda: len(smtp.messages) == 2)
    assert sorted(m["To"] for m in smtp.messages) == ["ann@own.test", "b@x.test"]


async def test_the_same_notification_is_emailed_once(
    start_server: ServerFactory, smtp: SmtpSink, db: Any, sql: asyncpg.Connection
) -> None:
    server = await start_server(**smtp.settings())
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        await put_preferences(client, "ann", {"email_address": "ann@own.test"})
    first = await notify_by_email(
        db, server.settings, ["ann"], title="Hi", body="", action_url=None
    )
    again = await notify_by_email(
        db, server.settings, ["ann"], title="Hi", body="", action_url=None
    )
    assert (len(first), again) == (1, [])
    await eventually(lambda: len(smtp.messages) == 1)
    assert await sql.fetchval("SELECT count(*) FROM emails") == 1


async def test_email_is_off_without_smtp_host(
    server: Any, client: httpx.AsyncClient, db: Any, sql: asyncpg.Connection
) -> None:
    await put_preferences(client, "ann", {"email_address": "ann@own.test"})
    ids = await notify_by_email(db, server.settings, ["ann"], title="Hi", body="", action_url=None)
    assert ids == []
    assert await sql.fetchval("SELECT count(*) FROM emails") == 0


async def test_smtp_down_is_retried_and_delivered_once_it_is_back(
    start_server: ServerFactory, smtp: SmtpSink, db: Any, sql: asyncpg.Connection
) -> None:
    smtp.stop()
    server = await start_server(**smtp.settings())
    async with httpx.AsyncClient(base_url=server.url + API) as client:
        await put_preferences(client, "ann", {"email_address": "ann@own.test"})
        retries_before = await metric(client, server.url, "notification", "retry_scheduled")
        sent_before = await metric(client, server.url, "notification", "sent")
        await notify_by_email(db, server.settings, ["ann"], title="Hi", body="b", action_url=None)

        async def retried_twice() -> bool:
            return (
                await metric(client, server.url, "notification", "retry_scheduled")
                >= retries_before + 2
            )

        await eventually(retried_twice)
        assert await sql.fetchval("SELECT status FROM emails") == "pending"
        smtp.start()
        await eventually(lambda: len(smtp.messages) == 1)

        async def recorded() -> bool:
            return await sql.fetchval("SELECT status FROM emails") == "sent"

        await eventually(recorded)
        assert await metric(client, server.url, "notification", "sent") == sent_before + 1
    # Unreachable server counted against no email: it keeps all its attempts.
    assert await sql.fetchval("SELECT soft_failures FROM emails") == 0
    assert len(smtp.messages) == 1


async def test_an_unsendable_email_fails_alone_and_the_rest_of_its_batch_goes_out(
    start_server: ServerFactory, smtp: SmtpSink, db: Any, sql: asyncpg.Connection
) -> None:
    server = await start_server(**smtp.settings())
    async with db.begin() as session:
        for to in ("broken\r\nBcc: x@y.test@example.com", "fine@example.com"):
            await email_service.enqueue(
                session,
                server.settings,
                kind=email_service.EmailKind.NOTIFICATION,
                user_id="u",
                to=to,
                subject="Hi",
                template="notification",
                context={"title": "Hi", "body": "", "action_url": None},
            )

    async def settled() -> bool:
        return await sql.fetchval("SELECT count(*) FROM emails WHERE status = 'pending'") == 0

    await eventually(settled)
    rows = await sql.fetch("SELECT to_address, status FROM emails ORDER BY id")
    assert [r["status"] for r in rows] == ["failed", "sent"]
    assert [m["To"] for m in smtp.messages] == ["fine@example.com"]
