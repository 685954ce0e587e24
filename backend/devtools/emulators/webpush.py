"""Web Push emulator (RFC 8030 push service + RFC 8291 browser + RFC 8292 VAPID), HTTPS.

It plays both sides: :meth:`WebPushEmulator.subscribe` creates a browser subscription
(P-256 key pair + auth secret) and returns its ``PushSubscription`` JSON, and the HTTPS
server accepts pushes to that endpoint, checks VAPID like a push service, and decrypts
the ``aes128gcm`` body like the browser would, recording the plaintext JSON.

Routes on ``https://127.0.0.1:PORT`` (trust ``ca_file``):

* ``POST /push/<id>`` - the push endpoint. Checks, in order: unknown id → 404
  (unsubscribed → 410); ``Authorization: vapid t=<JWT>, k=<key>`` (ES256 signed by k,
  ``aud`` == ``https://127.0.0.1:PORT`` exactly, ``exp`` in the future and at most 24 h
  ahead, ``sub`` starting with ``mailto:`` or ``https:``) → 401, or 403 when
  ``expected_vapid_public_key`` is set and k differs; ``TTL`` header missing or not a
  non-negative integer → 400; bad ``Urgency`` / ``Topic`` → 400; body > 4096 bytes →
  413; ``Content-Encoding`` not ``aes128gcm`` or undecryptable body → 400. Then
  script / always / default 201 Created with a ``Location`` header. An empty body (a
  payload-less push) is accepted and recorded with payload ``{}``; a plaintext that is
  not a JSON object is recorded as ``{"_raw": <text>}``. The legacy draft-01
  ``WebPush <jwt>`` + ``Crypto-Key`` scheme is rejected (401).
* ``POST /_emulator/subscribe?n=N`` - N new subscriptions (list of PushSubscription
  dicts), also on the plain-HTTP control server at ``control_url``, with the other
  control endpoints of :mod:`.base`.

Keys for ``script``/``always`` are full endpoint URLs.
"""

from __future__ import annotations

import asyncio
import binascii
import itertools
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import http_ece
import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from backend.app.vapid import b64url, b64url_decode

from . import tls
from .base import Emulator, Reply, json_bytes

__all__ = ["WebPushEmulator", "reply"]

MAX_BODY = 4096
MAX_VAPID_LIFETIME = 24 * 3600
URGENCIES = frozenset({"very-low", "low", "normal", "high"})
_TOPIC_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_ERRNO = {400: 101, 401: 109, 403: 109, 404: 102, 410: 106, 413: 104, 429: 201, 503: 202}


def reply(status: int, retry_after: int | None = None, message: str | None = None) -> Reply:
    """A push-service reply in Mozilla autopush's error style (404/410/413/429/5xx...)."""
    if 200 <= status < 300:
        return Reply(status, None, {"Retry-After": str(retry_after)} if retry_after else {})
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = {
        "code": status,
        "errno": _ERRNO.get(status, 999),
        "error": phrase,
        "message": message or phrase,
    }
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return Reply(status, body, headers)


@dataclass
class _Subscription:
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    info: dict[str, Any]
    gone: bool = False


