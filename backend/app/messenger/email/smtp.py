"""SMTP delivery through aiosmtplib: one connection per batch, one result per email.

Results say what the queue should do: SENT, RETRY (the server refused this email for now:
counts against its attempts), WAIT (the server is unreachable or misconfigured: counts
against no email, they all wait for it) or FAILED (refused for good, 5xx).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from enum import Enum
from typing import Any

import aiosmtplib

from backend.app.config import Settings

log = logging.getLogger(__name__)


class Result(Enum):
    SENT = "sent"
    RETRY = "retry"
    WAIT = "wait"
    FAILED = "failed"


@dataclass(slots=True)
class Outgoing:
    id: int
    kind: str
    to_address: str
    subject: str
    text_body: str
    html_body: str
    headers: dict[str, Any] = field(default_factory=dict)


def build_message(settings: Settings, email: Outgoing) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.email_from
    message["To"] = email.to_address
    message["Subject"] = email.subject
    message["Date"] = formatdate(localtime=False)
    for name, value in email.headers.items():
        message[name] = value
    message.set_content(email.text_body)
    message.add_alternative(email.html_body, subtype="html")
    return message


def _refusal(exc: aiosmtplib.SMTPException) -> Result:
    code = getattr(exc, "code", None)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        code = exc.recipients[0].code
    return Result.FAILED if isinstance(code, int) and code >= 500 else Result.RETRY


class SmtpTransport:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username or None,
            password=s.smtp_password or None,
            use_tls=s.smtp_security == "tls",
            start_tls=s.smtp_security == "starttls",
            timeout=s.smtp_timeout_seconds,
        )

    async def send(self, emails: list[Outgoing]) -> list[tuple[Result, str | None]]:
        results: list[tuple[Result, str | None]] = [(Result.WAIT, "not attempted")] * len(emails)
        client = self._client()
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            reason = f"connect: {type(exc).__name__}"
            log.warning("SMTP server unreachable (%s); %d emails wait", reason, len(emails))
            return [(Result.WAIT, reason)] * len(emails)
        try:
            for index, email in enumerate(emails):
                try:
                    message = build_message(self.settings, email)
                except (ValueError, TypeError) as exc:  # an address or header email cannot carry
                    results[index] = (Result.FAILED, f"unsendable: {type(exc).__name__}")
                    continue
                try:
                    await client.send_message(message)
                    results[index] = (Result.SENT, None)
                except aiosmtplib.SMTPAuthenticationError as exc:
                    log.error("SMTP authentication failed (code %s): check SMTP_*", exc.code)
                    break  # every remaining email waits for the configuration to be fixed
                except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError):
                    results[index] = (Result.WAIT, "disconnected")
                    break
                except aiosmtplib.SMTPException as exc:
                    results[index] = (_refusal(exc), f"{type(exc).__name__}: {exc}"[:500])
                    try:
                        await client.rset()
                    except (aiosmtplib.SMTPException, OSError):
                        break
        finally:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()
        return results
