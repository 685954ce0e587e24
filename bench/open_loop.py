"""Open-loop load (issue 13, item 2): sends due at a fixed arrival rate, whatever the answers,
latency counted from the due time (a slow answer cannot hold back the next arrivals and so
hide queueing, as a closed loop would).

Two paths into the same conversations, one after the other on the same server:

- REST: `POST /conversations/{id}/messages`, a connection pool shared by all senders;
- WebSocket: each sender's own connection, opened before the window; `message.send` with a
  `client_msg_id` unique to the run, matched to its `message.ack` by that id. The sender's
  connection also gets other frames (`message.new` of its other connections, none here;
  presence and pongs); only acks and errors naming one of our ids count.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from bench.stack import API, Service

CONTENT = "Load test message: hello from a benchmark client."
# How long, after the last send is due, the WebSocket run waits for the missing acks.
ACK_GRACE_SECONDS = 30.0
START_DELAY_SECONDS = 0.2  # time to schedule every arrival before the first is due


@dataclass(frozen=True)
class OpenLoopResult:
    """p99 in ms (inf when nothing succeeded), how many succeeded and how many failed."""

    p99_ms: float
    answered: int
    failures: int


def percentile(values: list[float], p: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def _result(latencies: list[float], failures: int) -> OpenLoopResult:
    p99 = percentile(latencies, 99) * 1000 if latencies else float("inf")
    return OpenLoopResult(p99, len(latencies), failures)


async def rest_open_loop(
    service: Service,
    conversations: Sequence[tuple[str, dict[str, str]]],
    *,
    rate: float,
    seconds: float,
) -> OpenLoopResult:
    """Request i is due at i / rate, into conversation i mod n, as that conversation's sender."""
    base = service.url + API  # type: ignore[operator]
    latencies: list[float] = []
    failures = 0
    count = max(1, int(rate * seconds))
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=60)
    ) as http:

        async def one(index: int, due: float) -> None:
            nonlocal failures
            conversation_id, headers = conversations[index % len(conversations)]
            url = f"{base}/conversations/{conversation_id}/messages"
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            try:
                async with http.post(url, json={"content": CONTENT}, headers=headers) as response:
                    await response.read()
                    ok = response.status == 201
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if ok:
                latencies.append(time.perf_counter() - due)
            else:
                failures += 1

        start = time.perf_counter() + START_DELAY_SECONDS
        await asyncio.gather(*(one(i, start + i / rate) for i in range(count)))
    return _result(latencies, failures)


def ws_url(service: Service, headers: dict[str, str]) -> str:
    """The contract's `/ws?token=<JWT>`, from the sender's bearer header."""
    token = headers["Authorization"].removeprefix("Bearer ")
    return service.url.replace("http", "ws", 1) + f"{API}/ws?token={token}"  # type: ignore[union-attr]


async def ws_open_loop(
    service: Service,
    conversations: Sequence[tuple[str, dict[str, str]]],
    *,
    rate: float,
    seconds: float,
) -> OpenLoopResult:
    """Frame i is due at i / rate on sender (i mod n)'s connection; latency = due → its ack."""
    run = secrets.token_hex(4)
    due: dict[str, float] = {}  # client_msg_id -> due time, while unanswered
    latencies: list[float] = []
    failures = 0
    count = max(1, int(rate * seconds))
    all_answered = asyncio.Event()
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None)
    ) as http:
        sockets = await asyncio.gather(
            *(http.ws_connect(ws_url(service, h), heartbeat=None) for _, h in conversations)
        )

        def settled() -> None:
            if len(latencies) + failures >= count:
                all_answered.set()

        async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
            nonlocal failures
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                frame = json.loads(message.data)
                if frame.get("type") not in ("message.ack", "error"):
                    continue  # message.new, pong, ...: not an answer to a send
                sent_at = due.pop(frame.get("client_msg_id") or "", None)
                if sent_at is None:
                    continue
                if frame["type"] == "message.ack":
                    latencies.append(time.perf_counter() - sent_at)
                else:
                    failures += 1
                settled()

        async def send(index: int, at: float) -> None:
            nonlocal failures
            conversation_id = conversations[index % len(conversations)][0]
            client_msg_id = f"open-{run}-{index}"
            frame = {
                "type": "message.send",
                "conversation_id": conversation_id,
                "content": CONTENT,
                "client_msg_id": client_msg_id,
            }
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            due[client_msg_id] = at
            try:
                await sockets[index % len(sockets)].send_str(json.dumps(frame))
            except (aiohttp.ClientError, ConnectionError):
                due.pop(client_msg_id, None)
                failures += 1
                settled()

        readers = [asyncio.create_task(read(ws)) for ws in sockets]
        try:
            start = time.perf_counter() + START_DELAY_SECONDS
            await asyncio.gather(*(send(i, start + i / rate) for i in range(count)))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ACK_GRACE_SECONDS):
                    await all_answered.wait()
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
    return _result(latencies, failures + len(due))
