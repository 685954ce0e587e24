"""Self-tests: the real pyfcm / google-auth / aioapns / pywebpush talk to the emulators."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import google.auth.exceptions
import google.auth.transport.requests
import jwt
import pytest
from aioapns import APNs, NotificationRequest, PushType
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from google.oauth2 import service_account
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import DataReceived, ResponseReceived, StreamEnded
from py_vapid import Vapid
from pyfcm import FCMNotification
from pyfcm.errors import FCMNotRegisteredError, InvalidDataError
from pywebpush import WebPushException, webpush_async

from backend.app.vapid import b64url, b64url_decode
from backend.devtools.emulators import (
    ApnsEmulator,
    FcmEmulator,
    Reply,
    WebPushEmulator,
    apns,
    fcm,
    webpush,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEVICE = "ab" * 32


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def fcm_server() -> Iterator[FcmEmulator]:
    with FcmEmulator() as emu:
        yield emu


@pytest.fixture
def fcm_emu(fcm_server: FcmEmulator) -> FcmEmulator:
    fcm_server.reset()
    return fcm_server


@pytest.fixture(scope="module")
def apns_server() -> Iterator[ApnsEmulator]:
    with ApnsEmulator() as emu:
        yield emu


@pytest.fixture
def apns_emu(apns_server: ApnsEmulator) -> ApnsEmulator:
    apns_server.reset()
    return apns_server


@pytest.fixture(scope="module")
def webpush_server() -> Iterator[WebPushEmulator]:
    with WebPushEmulator() as emu:
        yield emu


@pytest.fixture
def webpush_emu(webpush_server: WebPushEmulator) -> Iterator[WebPushEmulator]:
    webpush_server.reset()
    yield webpush_server
    webpush_server.expected_vapid_public_key = None


def _pyfcm(emu: FcmEmulator) -> FCMNotification:
    client = FCMNotification(service_account_file=emu.credentials_file, project_id=emu.project_id)
    client.FCM_END_POINT_BASE = emu.endpoint + "/projects"
    return client


def _aioapns(emu: ApnsEmulator, *, key: str | None = None, topic: str | None = None) -> APNs:
    client = APNs(
        key=key or emu.key_pem,
        key_id=emu.key_id,
        team_id=emu.team_id,
        topic=topic or emu.topic,
        use_sandbox=False,
        ssl_context=ssl.create_default_context(cafile=emu.ca_file),
    )
    client.pool.protocol_class = type(
        "EmulatorProtocol",
        (client.pool.protocol_class,),
        {"APNS_SERVER": "127.0.0.1", "APNS_PORT": emu.port},
    )
    return client


async def _close(*clients: APNs) -> None:
    """Close aioapns pools and wait for the TLS connections to go (no ResourceWarnings)."""
    for client in clients:
        client.pool.close()
    for _ in range(500):
        if not any(c.pool.connections for c in clients):
            break
        await asyncio.sleep(0.01)


def _alert(token: str = DEVICE, **kwargs: Any) -> NotificationRequest:
    kwargs.setdefault("push_type", PushType.ALERT)
    return NotificationRequest(
        device_token=token, message={"aps": {"alert": {"title": "Hi", "body": "there"}}}, **kwargs
    )


def _vapid() -> tuple[Vapid, str]:
    """A py_vapid key made from raw bytes (as the backend config would) + its public key."""
    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    vapid = Vapid.from_raw(b64url(raw).encode())
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return vapid, b64url(public)


@pytest.fixture
async def wp_session(webpush_server: WebPushEmulator) -> AsyncIterator[aiohttp.ClientSession]:
    ctx = ssl.create_default_context(cafile=webpush_server.ca_file)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session:
        yield session


# --------------------------------------------------------------------------- FCM
def test_fcm_pyfcm_notify_is_recorded(fcm_emu: FcmEmulator) -> None:
    client = _pyfcm(fcm_emu)
    result = client.notify(
        fcm_token="device-token-1",
        notification_title="Hello",
        notification_body="World",
        data_payload={"conversation_id": "c1", "seq": "7"},
    )
    assert result["name"].startswith(f"projects/{fcm_emu.project_id}/messages/")
    (received,) = fcm_emu.wait_for(1)
    assert received.key == "device-token-1"
    assert received.status == 200
    assert received.payload == {
        "token": "device-token-1",
        "notification": {"title": "Hello", "body": "World"},
        "data": {"conversation_id": "c1", "seq": "7"},
    }
    assert received.headers["authorization"].startswith("Bearer ya29.emu-")
    assert fcm_emu.token_requests == 1
    assert fcm_emu.count() == 1


def test_fcm_pyfcm_scripted_unregistered(fcm_emu: FcmEmulator) -> None:
    client = _pyfcm(fcm_emu)
    fcm_emu.script("gone-token", fcm.unregistered())
    with pytest.raises(FCMNotRegisteredError):
        client.notify(fcm_token="gone-token", notification_title="x")
    # The script is used up: the same token succeeds again.
    assert "name" in client.notify(fcm_token="gone-token", notification_title="x")
    assert [r.status for r in fcm_emu.received] == [404, 200]


def test_fcm_expired_access_token_is_refreshed_by_pyfcm(fcm_emu: FcmEmulator) -> None:
    client = _pyfcm(fcm_emu)
    client.notify(fcm_token="t", notification_title="one")
    fcm_emu.expire_access_tokens()
    client.notify(fcm_token="t", notification_title="two")
    assert [r.status for r in fcm_emu.received] == [200, 401, 200]
    assert fcm_emu.token_requests == 2


def test_fcm_token_endpoint_rejects_foreign_key(fcm_emu: FcmEmulator) -> None:
    info = fcm_emu.service_account_info
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info["private_key"] = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    creds = service_account.Credentials.from_service_account_info(info, scopes=[fcm.FCM_SCOPE])
    with pytest.raises(google.auth.exceptions.RefreshError, match="invalid_grant"):
        creds.refresh(google.auth.transport.requests.Request())
    wrong_scope = service_account.Credentials.from_service_account_info(
        fcm_emu.service_account_info, scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    with pytest.raises(google.auth.exceptions.RefreshError, match="invalid_grant"):
        wrong_scope.refresh(google.auth.transport.requests.Request())


async def test_fcm_aiohttp_errors(fcm_emu: FcmEmulator) -> None:
    client = _pyfcm(fcm_emu)
    headers = await asyncio.to_thread(client.request_headers)
    url = f"{fcm_emu.endpoint}/projects/{fcm_emu.project_id}/messages:send"
    fcm_emu.script("tok", fcm.quota_exceeded(retry_after=7), fcm.invalid_token())
    fcm_emu.always("dead", fcm.sender_id_mismatch())

    async def post(payload: bytes, *, hdrs: dict[str, str] = headers, u: str = url) -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.post(u, data=payload, headers=hdrs) as resp,
        ):
            return resp.status, resp.headers.get("Retry-After"), await resp.json()

    ok = client.parse_payload(fcm_token="tok", notification_title="t", data_payload={"k": "v"})
    status, retry_after, body = await post(ok)
    assert (status, retry_after) == (429, "7")
    assert body["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert body["error"]["details"][0]["errorCode"] == "QUOTA_EXCEEDED"

    status, _, body = await post(ok)
    assert status == 400
    assert "not a valid FCM registration token" in body["error"]["message"]

    status, _, body = await post(ok)
    assert status == 200 and body["name"].startswith("projects/emulator-project/messages/")

    for _ in range(2):
        status, _, body = await post(client.parse_payload(fcm_token="dead"))
        assert status == 403
        assert body["error"]["details"][0]["errorCode"] == "SENDER_ID_MISMATCH"

    # Request validation, before any script is consulted.
    bad_data = json.dumps({"message": {"token": "tok", "data": {"n": 1}}}).encode()
    status, _, body = await post(bad_data)
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
    assert "message.data" in body["error"]["details"][1]["fieldViolations"][0]["field"]

    status, _, body = await post(json.dumps({"message": {"topic": "news"}}).encode())
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"

    status, _, body = await post(ok, hdrs={"Authorization": "Bearer nope"})
    assert status == 401 and body["error"]["status"] == "UNAUTHENTICATED"

    status, _, body = await post(ok, u=url.replace(fcm_emu.project_id, "other-project"))
    assert status == 403 and body["error"]["status"] == "PERMISSION_DENIED"

    fcm_emu.expire_access_tokens()
    status, _, body = await post(ok)
    assert status == 401
    assert body["error"]["details"][0]["reason"] == "ACCESS_TOKEN_EXPIRED"
    assert fcm_emu.count() == 10


def test_fcm_payload_error_surfaces_in_pyfcm(fcm_emu: FcmEmulator) -> None:
    client = _pyfcm(fcm_emu)
    fcm_emu.script("tok", fcm.invalid_argument_payload())
    with pytest.raises(InvalidDataError):
        client.notify(fcm_token="tok", notification_title="x")


# --------------------------------------------------------------------------- APNs
async def test_apns_aioapns_success_and_scripted_410(apns_emu: ApnsEmulator) -> None:
    client = _aioapns(apns_emu)
    try:
        result = await client.send_notification(_alert(priority=10))
        assert result.status == "200"
        apns_emu.script(DEVICE, apns.reply(410, "Unregistered", timestamp_ms=1_700_000_000_000))
        result = await client.send_notification(_alert(priority=10))
        assert (result.status, result.description) == ("410", "Unregistered")
        assert result.timestamp == 1_700_000_000_000
        # 5 x 10 x 3 KB request bodies > 64 KiB: only works if the server returns credit.
        # (Batches stay under 64 KiB: aioapns does not wait for send window, see below.)
        for _ in range(5):
            results = await asyncio.wait_for(
                asyncio.gather(*(client.send_notification(_bulky()) for _ in range(10))), 0.9
            )
            assert {r.status for r in results} == {"200"}
    finally:
        await _close(client)
    received = apns_emu.wait_for(52)
    assert apns_emu.count() == 52
    first = received[0]
    assert first.key == DEVICE
    assert first.payload == {"aps": {"alert": {"title": "Hi", "body": "there"}}}
    assert first.headers["apns-topic"] == apns_emu.topic
    assert first.headers["apns-push-type"] == "alert"
    assert first.headers["apns-priority"] == "10"
    assert [r.status for r in received[:2]] == [200, 410]


def _bulky() -> NotificationRequest:
    return NotificationRequest(
        device_token=DEVICE, message={"aps": {}, "pad": "p" * 3000}, push_type=PushType.ALERT
    )


async def test_apns_connection_window_option() -> None:
    """aioapns bursts > 64 KiB of bodies; a larger server window avoids its 1 s retries."""
    with ApnsEmulator(connection_window=1 << 20) as emu:
        client = _aioapns(emu)
        try:
            await client.send_notification(_alert())  # connect first
            results = await asyncio.wait_for(
                asyncio.gather(*(client.send_notification(_bulky()) for _ in range(50))), 0.9
            )
            assert {r.status for r in results} == {"200"}
        finally:
            await _close(client)
        assert emu.count() == 51


async def test_apns_rejections(apns_emu: ApnsEmulator) -> None:
    client = _aioapns(apns_emu)
    foreign_key = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    impostor = _aioapns(apns_emu, key=foreign_key)
    try:
        cases = [
            (impostor, _alert(), "403", "InvalidProviderToken"),
            (client, _alert(apns_topic="com.example.other"), "400", "BadTopic"),
            (client, _alert(push_type=None), "400", "InvalidPushType"),
            (client, _alert("not-hex"), "400", "BadDeviceToken"),
        ]
        for apns_client, request, status, reason in cases:
            result = await apns_client.send_notification(request)
            assert (result.status, result.description) == (status, reason)
        big = NotificationRequest(
            device_token=DEVICE, message={"aps": {}, "x": "y" * 5000}, push_type=PushType.ALERT
        )
        result = await client.send_notification(big)
        assert (result.status, result.description) == ("413", "PayloadTooLarge")
        apns_emu.always(DEVICE, apns.reply(503, "ServiceUnavailable"))
        result = await client.send_notification(_alert())
        assert (result.status, result.description) == ("503", "ServiceUnavailable")
    finally:
        await _close(client, impostor)
    assert [r.status for r in apns_emu.wait_for(6)] == [403, 400, 400, 400, 413, 503]


async def test_apns_respects_client_flow_control_window(apns_emu: ApnsEmulator) -> None:
    """A client that never returns receive-window credit gets at most 64 KiB of DATA."""
    padding = "x" * 8000  # ~8 KB bodies: the 65,535-byte window holds 8 of them
    apns_emu.always(DEVICE, Reply(410, {"reason": "Unregistered", "padding": padding}))
    ctx = ssl.create_default_context(cafile=apns_emu.ca_file)
    ctx.set_alpn_protocols(["h2"])
    reader, writer = await asyncio.open_connection("127.0.0.1", apns_emu.port, ssl=ctx)
    assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
    conn = H2Connection(H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    token = jwt.encode(
        {"iss": apns_emu.team_id, "iat": int(time.time())},
        apns_emu.key_pem,
        algorithm="ES256",
        headers={"kid": apns_emu.key_id},
    )
    total = 20
    for i in range(total):
        stream_id = conn.get_next_available_stream_id()
        conn.send_headers(
            stream_id,
            [
                (":method", "POST"),
                (":scheme", "https"),
                (":path", f"/3/device/{DEVICE}"),
                (":authority", "127.0.0.1"),
                ("authorization", f"bearer {token}"),
                ("apns-topic", apns_emu.topic),
                ("apns-push-type", "alert"),
                ("apns-id", f"00000000-0000-0000-0000-{i:012d}"),
            ],
        )
        conn.send_data(stream_id, b'{"aps":{"alert":"x"}}', end_stream=True)
    writer.write(conn.data_to_send())

    bodies: dict[int, bytearray] = {}
    frames: dict[int, int] = {}
    ended: set[int] = set()
    data_bytes = 0

    async def pump(until: int, idle: float) -> None:
        nonlocal data_bytes
        while len(ended) < until:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), idle)
            except TimeoutError:
                return
            assert chunk, "server closed the connection"
            for event in conn.receive_data(chunk):
                if isinstance(event, ResponseReceived):
                    bodies[event.stream_id] = bytearray()
                elif isinstance(event, DataReceived):
                    bodies[event.stream_id] += event.data
                    frames[event.stream_id] = frames.get(event.stream_id, 0) + 1
                    data_bytes += event.flow_controlled_length
                elif isinstance(event, StreamEnded):
                    ended.add(event.stream_id)
            writer.write(conn.data_to_send())  # SETTINGS/PING acks only, never WINDOW_UPDATE

    try:
        await pump(total, idle=0.5)
        assert data_bytes <= 65_535
        assert len(ended) < total, "server ignored the client's flow-control window"
        assert apns_emu.flow_control_blocked > 0
        assert apns_emu.pending_bodies > 0
        assert len(bodies) == total  # headers are not flow-controlled: all arrived

        # Grant credit: the held-back responses now arrive, each body in one DATA frame.
        conn.increment_flow_control_window(1 << 20)
        for stream_id in bodies:
            if stream_id not in ended:
                conn.increment_flow_control_window(1 << 16, stream_id=stream_id)
        writer.write(conn.data_to_send())
        await pump(total, idle=5)
        assert len(ended) == total
        assert apns_emu.pending_bodies == 0
        for stream_id, body in bodies.items():
            assert json.loads(body)["reason"] == "Unregistered"
            assert frames[stream_id] == 1
    finally:
        writer.close()
        await writer.wait_closed()


async def test_aioapns_never_returns_window_credit(apns_emu: ApnsEmulator) -> None:
    """Documents the aioapns 4.0 bug the emulator must reproduce (see apns module doc)."""
    apns_emu.always(DEVICE, Reply(410, {"reason": "Unregistered", "padding": "x" * 8000}))
    client = _aioapns(apns_emu)
    delivered = 0
    try:
        with pytest.raises(TimeoutError):
            for _ in range(20):
                result = await asyncio.wait_for(client.send_notification(_alert()), 1.0)
                assert result.status == "410"
                delivered += 1
        assert delivered == 8  # 8 x ~8 KB fill the 64 KiB window that is never replenished
        assert apns_emu.flow_control_blocked == 1
        # Body-less 200 responses are not flow-controlled, so they still get through.
        result = await client.send_notification(_alert("cd" * 32))
        assert result.status == "200"
    finally:
        await _close(client)


# --------------------------------------------------------------------------- Web Push
async def test_webpush_pywebpush_delivers_decrypted_json(
    webpush_emu: WebPushEmulator, wp_session: aiohttp.ClientSession
) -> None:
    subscription = webpush_emu.subscribe()
    assert subscription["endpoint"].startswith(webpush_emu.endpoint_prefix + "push/")
    assert len(b64url_decode(subscription["keys"]["p256dh"])) == 65
    assert len(b64url_decode(subscription["keys"]["auth"])) == 16
    vapid, public_key = _vapid()
    webpush_emu.expected_vapid_public_key = public_key
    message = {"type": "message", "conversation_id": "c1", "text": "héllo ✓"}
    response = await webpush_async(
        subscription_info=subscription,
        data=json.dumps(message),
        vapid_private_key=vapid,
        vapid_claims={"sub": "mailto:ops@example.com"},
        ttl=86400,
        headers={"Urgency": "high", "Topic": "conv-c1"},
        aiohttp_session=wp_session,
    )
    assert response.status == 201
    assert response.headers["Location"].startswith(webpush_emu.audience + "/m/")
    (received,) = webpush_emu.wait_for(1)
    assert received.key == subscription["endpoint"]
    assert received.payload == message
    assert received.headers["urgency"] == "high"
    assert received.headers["topic"] == "conv-c1"
    assert received.headers["ttl"] == "86400"


async def test_webpush_scripted_replies(
    webpush_emu: WebPushEmulator, wp_session: aiohttp.ClientSession
) -> None:
    subscription = webpush_emu.subscribe()
    endpoint = subscription["endpoint"]
    vapid, _ = _vapid()
    webpush_emu.script(endpoint, webpush.reply(429, retry_after=30), webpush.reply(410))
    webpush_emu.always(endpoint, webpush.reply(503, retry_after=5))

    async def send() -> Any:
        return await webpush_async(
            subscription_info=subscription,
            data=json.dumps({"n": 1}),
            vapid_private_key=vapid,
            vapid_claims={"sub": "https://example.com"},
            ttl=60,
            aiohttp_session=wp_session,
        )

    with pytest.raises(WebPushException) as info:
        await send()
    assert info.value.response.status == 429
    assert info.value.retry_after == "30"
    with pytest.raises(WebPushException) as info:
        await send()
    assert info.value.response.status == 410
    with pytest.raises(WebPushException) as info:
        await send()
    assert (info.value.status_code, info.value.retry_after) == (503, "5")
    assert [r.status for r in webpush_emu.wait_for(3)] == [429, 410, 503]
    assert webpush_emu.received[0].payload == {"n": 1}


async def test_webpush_push_service_checks(
    webpush_emu: WebPushEmulator, wp_session: aiohttp.ClientSession
) -> None:
    subscription = webpush_emu.subscribe()
    vapid, public_key = _vapid()

    async def status(sub: dict[str, Any], claims: dict[str, Any], **kwargs: Any) -> int:
        kwargs.setdefault("data", json.dumps({"n": 1}))
        try:
            response = await webpush_async(
                subscription_info=sub,
                vapid_private_key=vapid,
                vapid_claims=claims,
                aiohttp_session=wp_session,
                ttl=60,
                **kwargs,
            )
        except WebPushException as exc:
            return exc.response.status
        return response.status

    good = {"sub": "mailto:ops@example.com"}
    wrong_aud = {"sub": "mailto:ops@example.com", "aud": "https://127.0.0.1"}
    assert await status(subscription, dict(good)) == 201
    assert await status(subscription, wrong_aud) == 401
    far_exp = {"sub": "mailto:ops@example.com", "exp": int(time.time()) + 3 * 86400}
    assert await status(subscription, far_exp) == 401
    assert await status(subscription, {"sub": "mailto:ops@example.com"}, data="x" * 5000) == 413
    unknown = {**subscription, "endpoint": webpush_emu.endpoint_prefix + "push/nope"}
    assert await status(unknown, dict(good)) == 404
    other_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    webpush_emu.expected_vapid_public_key = b64url(
        other_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )
    assert await status(subscription, dict(good)) == 403
    webpush_emu.expected_vapid_public_key = public_key
    assert await status(subscription, dict(good)) == 201

    # Missing TTL (pywebpush always sends one, so use a raw request).
    claims = {"sub": "mailto:a@b.c", "aud": webpush_emu.audience, "exp": int(time.time()) + 60}
    headers = vapid.sign(claims)
    async with wp_session.post(subscription["endpoint"], headers=headers) as response:
        assert response.status == 400
    async with wp_session.post(
        subscription["endpoint"], headers={**headers, "TTL": "0"}
    ) as response:
        assert response.status == 201  # payload-less push ("tickle")

    webpush_emu.unsubscribe(subscription["endpoint"])
    assert await status(subscription, dict(good)) == 410
    expected = [201, 401, 401, 413, 404, 403, 201, 400, 201, 410]
    assert [r.status for r in webpush_emu.wait_for(10)] == expected


def test_wait_for_times_out(webpush_emu: WebPushEmulator) -> None:
    with pytest.raises(AssertionError, match="expected 1 push requests"):
        webpush_emu.wait_for(1, timeout=0.05)


# --------------------------------------------------------------------------- process mode
def test_process_mode(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "backend.devtools.emulators", "--state-file", str(state_file)]
    proc = subprocess.Popen(
        [*command, "--latency-ms", "20"], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while not state_file.exists():
            assert proc.poll() is None, "emulator process died"
            assert time.monotonic() < deadline, "emulator process did not become ready"
            time.sleep(0.05)
        state = json.loads(state_file.read_text())
        assert state["apns"]["host_port"] == f"127.0.0.1:{state['apns']['port']}"
        assert Path(state["fcm"]["credentials_file"]).exists()
        assert Path(state["apns"]["key_path"]).read_text().startswith("-----BEGIN PRIVATE KEY")
        asyncio.run(_drive_process_mode(state))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert not state_file.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def _drive_process_mode(state: dict[str, Any]) -> None:
    ctx = ssl.create_default_context(cafile=state["webpush"]["ca_file"])
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session:
        wp = state["webpush"]["control_url"]
        async with session.post(f"{wp}/subscribe?n=3") as response:
            subscriptions = await response.json()
        assert len(subscriptions) == 3
        vapid, _ = _vapid()
        started = time.monotonic()
        await webpush_async(
            subscription_info=subscriptions[0],
            data=json.dumps({"hello": "bench"}),
            vapid_private_key=vapid,
            vapid_claims={"sub": "mailto:ops@example.com"},
            ttl=60,
            aiohttp_session=session,
        )
        assert time.monotonic() - started >= 0.02  # --latency-ms applied
        async with session.get(f"{wp}/count") as response:
            assert await response.json() == {"count": 1}
        async with session.get(f"{wp}/received") as response:
            assert (await response.json())[0]["payload"] == {"hello": "bench"}
        for name in ("fcm", "apns", "webpush"):
            control = state[name]["control_url"]
            async with session.post(f"{control}/latency", json={"seconds": 0}) as response:
                assert response.status == 200
            async with session.post(f"{control}/reset") as response:
                assert response.status == 200
            async with session.get(f"{control}/count") as response:
                assert await response.json() == {"count": 0}
