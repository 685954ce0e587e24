"""A late APNs answer (its send already timed out) is dropped, not an error that closes
the HTTP/2 connection with every other push in flight on it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aioapns.connection import APNsProductionClientProtocol

from backend.app.messenger.push.providers.apns_transport import protocol_class


async def test_an_answer_to_a_send_that_timed_out_raises_nothing() -> None:
    patched = protocol_class(APNsProductionClientProtocol, None, None)
    abandoned: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    abandoned.cancel()  # what the timeout does to a send that timed out
    protocol = SimpleNamespace(requests={"late": abandoned}, request_statuses={})

    patched.on_response_received(protocol, {b"apns-id": b"late", b":status": b"200"})

    assert protocol.requests == {}


async def test_an_answer_still_awaited_gets_its_result() -> None:
    patched = protocol_class(APNsProductionClientProtocol, None, None)
    waiting: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    protocol = SimpleNamespace(requests={"on-time": waiting}, request_statuses={})

    patched.on_response_received(protocol, {b"apns-id": b"on-time", b":status": b"200"})

    assert waiting.result().status == "200"