class WebPushEmulator(Emulator):
    """Push service + browser for Web Push, over HTTPS on 127.0.0.1."""

    name = "webpush"

    def __init__(
        self,
        *,
        expected_vapid_public_key: str | None = None,
        max_received: int | None = None,
        files_dir: str | None = None,
    ) -> None:
        super().__init__(max_received=max_received, files_dir=files_dir)
        #: base64url uncompressed public key that VAPID ``k`` must equal (None = any key).
        self.expected_vapid_public_key = expected_vapid_public_key
        self.ca_file = tls.tls_files().ca_file
        self.endpoint_prefix = ""
        self.audience = ""
        self._subs: dict[str, _Subscription] = {}
        self._subs_lock = threading.Lock()
        self._vapid_cache: dict[str, dict[str, Any] | str] = {}  # Authorization -> claims|err
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None

    # ----------------------------------------------------------------- lifecycle
    async def _start_servers(self) -> None:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_post("/push/{id}", self._push)
        app.add_routes(self.control_routes())
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        # A restarted emulator listens on its old port again, so the subscriptions it handed
        # out stay valid (an outage and its end, for circuit-breaker tests).
        site = web.TCPSite(
            self._runner, "127.0.0.1", self.port, ssl_context=tls.server_context(("http/1.1",))
        )
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.audience = f"https://127.0.0.1:{self.port}"
        self.endpoint_prefix = self.audience + "/"

    async def _stop_servers(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def control_routes(self) -> list[web.RouteDef]:
        return [*super().control_routes(), web.post("/_emulator/subscribe", self._ctl_subscribe)]

    async def _ctl_subscribe(self, request: web.Request) -> web.Response:
        n = int(request.query.get("n", "1"))
        return web.json_response([self.subscribe() for _ in range(n)])

    # ----------------------------------------------------------------- browser side
    def subscribe(self) -> dict[str, Any]:
        """Create a browser subscription; returns its PushSubscription JSON as a dict."""
        if not self.endpoint_prefix:
            raise RuntimeError("start the emulator before subscribing")
        private_key = ec.generate_private_key(ec.SECP256R1())
        public = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        auth = os.urandom(16)
        sub_id = secrets.token_urlsafe(24)
        endpoint = f"{self.endpoint_prefix}push/{sub_id}"
        info = {"endpoint": endpoint, "keys": {"p256dh": b64url(public), "auth": b64url(auth)}}
        with self._subs_lock:
            self._subs[sub_id] = _Subscription(endpoint, private_key, auth, info)
        return {"endpoint": endpoint, "keys": dict(info["keys"])}

    def unsubscribe(self, endpoint: str) -> None:
        """Simulate the user revoking the subscription: later pushes get 410 Gone."""
        sub = self._subs.get(endpoint.rsplit("/", 1)[-1])
        if sub is None:
            raise KeyError(endpoint)
        sub.gone = True

    # ----------------------------------------------------------------- push service
    async def _push(self, request: web.Request) -> web.Response:
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        sub_id = request.match_info["id"]
        key = f"{self.endpoint_prefix}push/{sub_id}"
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = await request.read()
        payload: dict[str, Any] = {}
        sub = self._subs.get(sub_id)
        result: Reply | None
        if sub is None:
            result = reply(404, message="No such subscription")
        elif sub.gone:
            result = reply(410, message="Subscription has been unsubscribed")
        else:
            result = self._check(headers, body)
            if result is None:
                decrypted = _decrypt(sub, body)
                if isinstance(decrypted, Reply):
                    result = decrypted
                else:
                    payload = decrypted
        if result is None:
            result = self._pick(key)
        if result is None:
            location = f"{self.audience}/m/{next(self._ids)}"
            result = Reply(201, None, {"Location": location, "TTL": headers["ttl"]})
        self._record(key, headers, payload, result.status)
        data = json_bytes(result.body)
        return web.Response(
            status=result.status,
            body=data,
            headers=result.headers,
            content_type="application/json" if data else None,
        )

    def _check(self, headers: dict[str, str], body: bytes) -> Reply | None:
        """Push-service checks before decryption; None when acceptable."""
        problem = self._check_vapid(headers.get("authorization", ""))
        if problem is not None:
            return problem
        ttl = headers.get("ttl")
        if ttl is None or not ttl.isdigit():
            return reply(400, message="Missing or invalid TTL header")
        urgency = headers.get("urgency")
        if urgency is not None and urgency not in URGENCIES:
            return reply(400, message=f"Invalid Urgency header {urgency!r}")
        topic = headers.get("topic")
        if topic is not None and not _TOPIC_RE.match(topic):
            return reply(400, message="Topic must be at most 32 base64url characters")
        if len(body) > MAX_BODY:
            return reply(413, message=f"Body must be at most {MAX_BODY} bytes")
        if body and headers.get("content-encoding", "").lower() != "aes128gcm":
            return reply(400, message="Content-Encoding must be aes128gcm")
        return None

    def _check_vapid(self, authorization: str) -> Reply | None:
        cached = self._vapid_cache.get(authorization)
        if cached is None:
            cached = self._verify_vapid(authorization)
            if len(self._vapid_cache) > 10_000:
                self._vapid_cache.clear()
            self._vapid_cache[authorization] = cached
        if isinstance(cached, str):
            return reply(401, message=cached)
        now = time.time()
        if cached["exp"] <= now:
            return reply(401, message="VAPID token expired")
        if cached["exp"] > now + MAX_VAPID_LIFETIME:
            return reply(401, message="VAPID exp is more than 24 hours in the future")
        expected = self.expected_vapid_public_key
        if expected is not None and cached["_k"] != expected.rstrip("="):
            return reply(403, message="VAPID public key does not match the subscription")
        return None

    def _verify_vapid(self, authorization: str) -> dict[str, Any] | str:
        """Claims (plus ``_k``) of a well-signed token, or the failure message."""
        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() != "vapid":
            return "Authorization must use the RFC 8292 'vapid' scheme"
        params: dict[str, str] = {}
        for part in rest.split(","):
            name, _, value = part.strip().partition("=")
            params[name.strip().lower()] = value.strip()
        token, k = params.get("t"), params.get("k")
        if not token or not k:
            return "vapid authorization needs t= and k="
        try:
            public_key = ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), b64url_decode(k)
            )
            claims = jwt.decode(
                token,
                public_key,
                algorithms=["ES256"],
                options={
                    "require": ["exp", "aud", "sub"],
                    "verify_exp": False,
                    "verify_aud": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except (jwt.PyJWTError, ValueError, binascii.Error) as exc:
            return f"Invalid VAPID token: {exc}"
        if claims.get("aud") != self.audience:
            return f"VAPID aud must be {self.audience!r}, got {claims.get('aud')!r}"
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
            return "VAPID sub must be a mailto: or https: URL"
        if not isinstance(claims.get("exp"), int | float):
            return "VAPID exp must be a number"
        claims["_k"] = k.rstrip("=")
        return claims


def _decrypt(sub: _Subscription, body: bytes) -> dict[str, Any] | Reply:
    """Decrypt like the browser does; the push service would not, but tests want it."""
    if not body:
        return {}
    try:
        plaintext = http_ece.decrypt(
            body, private_key=sub.private_key, auth_secret=sub.auth, version="aes128gcm"
        )
    except Exception as exc:
        return reply(400, message=f"Could not decrypt aes128gcm body: {exc!r}")
    text = plaintext.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return {"_raw": text}
    return parsed if isinstance(parsed, dict) else {"_raw": text}
