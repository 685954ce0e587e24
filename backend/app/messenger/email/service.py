"""Enqueueing emails (what other packages call) and the queue's claim/record statements.

Enqueue functions render the templates at once and insert rows in the caller's
transaction: an email is queued exactly when the work that caused it commits.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.config import Settings
from backend.app.messenger.email.rendering import render
from backend.app.messenger.email.smtp import Outgoing
from backend.app.messenger.email.vocabulary import EmailKind


@dataclass(frozen=True, slots=True)
class NewEmail:
    kind: EmailKind
    user_id: str
    to: str
    subject: str
    template: str
    context: dict[str, Any]
    dedupe_key: str | None = None
    notification_id: str | None = None  # kind `notification`: for the admin counts


def _uuid_or_none(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def one_line(value: str, limit: int = 300) -> str:
    """Header-safe: no line breaks (header injection), bounded length."""
    return " ".join(value.split())[:limit]


def _domain(settings: Settings) -> str:
    sender = settings.email_from.rsplit("@", 1)
    return sender[1].strip(" >") if len(sender) == 2 else "localhost"


def _row(settings: Settings, new: NewEmail) -> dict[str, Any]:
    context = {"unsubscribe_url": settings.email_unsubscribe_url, **new.context}
    text_body, html_body = render(new.template, context)
    # A stable Message-ID across retries lets receiving servers drop an at-least-once duplicate.
    headers = {"Message-ID": f"<{secrets.token_hex(16)}@{_domain(settings)}>"}
    if settings.email_unsubscribe_url:
        headers["List-Unsubscribe"] = f"<{settings.email_unsubscribe_url}>"
    return {
        "kind": new.kind.value,
        "user_id": new.user_id,
        "to_address": new.to,
        "subject": one_line(new.subject),
        "text_body": text_body,
        "html_body": html_body,
        "headers": headers,
        "dedupe_key": new.dedupe_key,
        "notification_id": _uuid_or_none(new.notification_id),
    }


# One statement for any number of emails, built once (a multi-row VALUES is recompiled per size).
_INSERT = text(
    """
    INSERT INTO emails (kind, user_id, to_address, subject, text_body, html_body, headers,
                        dedupe_key, notification_id)
    SELECT kind, user_id, to_address, subject, text_body, html_body, headers::jsonb, dedupe_key,
           notification_id
      FROM unnest(
        CAST(:kinds AS varchar[]), CAST(:users AS varchar[]), CAST(:to AS varchar[]),
        CAST(:subjects AS text[]), CAST(:texts AS text[]), CAST(:htmls AS text[]),
        CAST(:headers AS text[]), CAST(:keys AS varchar[]), CAST(:notifications AS uuid[])
      ) AS e(kind, user_id, to_address, subject, text_body, html_body, headers, dedupe_key,
             notification_id)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
    """
)


async def enqueue_many(
    session: AsyncSession, settings: Settings, emails: Sequence[NewEmail]
) -> list[int]:
    """Queue emails in one INSERT; a repeated `dedupe_key` queues nothing. Returns the new ids.
    Email off (no SMTP_HOST): nothing is queued."""
    if not settings.email_enabled or not emails:
        return []
    rows = [_row(settings, new) for new in emails]
    result = await session.scalars(
        _INSERT,
        {
            "kinds": [r["kind"] for r in rows],
            "users": [r["user_id"] for r in rows],
            "to": [r["to_address"] for r in rows],
            "subjects": [r["subject"] for r in rows],
            "texts": [r["text_body"] for r in rows],
            "htmls": [r["html_body"] for r in rows],
            "headers": [json.dumps(r["headers"]) for r in rows],
            "keys": [r["dedupe_key"] for r in rows],
            "notifications": [r["notification_id"] for r in rows],
        },
    )
    return list(result)


async def enqueue(
    session: AsyncSession,
    settings: Settings,
    *,
    kind: EmailKind,
    user_id: str,
    to: str,
    subject: str,
    template: str,
    context: dict[str, Any],
    dedupe_key: str | None = None,
) -> int | None:
    ids = await enqueue_many(
        session,
        settings,
        [NewEmail(kind, user_id, to, subject, template, context, dedupe_key)],
    )
    return ids[0] if ids else None


async def enqueue_notification_email(
    session: AsyncSession,
    settings: Settings,
    *,
    notification_id: str,
    recipients: dict[str, str],
    title: str,
    body: str,
    action_url: str | None,
) -> list[int]:
    """One email per recipient (user id → address, as `preferences.service.email_recipients`
    answers): subject = title, text and escaped HTML with the body and the action URL.
    Idempotent per (notification, user)."""
    context = {"title": title, "body": body, "action_url": action_url}
    return await enqueue_many(
        session,
        settings,
        [
            NewEmail(
                EmailKind.NOTIFICATION,
                user_id,
                address,
                title,
                "notification",
                context,
                dedupe_key=f"notification:{notification_id}:{user_id}"[:200],
                notification_id=notification_id,
            )
            for user_id, address in recipients.items()
        ],
    )


_NOTIFICATION_COUNTS = text(
    """
    SELECT notification_id, status, count(*) AS n FROM emails
    WHERE notification_id = ANY(CAST(:ids AS uuid[]))
    GROUP BY notification_id, status
    """
)


async def notification_email_counts(
    session: AsyncSession, *, notification_ids: Sequence[Any]
) -> dict[Any, dict[str, int]]:
    """Admin history: per notification, its emails by status (sent / failed / pending)."""
    if not notification_ids:
        return {}
    counts: dict[Any, dict[str, int]] = {}
    rows = await session.execute(_NOTIFICATION_COUNTS, {"ids": list(notification_ids)})
    for row in rows:
        counts.setdefault(row.notification_id, {})[row.status] = int(row.n)
    return counts


# Claim due pending emails: the lease is `next_attempt_at` moved ahead (a dead sender's claim
# simply comes due again).
CLAIM = text(
    """
    UPDATE emails SET next_attempt_at = now() + make_interval(secs => :lease), tries = tries + 1
    WHERE id IN (
        SELECT id FROM emails
        WHERE status = 'pending' AND next_attempt_at <= now()
          AND (CAST(:only_ids AS bigint[]) IS NULL OR id = ANY(CAST(:only_ids AS bigint[])))
        ORDER BY next_attempt_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, kind, to_address, subject, text_body, html_body, headers, tries, soft_failures
    """
).bindparams(bindparam("only_ids", value=None))

RECORD = text(
    """
    UPDATE emails AS e SET
        status = r.status,
        soft_failures = e.soft_failures + r.soft,
        next_attempt_at = now() + make_interval(secs => r.delay),
        last_error = r.error,
        sent_at = CASE WHEN r.status = 'sent' THEN now() END
    FROM unnest(
        CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:soft AS int[]),
        CAST(:delays AS float8[]), CAST(:errors AS text[])
    ) AS r(id, status, soft, delay, error)
    WHERE e.id = r.id AND e.status = 'pending'
    """
)


def outgoing(row: Any) -> Outgoing:
    return Outgoing(
        id=row.id,
        kind=row.kind,
        to_address=row.to_address,
        subject=row.subject,
        text_body=row.text_body,
        html_body=row.html_body,
        headers=dict(row.headers or {}),
    )


FINISHED_RETENTION_SECONDS = 7 * 86400

# Sent and failed emails are kept a week (support questions), then removed in small batches.
PURGE_FINISHED = text(
    """
    DELETE FROM emails WHERE id IN (
        SELECT id FROM emails
        WHERE status <> 'pending' AND created_at < now() - make_interval(secs => :keep)
        LIMIT :limit
    )
    """
)


async def purge_finished(session: AsyncSession, *, limit: int) -> int:
    result = await session.execute(
        PURGE_FINISHED, {"keep": FINISHED_RETENTION_SECONDS, "limit": limit}
    )
    return result.rowcount  # type: ignore[attr-defined,no-any-return]
