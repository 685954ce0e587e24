"""Web Push (RFC 8030/8291/8292) through pywebpush, VAPID-signed, aes128gcm-encrypted.

One `Vapid` instance (parsing the key per push costs ~25 µs) and a fresh claims dict per
call (pywebpush writes `aud`/`exp` into it: a shared dict would carry the previous push
service's audience and be refused).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import aiohttp
from py_vapid import Vapid
from pywebpush import WebPushException, webpush_async

from backend.app.messenger.devices.validation import TokenError, check_endpoint
from backend.app.messenger.push.apps import Transport, WebPushCredentials
from backend.app.messenger.push.payloads import Notification, fit_body
from backend.app.messenger.push.providers.base import (
    ConfigErrorReporter,
    PushProvider,
    SendResult,
    Target,
    parse_retry_after,
)
from backend.app.messenger.push.providers.webpush_transport import (
    AddressRefused,
    web_push_session,
)

log = logging.getLogger(__name__)

TTL_SECONDS = 86400
# aes128gcm adds a 86-byte header, a 16-byte tag and a padding delimiter to a 4096-byte record.
MAX_PLAINTEXT = 3993


class WebPushProvider(PushProvider):
    name = "web_push"

    def __init__(self, app_id: str, credentials: WebPushCredentials, transport: Transport) -> None:
        """Must run inside the event loop (the aiohttp session binds to it)."""
        super().__init__(
            app_id=app_id,
            timeout=transport.send_timeout,
            concurrency=transport.concurrency,
            interactive=transport.interactive_concurrency,
        )
        self._vapid = Vapid.from_raw(credentials.private_key.encode())
        self.public_key = credentials.public_key
        self._sub = credentials.claims_sub
        if not self._sub:
            self._sub = "mailto:push@localhost"
            log.warning("no Web Push claims email (app %s); Apple and Mozilla may refuse", app_id)
        self._allowlist = transport.web_push_allowlist
        self._session = web_push_session(
            ca_file=transport.web_push_ca_file,
            allowlist=transport.web_push_allowlist,
            connection_limit=self.connection_limit,
        )
        self._timeout = transport.send_timeout
        self._config_errors = ConfigErrorReporter(self.name, log)

    @staticmethod
    def _alert_payload(notification: Notification) -> bytes:
        return fit_body(
            lambda body: json.dumps(
                {
                    "title": notification.title,
                    "body": body,
                    "data": notification.data_with_unread_total(),
                },
                ensure_ascii=False,
            ).encode(),
            notification.body,
            limit=MAX_PLAINTEXT,
        )

    async def send(self, target: Target, notification: Notification) -> SendResult:
        try:
            check_endpoint(target.token, self._allowlist)  # the allow-list may have shrunk
        except TokenError as exc:
            return SendResult.failed(f"endpoint refused: {exc}")
        if notification.silent:
            data = notification.data_with_unread_total()
            payload = json.dumps({"type": data["type"], "data": data}).encode()
        else:
            payload = self._alert_payload(notification)
        headers = {"Urgency": notification.priority}
        if notification.collapse_id:
            headers["Topic"] = notification.collapse_id
        try:
            response = await webpush_async(
                subscription_info={
                    "endpoint": target.token,
                    "keys": {"p256dh": target.p256dh or "", "auth": target.auth or ""},
                },
                data=payload.decode(),
                vapid_private_key=self._vapid,
                vapid_claims={"sub": self._sub},  # fresh dict per call, see module doc
                ttl=TTL_SECONDS,
                headers=headers,
                aiohttp_session=self._session,  # type: ignore[arg-type]
                timeout=self._timeout,
            )
            response.release()  # type: ignore[union-attr]
        except WebPushException as exc:
            return classify_error(exc, self._config_errors.report)
        except AddressRefused:
            return SendResult.failed("endpoint resolves to a refused address")
        except (aiohttp.ClientError, TimeoutError) as exc:
            return SendResult.unavailable(f"web push transport: {type(exc).__name__}")
        return SendResult.delivered()

    async def close(self) -> None:
        await self._session.close()


def classify_error(exc: WebPushException, config_error: Callable[[str], SendResult]) -> SendResult:
    """What a push service's refusal means (shared/PROVIDERS.md's table); pure, unit-tested."""
    response = exc.response
    status = getattr(response, "status", None) or getattr(response, "status_code", None)
    if status is None:
        return SendResult.retry(f"web push: {exc.message}")
    if 300 <= status < 400:
        return SendResult.failed(f"HTTP {status}: redirects are not followed")
    if status in (404, 410):
        return SendResult.token_dead(f"HTTP {status}")
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == 429:
        return SendResult.retry(f"HTTP {status}", retry_after)
    if status >= 500:
        return SendResult.unavailable(f"HTTP {status}", retry_after)
    return config_error(f"HTTP {status}")
