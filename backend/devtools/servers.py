"""The real app under uvicorn on an ephemeral port, in the caller's event loop, and the
client-side helpers to talk to it (tests and tools drive it over HTTP/WebSocket)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from backend.app.auth import mint_token
from backend.app.config import Settings
from backend.app.main import create_app

API = "/api/v1/messenger"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # leave the host's signal handling alone
        yield


@dataclass
class LiveServer:
    url: str
    ws_url: str
    settings: Settings
    server: uvicorn.Server
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 15)


async def start_live_server(settings: Settings, *, background: bool = True) -> LiveServer:
    """Serve `create_app(settings)` on 127.0.0.1:<free port>; returns once it listens."""
    # IPPROTO_TCP explicitly: asyncio then sets TCP_NODELAY on accepted connections.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings, background=background), log_level="warning", lifespan="on"
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server exited during startup")
        await asyncio.sleep(0.01)
    return LiveServer(
        url=f"http://127.0.0.1:{port}",
        ws_url=f"ws://127.0.0.1:{port}{API}/ws",
        settings=settings,
        server=server,
        task=task,
    )


def bearer_header(
    jwt_secret: str, user_id: str, *, name: str | None = None, admin: bool = False
) -> dict[str, str]:
    """`Authorization: Bearer <JWT>` for ``user_id``, signed with ``jwt_secret``."""
    settings = Settings(_env_file=None, jwt_secret=jwt_secret)  # type: ignore[call-arg]
    token = mint_token(settings, user_id=user_id, name=name, admin=admin)
    return {"Authorization": f"Bearer {token}"}
