"""Web Push (RFC 8030/8291/8292) through pywebpush, VAPID-signed, aes128gcm-encrypted.

One `Vapid` instance (parsing the key per push costs ~25 µs) and a fresh claims dict per
call (pywebpush writes `aud`/`exp` into it: a shared dict would carry the previous push
service's audience and be refused).
"""

from __future__ import annotations

import json
import logging

import aiohttp
from py_vapid import Vapid
from pywebpush import WebPushException, webpush_async

from backend.app.config import Settings
from backend.app.messenger.push.payloads import Notification, fit_body
from backend.app.messenger.push.providers.base import (
    ConfigErrorReporter,
    SendResult,
    Target,
    parse_retry_after,
)

log = logging.getLogger(__name__)

TTL_SECONDS = 86400
# aes128gcm adds a 86-byte header, a 16-byte tag and a padding delimiter to a 4096-byte record.
MAX_PLAINTEXT = 3993


class WebPushProvider:
    name = "web_push"

    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        self._vapid = Vapid.from_raw(settings.web_push_private_key.encode())
        self._sub = settings.web_push_claims_sub
        if not self._sub:
            self._sub = "mailto:push@localhost"
            log.warning("WEB_PUSH_CLAIMS_EMAIL is not set; Apple and Mozilla may refuse pushes")
        self._session = session
        self._timeout = settings.push_send_timeout_seconds
        self._config_errors = ConfigErrorReporter(self.name, log)

    async def send(self, target: Target, notification: Notification) -> SendResult:
        payload = fit_body(
            lambda body: json.dumps(
                {"title": notification.title, "body": body, "data": notification.data},
                ensure_ascii=False,
            ).encode(),
            notification.body,
            limit=MAX_PLAINTEXT,
        )
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
                aiohttp_session=self._session,
                timeout=self._timeout,
            )
            response.release()  # type: ignore[union-attr]
        except WebPushException as exc:
            return self._classify(exc)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return SendResult.retry(f"web push transport: {type(exc).__name__}")
        return SendResult.delivered()

    def _classify(self, exc: WebPushException) -> SendResult:
        response = exc.response
        status = getattr(response, "status", None) or getattr(response, "status_code", None)
        if status is None:
            return SendResult.retry(f"web push: {exc.message}")
        if status in (404, 410):
            return SendResult.token_dead(f"HTTP {status}")
        if status == 429 or status >= 500:
            return SendResult.retry(
                f"HTTP {status}", parse_retry_after(response.headers.get("Retry-After"))
            )
        return self._config_errors.report(f"HTTP {status}")

    async def close(self) -> None:
        pass  # the aiohttp session belongs to the dispatcher
