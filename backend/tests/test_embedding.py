"""examples/embed_host.py: a host FastAPI app embeds the messenger with its own sign-in."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from backend.tests.conftest import API, bearer

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def host(base_settings: dict[str, Any]) -> AsyncIterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": base_settings["database_url"],
        "REDIS_URL": base_settings["redis_url"],
        "JWT_SECRET": base_settings["jwt_secret"],
    }
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "uvicorn", "examples.embed_host:app"),
        *("--port", str(port), "--log-level", "warning"),
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            for _ in range(300):
                if process.returncode is not None:
                    raise RuntimeError("the example exited during startup")
                try:
                    await http.get("/whoami")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        yield url
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 20)


async def test_host_routes_and_messenger_share_the_hosts_sign_in(host: str) -> None:
    async with httpx.AsyncClient(base_url=host) as http:
        me = await http.get("/whoami", headers={"X-Session": "s-alice"})
        assert me.json() == {"user_id": "alice", "name": "Alice", "greeting": "Hello from the host"}
        created = await http.post(
            f"{API}/conversations",
            json={"title": "Embedded", "participant_ids": ["bob"]},
            headers={"X-Session": "s-alice"},
        )
        assert created.status_code == 201
        assert sorted(created.json()["participant_ids"]) == ["alice", "bob"]
        listed = await http.get(f"{API}/conversations", headers={"X-Session": "s-bob"})
        assert [c["title"] for c in listed.json()["conversations"]] == ["Embedded"]


async def test_messenger_jwts_no_longer_authenticate_in_the_host(host: str) -> None:
    async with httpx.AsyncClient(base_url=host) as http:
        response = await http.get(f"{API}/conversations", headers=bearer("alice"))
        assert response.status_code == 401
        admin = await http.get(f"{API}/admin/devices/stats", headers={"X-Session": "s-alice"})
        assert admin.status_code == 403
        admin = await http.get(f"{API}/admin/devices/stats", headers={"X-Session": "s-admin"})
        assert admin.status_code == 200


async def test_websocket_uses_the_hosts_user_and_closes_unknown_sessions(host: str) -> None:
    ws_url = host.replace("http://", "ws://") + f"{API}/ws"
    async with httpx.AsyncClient(base_url=host) as http:
        created = await http.post(
            f"{API}/conversations",
            json={"title": None, "participant_ids": ["bob"]},
            headers={"X-Session": "s-alice"},
        )
        conversation_id = created.json()["id"]
        async with websockets.connect(f"{ws_url}?session=s-bob") as bob:
            await bob.send(json.dumps({"type": "ping"}))
            assert json.loads(await bob.recv()) == {"type": "pong"}
            await http.post(
                f"{API}/conversations/{conversation_id}/messages",
                json={"content": "hi bob"},
                headers={"X-Session": "s-alice"},
            )
            frame = json.loads(await asyncio.wait_for(bob.recv(), 10))
            assert frame["type"] == "message.new"
            assert frame["message"]["sender_id"] == "alice"
    async with websockets.connect(f"{ws_url}?session=nope") as stranger:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await stranger.recv()
        assert closed.value.rcvd.code == 4401


async def test_the_modules_input_guard_covers_its_own_paths_in_the_host(host: str) -> None:
    async with httpx.AsyncClient(base_url=host) as http:
        oversized = await http.post(
            f"{API}/conversations",
            content=b"{" + b" " * 70_000 + b"}",
            headers={"X-Session": "s-alice", "Content-Type": "application/json"},
        )
        assert oversized.status_code == 413
