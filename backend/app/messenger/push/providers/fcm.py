"""FCM HTTP v1 through pyfcm: pyfcm owns the service-account credentials and builds the
payload; the POST goes through this adapter's own aiohttp session (system trust store).

Why not `pyfcm.notify()`: it blocks, its exceptions carry no status or Retry-After, and
on 429 it sleeps and recurses without limit (see shared/PROVIDERS.md). Its async helper
starts its own event loop. Credentials refresh (a blocking google-auth call) runs in a
thread, once per token lifetime, shared by all sends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from pyfcm import FCMNotification

from backend.app.messenger.push.apps import FcmCredentials, Transport
from backend.app.messenger.push.payloads import Notification, fit_body
from backend.app.messenger.push.providers.base import (
    ConfigErrorReporter,
    PushProvider,
    SendResult,
    Target,
    parse_retry_after,
)

log = logging.getLogger(__name__)

QUOTA_BACKOFF_SECONDS = 60.0  # FCM asks for at least this without a Retry-After header
TOKEN_REFRESH_MARGIN = 300.0


class FcmProvider(PushProvider):
    name = "fcm"

    def __init__(self, app_id: str, credentials: FcmCredentials, transport: Transport) -> None:
        """Must run inside the event loop (the aiohttp session binds to it)."""
        super().__init__(
            app_id=app_id,
            timeout=transport.send_timeout,
            concurrency=transport.concurrency,
            interactive=transport.interactive_concurrency,
        )
        self._fcm = FCMNotification(
            service_account_file=credentials.credentials_file,
            project_id=credentials.project_id or None,
        )
        base = transport.fcm_endpoint.rstrip("/")
        self._fcm.FCM_END_POINT_BASE = f"{base}/projects"
        _ = (
            self._fcm.fcm_end_point
        )  # loads the service-account file now: fail at start, not per push
        project_id = credentials.project_id or self._fcm.credentials.project_id
        self._url = f"{base}/projects/{project_id}/messages:send"
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.connection_limit, ttl_dns_cache=300)
        )
        self._timeout = aiohttp.ClientTimeout(total=transport.send_timeout)
        self._authorization: str | None = None
        self._authorization_expires = 0.0
        self._refresh_lock = asyncio.Lock()
        self._config_errors = ConfigErrorReporter(self.name, log)

    async def _auth_header(self, *, stale: str | None = None) -> str:
        """A cached bearer header; `stale` is one the server just refused (refresh once, shared)."""
        if self._fresh(stale):
            return self._authorization  # type: ignore[return-value]
        async with self._refresh_lock:
            if not self._fresh(stale):
                # google-auth has no timeout of its own: never wait longer than one send.
                async with asyncio.timeout(self.timeout):
                    headers = await asyncio.to_thread(self._fcm.request_headers)
                expiry = getattr(self._fcm.credentials, "expiry", None)
                lifetime = expiry.timestamp() - time.time() if expiry is not None else 3600.0
                self._authorization = headers["Authorization"]
                self._authorization_expires = time.time() + max(lifetime - TOKEN_REFRESH_MARGIN, 60)
        return self._authorization  # type: ignore[return-value]

    def _fresh(self, stale: str | None) -> bool:
        return (
            self._authorization is not None
            and self._authorization != stale
            and time.time() < self._authorization_expires
        )

    def _render(self, target: Target, notification: Notification) -> bytes:
        if notification.silent:  # data only: no `notification`, normal priority
            return self._fcm.parse_payload(
                fcm_token=target.token,
                data_payload=notification.data_with_unread_total(),
                android_config={"priority": "normal"},
            )
        android: dict[str, Any] = {
            "priority": "high" if notification.priority == "high" else "normal"
        }
        if notification.collapse_id:
            # `tag` replaces a retried duplicate in the tray instead of showing it twice.
            android["notification"] = {"tag": notification.collapse_id}
        if notification.badge is not None:
            android.setdefault("notification", {})["notification_count"] = notification.badge
        return fit_body(
            lambda body: self._fcm.parse_payload(
                fcm_token=target.token,
                notification_title=notification.title,
                notification_body=body,
                data_payload=notification.data_with_unread_total(),
                android_config=android,
            ),
            notification.body,
        )

    async def send(self, target: Target, notification: Notification) -> SendResult:
        try:
            payload = self._render(target, notification)
            authorization = await self._auth_header()
            status, body, headers = await self._post(payload, authorization)
            if status == 401 and _is_expired_access_token(body):
                authorization = await self._auth_header(stale=authorization)
                status, body, headers = await self._post(payload, authorization)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return SendResult.unavailable(f"fcm transport: {type(exc).__name__}")
        except Exception as exc:  # credentials refresh failed (google-auth via pyfcm)
            return self._config_errors.report(f"cannot obtain an access token: {exc}")
        return classify_answer(status, body, headers, self._config_errors.report)

    async def _post(
        self, payload: bytes, authorization: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        async with self._session.post(
            self._url,
            data=payload,
            headers={"Authorization": authorization, "Content-Type": "application/json"},
            timeout=self._timeout,
        ) as response:
            raw = await response.read()
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = {}
            return response.status, body if isinstance(body, dict) else {}, dict(response.headers)

    async def close(self) -> None:
        await self._session.close()


def classify_answer(
    status: int,
    body: dict[str, Any],
    headers: dict[str, str],
    config_error: Callable[[str], SendResult],
) -> SendResult:
    """What an FCM v1 answer means (shared/PROVIDERS.md's table); pure, unit-tested."""
    if status == 200:
        return SendResult.delivered()
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    code = _fcm_error_code(error) or str(error.get("status") or status)
    message = str(error.get("message") or "")
    retry_after = parse_retry_after(headers.get("Retry-After"))
    if status == 404 or code == "UNREGISTERED":
        return SendResult.token_dead("UNREGISTERED")
    if code == "SENDER_ID_MISMATCH":
        return SendResult.token_dead("SENDER_ID_MISMATCH")
    if status == 400 and "registration token" in message.lower():
        return SendResult.token_dead(f"INVALID_ARGUMENT: {message}")
    if status == 429:
        return SendResult.retry(
            code, retry_after if retry_after is not None else QUOTA_BACKOFF_SECONDS
        )
    if status >= 500:
        return SendResult.unavailable(code, retry_after)
    return config_error(f"HTTP {status} {code}: {message}")


def _fcm_error_code(error: dict[str, Any]) -> str | None:
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("errorCode"):
            return str(detail["errorCode"])
    return None


def _is_expired_access_token(body: dict[str, Any]) -> bool:
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    if error.get("status") == "UNAUTHENTICATED":
        return not any(
            isinstance(d, dict) and d.get("errorCode") == "THIRD_PARTY_AUTH_ERROR"
            for d in error.get("details") or []
        )
    return False
