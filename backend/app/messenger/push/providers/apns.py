"""APNs over HTTP/2 through aioapns, token (.p8) authentication; the HTTP/2 connection
and what we changed in aioapns's is in `apns_transport`."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from aioapns import APNs, NotificationRequest, PushType
from aioapns.exceptions import ConnectionClosed, ConnectionError, MaxAttemptsExceeded

from backend.app.messenger.push.apps import ApnsCredentials, Transport
from backend.app.messenger.push.payloads import Notification, fit_body
from backend.app.messenger.push.providers.apns_transport import protocol_class
from backend.app.messenger.push.providers.base import (
    ConfigErrorReporter,
    PushProvider,
    SendResult,
    Target,
)

log = logging.getLogger(__name__)

DEAD_TOKEN_REASONS = {"BadDeviceToken", "DeviceTokenNotForTopic"}
GONE_REASONS = {"Unregistered", "ExpiredToken"}
PRIORITY = {"high": 10, "normal": 5, "low": 1}


class ApnsProvider(PushProvider):
    """One aioapns client (its own HTTP/2 connections, topic and environment) per app.

    Provider JWTs: aioapns keeps one per client and renews it every 30 minutes
    (`JWTAuthorizationHeaderProvider.TOKEN_TTL`), inside Apple's 20-60 minute window and
    never per request (Apple answers `TooManyProviderTokenUpdates` to that)."""

    name = "apns"

    def __init__(self, app_id: str, credentials: ApnsCredentials, transport: Transport) -> None:
        """Must run inside the event loop (aioapns binds to the running loop)."""
        super().__init__(
            app_id=app_id,
            timeout=transport.send_timeout,
            concurrency=transport.apns_concurrency,
            interactive=transport.interactive_concurrency,
        )
        ssl_context = ssl.create_default_context()
        if transport.apns_ca_file:
            ssl_context.load_verify_locations(cafile=transport.apns_ca_file)
        self.topic = credentials.topic
        self._timeout = transport.send_timeout
        self._config_errors = ConfigErrorReporter(self.name, log)

        async def quiet(request: NotificationRequest, result: object) -> None:
            pass  # every non-200 would otherwise be logged at ERROR; we classify instead

        self._client = APNs(
            key=Path(credentials.key_path).read_text(),
            key_id=credentials.key_id,
            team_id=credentials.team_id,
            topic=credentials.topic,
            use_sandbox=credentials.use_sandbox,
            ssl_context=ssl_context,
            max_connections=10,
            max_connection_attempts=2,
            err_func=quiet,
        )
        host, port = None, None
        if transport.apns_host:
            host, _, port_text = transport.apns_host.rpartition(":")
            host, port = (host, int(port_text)) if host else (port_text, 443)
        pool = self._client.pool
        pool.protocol_class = protocol_class(pool.protocol_class, host, port)

    def _message(self, notification: Notification, body: str) -> dict[str, object]:
        if notification.silent:  # background push: no alert, just the badge and the data
            return {
                "aps": {"content-available": 1, "badge": notification.badge or 0},
                **notification.data,
            }
        return {
            **notification.data,
            "aps": {
                "alert": {"title": notification.title, "body": body},
                "sound": "default",
                **({"badge": notification.badge} if notification.badge is not None else {}),
                **(
                    {"thread-id": notification.data["conversation_id"]}
                    if "conversation_id" in notification.data
                    else {}
                ),
            },
        }

    async def send(self, target: Target, notification: Notification) -> SendResult:
        import json

        message_holder: dict[str, object] = {}

        def render(body: str) -> bytes:
            message_holder["message"] = self._message(notification, body)
            return json.dumps(message_holder["message"], ensure_ascii=False).encode()

        fit_body(render, notification.body)
        request = NotificationRequest(
            device_token=target.token,
            message=message_holder["message"],  # type: ignore[arg-type]
            push_type=PushType.BACKGROUND if notification.silent else PushType.ALERT,
            priority=PRIORITY.get(notification.priority, 10),
            collapse_key=notification.collapse_id,
        )
        try:
            # asyncio.timeout, not wait_for: wait_for runs the send as a task of its own.
            async with asyncio.timeout(self._timeout):
                result = await self._client.send_notification(request)
        except (
            TimeoutError,
            ConnectionError,
            ConnectionClosed,
            MaxAttemptsExceeded,
            OSError,
        ) as exc:
            return SendResult.unavailable(f"apns transport: {type(exc).__name__}")
        return classify_answer(
            result.status,
            result.description or "",
            result.timestamp,
            target.registered_at,
            self._config_errors.report,
        )

    async def close(self) -> None:
        self._client.pool.close()


def classify_answer(
    status: str,
    reason: str,
    timestamp: int | None,
    registered_at: datetime,
    config_error: Callable[[str], SendResult],
) -> SendResult:
    """What an APNs answer means (shared/PROVIDERS.md's table); pure, unit-tested."""
    if status == "200":
        return SendResult.delivered()
    if status == "410" and reason in GONE_REASONS:
        if timestamp is not None:
            invalid_since = datetime.fromtimestamp(timestamp / 1000, UTC)
            if invalid_since < registered_at:
                # The app registered this token again after APNs saw it die: trust the app.
                return SendResult.failed(f"{reason} predates the last registration")
        return SendResult.token_dead(reason)
    if status == "400" and reason in DEAD_TOKEN_REASONS:
        return SendResult.token_dead(reason)
    if status == "429":
        return SendResult.retry(reason or status)
    if status in ("500", "503"):
        return SendResult.unavailable(reason or status)
    return config_error(f"HTTP {status} {reason}")
