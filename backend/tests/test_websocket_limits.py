"""WebSocket hardening: connections end with their token (4401), a user holds at most
WS_MAX_CONNECTIONS_PER_USER per instance (oldest closed with 4409), and frames with NUL or
lone surrogates get an error frame while the connection stays open."""

from __future__ import annotations

import json
import time

import jwt
from websockets.asyncio.client import connect

from backend.tests.conftest import TEST_JWT_SECRET, LiveServer, ServerFactory
from backend.tests.messaging import close_code, ping, recv_json, ws_client


def token_expiring_in(seconds: int, user_id: str = "alice") -> str:
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + seconds}
    return jwt.encode(claims, TEST_JWT_SECRET, algorithm="HS256")


async def test_a_connection_closes_with_4401_once_its_token_expires(
    start_server: ServerFactory,
) -> None:
    server = await start_server(jwt_leeway_seconds=0)
    async with connect(f"{server.ws_url}?token={token_expiring_in(2)}") as ws:
        await ping(ws)
        assert await close_code(ws) == 4401


async def test_the_leeway_accepts_a_token_that_expired_moments_ago(
    start_server: ServerFactory,
) -> None:
    server = await start_server(jwt_leeway_seconds=30)
    async with connect(f"{server.ws_url}?token={token_expiring_in(-5)}") as ws:
        await ping(ws)  # accepted: 5 s past exp is within the 30 s leeway


async def test_past_the_leeway_a_token_is_refused(start_server: ServerFactory) -> None:
    server = await start_server(jwt_leeway_seconds=2)
    async with connect(f"{server.ws_url}?token={token_expiring_in(-5)}") as ws:
        assert await close_code(ws) == 4401


async def test_one_connection_too_many_closes_the_oldest_with_4409(
    start_server: ServerFactory,
) -> None:
    server = await start_server(ws_max_connections_per_user=2)
    async with (
        ws_client(server.ws_url, "alice") as oldest,
        ws_client(server.ws_url, "alice") as second,
        ws_client(server.ws_url, "bob") as other_user,
        ws_client(server.ws_url, "alice") as newest,
    ):
        assert await close_code(oldest) == 4409
        await ping(second)
        await ping(newest)
        await ping(other_user)


async def test_a_lone_surrogate_in_a_frame_gets_an_error_and_the_connection_stays_open(
    server: LiveServer,
) -> None:
    async with ws_client(server.ws_url, "alice") as ws:
        await ws.send(
            '{"type": "message.send", "conversation_id": "00000000-0000-0000-0000-000000000000",'
            ' "content": "hi", "client_msg_id": "\\ud800"}'
        )
        error = await recv_json(ws)
        await ws.send(json.dumps({"type": "ping", "x": "a\u0000b"}))
        nul_error = await recv_json(ws)
        await ping(ws)

    assert error["type"] == "error"
    assert error["code"] == "invalid_frame"
    assert nul_error["code"] == "invalid_frame"
