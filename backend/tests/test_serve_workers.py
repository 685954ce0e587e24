"""`messenger serve --workers N`: N API processes on one port behave as one service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from backend.tests.conftest import API, TEST_API_KEY, TEST_JWT_SECRET, bearer
from backend.tests.test_log_scrubbing import free_port, wait_until_serving

SERVE = (sys.executable, "-m", "backend.app.cli", "serve")


def spawn_two_workers(port: int, *, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    with (cwd / "server.log").open("wb") as log_file:
        return subprocess.Popen(
            [*SERVE, "--port", str(port), "--workers", "2", "--no-background"],
            env=env,
            cwd=cwd,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


async def test_serve_with_two_worker_processes_answers_sends_and_reads_on_one_port(
    database_url: str, clean_state: None, infrastructure: Any, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "PUSH_"))},
        "DATABASE_URL": database_url,
        "REDIS_URL": infrastructure.redis_url,
        "JWT_SECRET": TEST_JWT_SECRET,
        "SERVICE_API_KEY": TEST_API_KEY,
    }
    process = spawn_two_workers(port, env=env, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_until_serving(base)
        async with httpx.AsyncClient(base_url=base + API, timeout=30) as http:
            created = await http.post(
                "/conversations", json={"participant_ids": ["bob"]}, headers=bearer("alice")
            )
            assert created.status_code == 201, created.text
            conversation_id = created.json()["id"]
            for n in range(4):  # several connections: both processes take some
                async with httpx.AsyncClient(base_url=base + API, timeout=30) as one:
                    sent = await one.post(
                        f"/conversations/{conversation_id}/messages",
                        json={"content": f"hello {n}"},
                        headers=bearer("alice"),
                    )
                    assert sent.status_code == 201, sent.text
            page = await http.get(
                f"/conversations/{conversation_id}/messages", headers=bearer("bob")
            )
        assert [m["content"] for m in page.json()["messages"]] == [
            "hello 3",
            "hello 2",
            "hello 1",
            "hello 0",
        ]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    assert process.returncode is not None
