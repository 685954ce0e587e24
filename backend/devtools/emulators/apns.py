"""APNs provider API emulator: HTTP/2 over TLS (ALPN ``h2``) with token (JWT) auth.

Implemented directly on the ``h2`` state machine so flow control behaves like Apple's
servers: request bodies are acknowledged promptly (WINDOW_UPDATE), and response DATA is
never sent beyond the client's receive window; it is queued until the client grants
credit. That makes client bugs reproducible, notably aioapns 4.0 never acknowledging
response bodies: after ~64 KiB of error bodies on one connection no further error reply
can be delivered (``flow_control_blocked`` counts responses that had to be held back).
A queued body is only sent once it fits *whole*, so each JSON error body arrives in a
single DATA frame (aioapns parses every DATA frame on its own).

Point aioapns at it by subclassing the pool's protocol class::

    apns.pool.protocol_class = type(
        "P", (apns.pool.protocol_class,), {"APNS_SERVER": "127.0.0.1", "APNS_PORT": emu.port}
    )

and pass ``ssl_context=ssl.create_default_context(cafile=emu.ca_file)``.

Request checks, in order (all answered with ``{"reason": ...}`` and the request's
``apns-id`` echoed, or a generated one when absent):

1. method POST (405 MethodNotAllowed), path ``/3/device/<token>`` (404 BadPath);
2. ``authorization: bearer <JWT>``: missing → 403 MissingProviderToken; bad signature,
   alg, ``kid`` != key_id, ``iss`` != team_id or iat > 1 min in the future → 403
   InvalidProviderToken; iat older than 1 hour → 403 ExpiredProviderToken (what Apple
   answers);
3. ``apns-topic``: missing → 400 MissingTopic; not the topic (optionally with a push-type
   suffix such as ``.voip``) → 400 BadTopic;
4. ``apns-push-type`` missing or unknown → 400 InvalidPushType;
5. malformed ``apns-id`` / ``apns-priority`` / ``apns-expiration`` / ``apns-collapse-id``
   → 400 BadMessageId / BadPriority / BadExpirationDate / BadCollapseId;
6. device token not hex of 64+ chars → 400 BadDeviceToken;
7. body > 4096 bytes (5120 for voip) → 413 PayloadTooLarge; empty → 400 PayloadEmpty;
   not a JSON object → 400 BadPayload (emulator-specific reason);
8. then script / always / default 200 with an empty body.

Keys for ``script``/``always`` are device tokens (as they appear in the path);
``Received.headers`` includes the HTTP/2 pseudo-headers (``:path``, ``:method``...).
Control endpoints are on a separate plain-HTTP port: ``control_url`` (see :mod:`.base`).

The server advertises MAX_CONCURRENT_STREAMS 1000 and, by default, the RFC 9113 64 KiB
receive window for request bodies (credit returned as bodies arrive). aioapns alone writes
bodies without waiting for send credit, so a burst of > 64 KiB of bodies fails inside it
(FlowControlError, 1 s sleep, retry); the service's transport (`apns_transport`) makes such
a body wait for the credit. ``ApnsEmulator(connection_window=1 << 20)`` grants a bigger
connection window.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes, Settings

from . import tls
from .base import Emulator, Reply, json_bytes

__all__ = ["PUSH_TYPES", "ApnsEmulator", "reply"]

PUSH_TYPES = frozenset(
    {
        "alert",
        "background",
        "location",
        "voip",
        "complication",
        "fileprovider",
        "mdm",
        "liveactivity",
        "pushtotalk",
        "widgets",
        "controls",
    }
)
TOPIC_SUFFIXES = (
    ".voip",
    ".complication",
    ".pushkit.fileprovider",
    ".push-type.liveactivity",
    ".location-query",
    ".voip-ptt",
)
_TOKEN_RE = re.compile(r"^[0-9a-fA-F]{64,200}$")
_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
JWT_MAX_AGE = 3600
JWT_FUTURE_SKEW = 60
MAX_PAYLOAD = 4096
MAX_VOIP_PAYLOAD = 5120
MAX_CONCURRENT_STREAMS = 1000
DEFAULT_WINDOW = 65_535  # RFC 9113 initial window, also for the connection


def reply(status: int, reason: str | None = None, timestamp_ms: int | None = None) -> Reply:
    """An APNs reply; 410 gets a ``timestamp`` (ms, default now) like Apple's.

    Examples: ``reply(410, "Unregistered")``, ``reply(400, "BadDeviceToken")``,
    ``reply(400, "DeviceTokenNotForTopic")``, ``reply(429, "TooManyRequests")``,
    ``reply(503, "ServiceUnavailable")``, ``reply(500, "InternalServerError")``,
    ``reply(403, "InvalidProviderToken")``.
    """
    if reason is None:
        return Reply(status)
    body: dict[str, Any] = {"reason": reason}
    if status == 410 or timestamp_ms is not None:
        body["timestamp"] = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    return Reply(status, body)


class _Stream:
    __slots__ = ("body", "headers", "size")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.headers = headers
        self.body = bytearray()
        self.size = 0


class _H2ServerProtocol(asyncio.Protocol):
    """One client connection: h2 state machine + flow-controlled response queue."""

    def __init__(self, emu: ApnsEmulator) -> None:
        self.emu = emu
        self.conn = H2Connection(H2Configuration(client_side=False, header_encoding=None))
        self.conn.local_settings = Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS,
                SettingCodes.MAX_HEADER_LIST_SIZE: 8192,
            },
        )
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, _Stream] = {}
        # stream id -> response body waiting for flow-control credit (insertion ordered)
        self.pending: dict[int, bytes] = {}
        self.receiving = False

    # ----------------------------------------------------------------- asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.emu._connections.add(self)
        self.conn.initiate_connection()
        extra = self.emu.connection_window - DEFAULT_WINDOW
        if extra > 0:
            self.conn.increment_flow_control_window(extra)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.emu._connections.discard(self)
        self.transport = None
        self.pending.clear()
        self.streams.clear()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except ProtocolError:
            self.flush()
            if self.transport is not None:
                self.transport.close()
            return
        # Responses produced while handling this batch are written by one flush at the end.
        self.receiving = True
        try:
            self._dispatch(events)
        finally:
            self.receiving = False
        self.flush()

    def _dispatch(self, events: list[Any]) -> None:
        for event in events:
            if isinstance(event, DataReceived):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.size += len(event.data)
                    if stream.size <= MAX_VOIP_PAYLOAD + 1:
                        stream.body += event.data
                # Give the credit straight back so request bodies never stall.
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, RequestReceived):
                self.streams[event.stream_id] = _Stream(event.headers)  # type: ignore[arg-type]
            elif isinstance(event, StreamEnded):
                stream = self.streams.pop(event.stream_id, None)
                if stream is not None:
                    self.emu._handle(self, event.stream_id, stream)
            elif isinstance(event, (WindowUpdated, RemoteSettingsChanged)):
                if self.pending:
                    self.drain(flush=False)
            elif isinstance(event, StreamReset):
                self.streams.pop(event.stream_id, None)
                self.pending.pop(event.stream_id, None)
            elif isinstance(event, ConnectionTerminated):
                self.flush()
                if self.transport is not None:
                    self.transport.close()
                return

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)

    # ----------------------------------------------------------------- responses
    def respond(self, stream_id: int, status: int, apns_id: bytes, body: bytes) -> None:
        """Send one response (headers now; body now or when the window allows)."""
        if self.transport is None:
            return
        headers = [(b":status", str(status).encode()), (b"apns-id", apns_id)]
        try:
            if not body:
                self.conn.send_headers(stream_id, headers, end_stream=True)
            else:
                headers.append((b"content-type", b"application/json; charset=utf-8"))
                headers.append((b"content-length", str(len(body)).encode()))
                self.conn.send_headers(stream_id, headers)
                if self.pending or not self._send_body(stream_id, body):
                    self.pending[stream_id] = body
                    self.drain(flush=False)
                    if stream_id in self.pending:
                        self.emu.flow_control_blocked += 1
        except ProtocolError:  # stream reset / closed by the client meanwhile: drop it
            return
        if not self.receiving:
            self.flush()

    def _send_body(self, stream_id: int, body: bytes) -> bool:
        """Send the whole body if the window allows; False (nothing sent) otherwise."""
        if self.conn.local_flow_control_window(stream_id) < len(body):
            return False
        step = self.conn.max_outbound_frame_size
        for start in range(0, len(body), step):
            end = start + step
            self.conn.send_data(stream_id, body[start:end], end_stream=end >= len(body))
        return True

    def drain(self, flush: bool = True) -> None:
        """Send queued bodies that now fit (called on WINDOW_UPDATE / SETTINGS)."""
        for stream_id in list(self.pending):
            body = self.pending[stream_id]
            try:
                sent = self._send_body(stream_id, body)
            except ProtocolError:  # stream gone (reset by the client)
                sent = True
            if sent:
                del self.pending[stream_id]
            elif self.conn.outbound_flow_control_window < len(body):
                break  # connection window exhausted: keep FIFO order
        if flush:
            self.flush()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class ApnsEmulator(Emulator):
    """APNs HTTP/2 provider API with token-based auth."""

    name = "apns"

    def __init__(
        self,
        *,
        topic: str = "com.example.messenger",
        key_id: str = "EMUKEY1234",
        team_id: str = "EMUTEAM123",
        connection_window: int = DEFAULT_WINDOW,
        max_received: int | None = None,
        files_dir: str | None = None,
    ) -> None:
        super().__init__(max_received=max_received, files_dir=files_dir)
        #: Receive window the server grants per connection for request bodies. The RFC
        #: default (64 KiB) is strict: aioapns writes bodies without waiting for credit,
        #: so a burst beyond it fails client-side (FlowControlError, 1 s retry). Raise it
        #: for benchmarks that should not measure that.
        self.connection_window = connection_window
        self.topic = topic
        self.key_id = key_id
        self.team_id = team_id
        self.host = "127.0.0.1"
        self.host_port = ""
        self.ca_file = tls.tls_files().ca_file
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._public_key = self._key.public_key()
        self.key_pem: str = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.key_path = f"{self._tmpdir}/AuthKey_{key_id}.p8"
        with open(self.key_path, "w") as f:
            f.write(self.key_pem)
        #: Responses whose body had to wait for the client's flow-control window.
        self.flow_control_blocked = 0
        self._topics = frozenset([topic, *(topic + s for s in TOPIC_SUFFIXES)])
        self._jwt_cache: dict[bytes, int | str] = {}  # header value -> iat | error reason
        self._connections: set[_H2ServerProtocol] = set()
        self._server: asyncio.Server | None = None

    def add_topic(self, topic: str) -> None:
        """Accept another app's bundle id (push apps: one APNs key, several topics)."""
        self._topics = self._topics | {topic, *(topic + s for s in TOPIC_SUFFIXES)}

    # ----------------------------------------------------------------- lifecycle
    async def _start_servers(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _H2ServerProtocol(self),
            "127.0.0.1",
            0,
            ssl=tls.server_context(alpn=("h2",)),
            backlog=1024,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.host_port = f"{self.host}:{self.port}"

    async def _stop_servers(self) -> None:
        if self._server is not None:
            self._server.close()
            for proto in list(self._connections):
                proto.close()
            await asyncio.sleep(0)
            self._server = None

    def reset(self) -> None:
        super().reset()
        self.flow_control_blocked = 0

    @property
    def pending_bodies(self) -> int:
        """Response bodies currently held back by flow control, over all connections."""
        return sum(len(c.pending) for c in list(self._connections))

    # ----------------------------------------------------------------- requests
    def _handle(self, proto: _H2ServerProtocol, stream_id: int, stream: _Stream) -> None:
        headers = {k.decode(): v.decode() for k, v in stream.headers}
        apns_id = headers.get("apns-id") or str(uuid.uuid4())
        path = headers.get(":path", "")
        key = path[len("/3/device/") :] if path.startswith("/3/device/") else ""
        payload: dict[str, Any] = {}
        if stream.body:
            try:
                parsed = json.loads(stream.body)
                if isinstance(parsed, dict):
                    payload = parsed
            except ValueError:
                pass
        result = self._check(headers, key, stream)
        if result is None:
            result = self._pick(key) or Reply(200)
        body = json_bytes(result.body)
        if self.latency > 0:
            asyncio.get_running_loop().call_later(
                self.latency,
                self._answer,
                proto,
                stream_id,
                result.status,
                apns_id,
                body,
                key,
                headers,
                payload,
            )
        else:
            self._answer(proto, stream_id, result.status, apns_id, body, key, headers, payload)

    def _answer(
        self,
        proto: _H2ServerProtocol,
        stream_id: int,
        status: int,
        apns_id: str,
        body: bytes,
        key: str,
        headers: dict[str, str],
        payload: dict[str, Any],
    ) -> None:
        self._record(key, headers, payload, status)
        proto.respond(stream_id, status, apns_id.encode(), body)

    def _check(self, headers: dict[str, str], token: str, stream: _Stream) -> Reply | None:
        """Request validation in APNs order; None when the push is acceptable."""
        if headers.get(":method") != "POST":
            return reply(405, "MethodNotAllowed")
        if not headers.get(":path", "").startswith("/3/device/"):
            return reply(404, "BadPath")
        reason = self._check_jwt(headers.get("authorization"))
        if reason is not None:
            return reply(403, reason)
        topic = headers.get("apns-topic")
        if not topic:
            return reply(400, "MissingTopic")
        if topic not in self._topics:
            return reply(400, "BadTopic")
        push_type = headers.get("apns-push-type")
        if push_type not in PUSH_TYPES:
            return reply(400, "InvalidPushType")
        apns_id = headers.get("apns-id")
        if apns_id is not None and not _UUID_RE.match(apns_id):
            return reply(400, "BadMessageId")
        priority = headers.get("apns-priority")
        if priority is not None and priority not in ("1", "5", "10"):
            return reply(400, "BadPriority")
        expiration = headers.get("apns-expiration")
        if expiration is not None and not expiration.isdigit():
            return reply(400, "BadExpirationDate")
        collapse_id = headers.get("apns-collapse-id")
        if collapse_id is not None and len(collapse_id.encode()) > 64:
            return reply(400, "BadCollapseId")
        if not token:
            return reply(400, "MissingDeviceToken")
        if not _TOKEN_RE.match(token):
            return reply(400, "BadDeviceToken")
        limit = MAX_VOIP_PAYLOAD if push_type == "voip" else MAX_PAYLOAD
        if stream.size > limit:
            return reply(413, "PayloadTooLarge")
        if stream.size == 0:
            return reply(400, "PayloadEmpty")
        try:
            if not isinstance(json.loads(stream.body), dict):
                return reply(400, "BadPayload")
        except ValueError:
            return reply(400, "BadPayload")
        return None

    def _check_jwt(self, authorization: str | None) -> str | None:
        """Failure reason for the provider token, or None; signatures verified once."""
        if not authorization:
            return "MissingProviderToken"
        cache_key = authorization.encode()
        cached = self._jwt_cache.get(cache_key)
        if cached is None:
            cached = self._verify_jwt(authorization)
            if len(self._jwt_cache) > 10_000:
                self._jwt_cache.clear()
            self._jwt_cache[cache_key] = cached
        if isinstance(cached, str):
            return cached
        now = time.time()
        if cached > now + JWT_FUTURE_SKEW:
            return "InvalidProviderToken"
        if cached < now - JWT_MAX_AGE:
            return "ExpiredProviderToken"
        return None

    def _verify_jwt(self, authorization: str) -> int | str:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "MissingProviderToken"
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != "ES256" or header.get("kid") != self.key_id:
                return "InvalidProviderToken"
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["ES256"],
                options={
                    "require": ["iss", "iat"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_aud": False,
                },
            )
        except jwt.PyJWTError:
            return "InvalidProviderToken"
        if claims.get("iss") != self.team_id or not isinstance(claims.get("iat"), int):
            return "InvalidProviderToken"
        return claims["iat"]
