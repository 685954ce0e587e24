"""Web Push (RFC 8030/8291/8292) through pywebpush, VAPID-signed, aes128gcm-encrypted.

One `Vapid` instance (parsing the key per push costs ~25 µs), and one signed VAPID header
per push service (audience) reused for hours instead of an ES256 signature per push
(`VapidHeaders`; the signature was a sixth of a Web Push's CPU). The payload is encrypted
per push with a fresh key, as RFC 8291 requires."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

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


# RFC 8292 allows `exp` up to 24 h ahead; a header is signed for 12 h (as pywebpush does) and
# reused for 11, so every request carries one valid for at least another hour.
VAPID_LIFETIME = 12 * 3600
VAPID_REUSE = 11 * 3600
VAPID_AUDIENCES_KEPT = 1000  # push services are a handful; bound it anyway


class VapidHeaders:
    """The signed VAPID `Authorization` header of each push service (audience), reused until
    it nears its expiry."""

    def __init__(self, vapid: Vapid, sub: str, clock: Callable[[], float] = time.time) -> None:
        self._vapid = vapid
        self._sub = sub
        self._clock = clock
        self._signed: dict[str, tuple[float, dict[str, str]]] = {}

    def for_endpoint(self, endpoint: str) -> dict[str, str]:
        url = urlsplit(endpoint)
        audience = f"{url.scheme}://{url.netloc}"
        now = self._clock()
        cached = self._signed.get(audience)
        if cached is not None and now < cached[0]:
            return cached[1]
        claims = {"sub": self._sub, "aud": audience, "exp": int(now) + VAPID_LIFETIME}
        headers = self._vapid.sign(claims)
        if len(self._signed) >= VAPID_AUDIENCES_KEPT:
            self._signed.clear()
        self._signed[audience] = (now + VAPID_REUSE, headers)
        return headers


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
        self.public_key = credentials.public_key
        sub = credentials.claims_sub
        if not sub:
            sub = "mailto:push@localhost"
            log.warning("no Web Push claims email (app %s); Apple and Mozilla may refuse", app_id)
        self._vapid = VapidHeaders(Vapid.from_raw(credentials.private_key.encode()), sub)
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
        headers = {"Urgency": notification.priority, **self._vapid.for_endpoint(target.token)}
        if notification.collapse_id:
            headers["Topic"] = notification.collapse_id
        try:
            response = await webpush_async(
                subscription_info={
                    "endpoint": target.token,
                    "keys": {"p256dh": target.p256dh or "", "auth": target.auth or ""},
                },
                data=payload.decode(),
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
