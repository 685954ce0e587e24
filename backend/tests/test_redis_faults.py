"""Redis trouble, with a private redis-server this test stops and restarts mid-traffic:
sends still succeed (stored, push job queued), and presence, the cross-instance
subscription and the rate limiter come back by themselves, without a restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection

from backend.app.embedded import redis_server_binary
from backend.tests.conftest import API, ServerFactory, bearer
from backend.tests.messaging import HANG_GUARD_SECONDS, create_conversation, send_message, ws_client


class PrivateRedis:
    """A redis-server on a unix socket of its own, restartable at the same address."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="msgfault"))
        self.socket = self.directory / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                *("--port", "0", "--unixsocket", str(self.socket), "--dir", str(self.directory)),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def ready(self) -> None:
        async with asyncio.timeout(HANG_GUARD_SECONDS):
            while True:
                client = Redis.from_url(self.url)
                try:
                    if await client.ping():
                        return
                except Exception:
                    await asyncio.sleep(0.05)
                finally:
                    await client.aclose()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    redis = PrivateRedis()
    redis.start()
    yield redis
    redis.close()


@contextlib.asynccontextmanager
async def kept_alive(ws: ClientConnection) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
    """Ping every second (the test's PRESENCE_TTL is short) and queue every non-pong frame."""
    frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def pinger() -> None:
        while True:
            await ws.send(json.dumps({"type": "ping"}))
            await asyncio.sleep(1)

    async def reader() -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("type") != "pong":
                frames.put_nowait(frame)

    tasks = [asyncio.create_task(pinger()), asyncio.create_task(reader())]
    try:
        yield frames
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_redis_stopped_and_restarted_mid_traffic_loses_no_message_and_recovers(
    start_server: ServerFactory, private_redis: PrivateRedis, sql: asyncpg.Connection
) -> None:
    await private_redis.ready()
    common = {
        "redis_url": private_redis.url,
        "presence_ttl_seconds": 6,
        "redis_timeout_seconds": 0.5,
    }
    server_a = await start_server(**common)
    server_b = await start_server(background=False, **common)
    async with (
        httpx.AsyncClient(base_url=server_a.url + API, timeout=30) as http,
        ws_client(server_a.ws_url, "alice") as alice_ws,
        ws_client(server_b.ws_url, "bob") as bob_ws,
        kept_alive(alice_ws),
        kept_alive(bob_ws) as bob_frames,
    ):
        conversation = await create_conversation(http, "alice", "bob")
        sent = [await send_message(http, "alice", conversation["id"], "before")]

        private_redis.stop()
        for index in range(5):
            sent.append(await send_message(http, "alice", conversation["id"], f"during {index}"))
        private_redis.start()
        await private_redis.ready()

        # The subscription on B comes back: a message sent on A reaches bob on B again.
        async with asyncio.timeout(HANG_GUARD_SECONDS):
            probe = 0
            while True:
                response = await send_message(http, "alice", conversation["id"], f"probe {probe}")
                sent.append(response)
                probe += 1
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1):
                        while True:
                            frame = await bob_frames.get()
                            if frame["message"]["content"].startswith("probe"):
                                break
                        break

        # Presence: the heartbeat re-adds alice's live connection to the restarted Redis.
        async with asyncio.timeout(HANG_GUARD_SECONDS):
            while True:
                answer = await http.get(
                    "/presence", params={"user_ids": "alice"}, headers=bearer("bob")
                )
                if answer.status_code == 200 and answer.json()["presence"]["alice"]["online"]:
                    break
                await asyncio.sleep(0.2)

        # The rate limiter counts again.
        checker = Redis.from_url(private_redis.url)
        try:
            async with asyncio.timeout(HANG_GUARD_SECONDS):
                while not await checker.keys("ratelimit:*"):
                    sent.append(await send_message(http, "alice", conversation["id"], "later"))
                    await asyncio.sleep(0.5)
        finally:
            await checker.aclose()

        history = await http.get(
            f"/conversations/{conversation['id']}/messages",
            params={"limit": 200},
            headers=bearer("bob"),
        )

    assert all(response.status_code == 201 for response in sent)
    stored = {m["id"] for m in history.json()["messages"]}
    assert {response.json()["id"] for response in sent} == stored
    jobs = await sql.fetchval("SELECT count(*) FROM push_jobs WHERE message_id IS NOT NULL")
    assert jobs == len(sent)


@contextlib.asynccontextmanager
async def black_hole() -> AsyncIterator[str]:
    """A TCP server that accepts connections and never answers: a Redis that drops packets."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        for writer in held:
            writer.close()
        server.close()


async def test_with_a_black_holed_redis_sends_still_succeed_and_queue_their_push(
    start_server: ServerFactory, sql: asyncpg.Connection
) -> None:
    async with black_hole() as redis_url:
        server = await start_server(redis_url=redis_url, redis_timeout_seconds=0.3)
        async with httpx.AsyncClient(base_url=server.url + API, timeout=30) as http:
            conversation = await create_conversation(http, "alice", "bob")
            answers = [
                await send_message(http, "alice", conversation["id"], f"m{i}") for i in range(3)
            ]
            await server.stop()

    assert [a.status_code for a in answers] == [201, 201, 201]
    assert await sql.fetchval("SELECT count(*) FROM messages") == 3
    assert await sql.fetchval("SELECT count(*) FROM push_jobs") == 3
