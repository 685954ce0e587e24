"""Logs carry no secret: a whole scenario runs against a real `messenger serve` process
(app logs and uvicorn's access log on stderr), then its output is searched for every JWT,
raw device token, Web Push endpoint and key, and message text the scenario used."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from backend.devtools.providers import Providers
from backend.tests.conftest import API, TEST_API_KEY, TEST_JWT_SECRET, bearer
from backend.tests.messaging import HANG_GUARD_SECONDS, recv_json, token_of, ws_client
from backend.tests.push_helpers import register_all_providers

SECRET_CONTENT = "the launch code is 8472-zebra"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn_serve(
    port: int, *, env: dict[str, str], cwd: Path, log_path: Path
) -> subprocess.Popen[bytes]:
    """`messenger serve` in a process of its own; stdout and stderr go to a file (a pipe that
    nobody reads until the end would fill up and block the server's logging)."""
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "backend.app.cli", "serve", "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


async def wait_until_serving(base_url: str) -> None:
    async with asyncio.timeout(60), httpx.AsyncClient() as http:
        while True:
            try:
                if (await http.get(base_url + "/health")).status_code in (200, 503):
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


async def test_a_full_scenario_logs_no_jwt_token_endpoint_key_or_message_text(
    database_url: str,
    clean_state: None,
    infrastructure: Any,
    providers: Providers,
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "PUSH_"))},
        "DATABASE_URL": database_url,
        "REDIS_URL": infrastructure.redis_url,
        "JWT_SECRET": TEST_JWT_SECRET,
        "SERVICE_API_KEY": TEST_API_KEY,
        **{name.upper(): str(value) for name, value in providers.settings().items()},
    }
    log_path = tmp_path / "server.log"
    process = spawn_serve(port, env=env, cwd=tmp_path, log_path=log_path)
    base = f"http://127.0.0.1:{port}"
    secrets_used: list[str] = [SECRET_CONTENT, token_of("alice"), token_of("bob")]
    try:
        await wait_until_serving(base)
        async with httpx.AsyncClient(base_url=base + API, timeout=30) as http:
            devices = await register_all_providers(http, providers, "bob")
            secrets_used += [
                devices.fcm_token,
                devices.apns_token,
                devices.subscription["endpoint"],
                devices.subscription["keys"]["p256dh"],
                devices.subscription["keys"]["auth"],
            ]
            conversation = (
                await http.post(
                    "/conversations", json={"participant_ids": ["bob"]}, headers=bearer("alice")
                )
            ).json()
            ws_url = f"ws://127.0.0.1:{port}{API}/ws"
            async with ws_client(ws_url, "alice") as ws:
                await ws.send(
                    json.dumps(
                        {
                            "type": "message.send",
                            "conversation_id": conversation["id"],
                            "content": SECRET_CONTENT + " (ws)",
                            "client_msg_id": "c1",
                        }
                    )
                )
                assert (await recv_json(ws))["type"] == "message.ack"
            await http.post(
                f"/conversations/{conversation['id']}/messages",
                json={"content": SECRET_CONTENT},
                headers=bearer("alice"),
            )
            await http.post("/devices/test", headers=bearer("bob"))
            await http.post(
                "/internal/notify",
                json={"user_id": "bob", "title": "t", "body": SECRET_CONTENT, "priority": "high"},
                headers={"X-API-Key": TEST_API_KEY},
            )
            # Failing requests log too: a bad token, and a body that is refused.
            await http.get("/devices", headers={"Authorization": "Bearer " + token_of("x")[:-3]})
            await http.get(f"/presence?user_ids={quote(SECRET_CONTENT)}", headers=bearer("bob"))
            await http.delete(f"/devices/{devices.fcm_token}", headers=bearer("bob"))
            await http.delete(f"/devices/{devices.apns_token}", headers=bearer("bob"))
            await http.delete(
                f"/devices/{quote(devices.subscription['endpoint'], safe='')}",
                headers=bearer("bob"),
            )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, HANG_GUARD_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    logs = log_path.read_text(errors="replace")

    assert "GET /api/v1/messenger/devices" in logs  # the access log was really captured
    assert "WebSocket" in logs
    for secret in secrets_used:
        assert secret not in logs, f"a secret appears in the logs: {secret[:12]}…"
        assert quote(secret, safe="") not in logs
    assert "eyJ" not in logs  # no JWT of any kind
