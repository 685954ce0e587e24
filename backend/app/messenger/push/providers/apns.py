"""APNs over HTTP/2 through aioapns, token (.p8) authentication.

Four adjustments to aioapns 4.0, all by subclassing its connection protocol:
- it never returns HTTP/2 receive-window credit for response bodies, so after ~64 KiB
  of error bodies (≈1,300 `Unregistered` answers, a fan-out to stale tokens) later
  responses never arrive; we acknowledge every data frame;
- an answer to a send that already timed out made it set a result on a cancelled future,
  and the error closed the connection with every push in flight; such answers are dropped;
- header values go out as plain HPACK literals, and h2 does not re-validate the headers
  we build: hpack's pure-Python Huffman coder (the provider JWT is never indexed, so it
  was coded anew on every push) and the validation were a fifth of a push's CPU;
- host and port come from class attributes; `APNS_HOST` overrides them for an emulator
  or a proxy (and `APNS_CA_FILE` adds a CA to trust).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aioapns import APNs, NotificationRequest, PushType
from aioapns.exceptions import ConnectionClosed, ConnectionError, MaxAttemptsExceeded
from hpack import Encoder

from backend.app.messenger.push.apps import ApnsCredentials, Transport
from backend.app.messenger.push.payloads import Notification, fit_body
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


class _LiteralEncoder(Encoder):
    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        return super().encode(headers, huffman=False)


def _protocol_class(base: type, host: str | None, port: int | None) -> type:
    def __init__(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[no-untyped-def]
        base.__init__(self, *args, **kwargs)
        self.conn.encoder = _LiteralEncoder()
        self.conn.config.validate_outbound_headers = False

    def on_data_received(self, raw_data: bytes, stream_id: int) -> None:  # type: ignore[no-untyped-def]
        base.on_data_received(self, raw_data, stream_id)
        # Return the flow-control credit aioapns forgets; sent by its flush() after this event.
        self.conn.acknowledge_received_data(len(raw_data), stream_id)

    def on_response_received(self, headers: dict[bytes, bytes]) -> None:  # type: ignore[no-untyped-def]
        # A send that timed out (asyncio.wait_for cancelled its future) may still be
        # answered; aioapns would call set_result on the cancelled future, and the
        # InvalidStateError from inside the protocol callback closes the connection with
        # every other push in flight on it.
        _forget_abandoned(self, headers.get(b"apns-id", b"").decode("utf8"))
        base.on_response_received(self, headers)

    def connection_lost(self, exc: Exception | None) -> None:  # type: ignore[no-untyped-def]
        for notification_id in [n for n, f in self.requests.items() if f.done()]:
            del self.requests[notification_id]
        base.connection_lost(self, exc)

    attributes: dict[str, object] = {
        "__init__": __init__,
        "on_data_received": on_data_received,
        "on_response_received": on_response_received,
        "connection_lost": connection_lost,
    }
    if host:
        attributes["APNS_SERVER"] = host
    if port:
        attributes["APNS_PORT"] = port
    return type(f"Messenger{base.__name__}", (base,), attributes)


def _forget_abandoned(protocol: object, notification_id: str) -> None:
    """Drop the request of an answer nobody waits for any more (its future is done), so
    that aioapns treats the answer as one for an unknown request (a warning, no error)."""
    requests = protocol.requests  # type: ignore[attr-defined]
    future = requests.get(notification_id)
    if future is not None and future.done():
        del requests[notification_id]


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
        pool.protocol_class = _protocol_class(pool.protocol_class, host, port)

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
            result = await asyncio.wait_for(self._client.send_notification(request), self._timeout)
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
