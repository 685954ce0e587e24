"""Real `messenger worker` processes and an offline group, for the fault tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from backend.devtools.providers import Providers
from backend.tests.messaging import create_conversation
from backend.tests.push_helpers import register

Worker = Callable[..., Any]


def worker_env(settings: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "PYTEST"))}
    env.update({key.upper(): str(value) for key, value in settings.items()})
    return env


@asynccontextmanager
async def workers(base_settings: dict[str, Any], providers: Providers) -> AsyncIterator[Worker]:
    """Start real `messenger worker` processes; all are killed at the end."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(**overrides: Any) -> subprocess.Popen[bytes]:
        settings = {**base_settings, **providers.settings(), **overrides}
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.app.cli", "worker"],
            env=worker_env(settings),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(process)
        return process

    try:
        yield start
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)


async def offline_group(client: httpx.AsyncClient, size: int) -> tuple[dict[str, Any], list[str]]:
    """A conversation of alice and `size` offline members with one Android device each."""
    tokens = []
    for index in range(size):
        token = f"fcm-token-{index:04d}-" + "x" * 32
        await register(
            client,
            f"user{index}",
            {"device_token": token, "platform": "android", "provider": "fcm"},
        )
        tokens.append(token)
    conversation = await create_conversation(client, "alice", *(f"user{i}" for i in range(size)))
    return conversation, tokens
