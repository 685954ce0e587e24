"""Shared machinery of the push-provider emulators.

Every emulator runs its servers on a private asyncio loop in a daemon thread, so it keeps
answering while the test's own loop is busy or blocked (pyfcm, for instance, is
synchronous). Test code talks to it through a small thread-safe API: scripted replies per
key, sticky replies per key, a record of every push request, and an artificial latency.

Each emulator also serves plain-HTTP control endpoints under ``control_url``
(``http://127.0.0.1:PORT/_emulator``) so a benchmark running in another process can drive
it: ``GET count``, ``GET received?limit=N``, ``POST latency {"seconds": x}``,
``POST reset``, ``POST script {"key": k, "replies": [reply...]}``,
``POST always {"key": k, "reply": reply | null}`` (null: forget the rule) where a reply is
``{"status": 410, "body": {...} | null, "headers": {...}}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Self

from aiohttp import web

__all__ = ["Emulator", "Received", "Reply"]


@dataclass
class Reply:
    """What the emulator answers to one push request."""

    status: int
    body: dict[str, Any] | None = None  # JSON body; None = empty body
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reply:
        return cls(
            status=int(data["status"]),
            body=data.get("body"),
            headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
        )


@dataclass
class Received:
    """One push request as the emulator saw it (whatever its outcome)."""

    key: str
    headers: dict[str, str]
    payload: dict[str, Any]
    status: int
    at: float


class Emulator:
    """Thread runner + scripting + recording; subclasses implement the wire protocol."""

    #: Human-readable name, used for the thread name and in errors.
    name = "emulator"

    def __init__(self, *, max_received: int | None = None, files_dir: str | None = None) -> None:
        self.latency: float = 0.0
        self.port: int = 0
        self.control_url: str = ""
        self._cond = threading.Condition(threading.Lock())
        self._received: deque[Received] = deque(maxlen=max_received)
        self._count = 0
        self._scripts: dict[str, deque[Reply]] = {}
        self._always: dict[str, Reply] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._control_runner: web.AppRunner | None = None
        if files_dir is None:  # credentials this emulator hands out: throwaway unless kept
            self._tmpdir = tempfile.mkdtemp(prefix=f"push-emulator-{self.name}-")
            weakref.finalize(self, shutil.rmtree, self._tmpdir, True)
        else:
            os.makedirs(files_dir, exist_ok=True)
            self._tmpdir = files_dir

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> Self:
        """Start the loop thread and servers; returns once they are listening."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} emulator already started")
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._start_all())
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                try:
                    loop.run_until_complete(self._stop_all())
                    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                    for task in pending:
                        task.cancel()
                    if pending:
                        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                finally:
                    loop.close()

        self._thread = threading.Thread(target=run, name=f"{self.name}-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            self._thread.join()
            self._thread = None
            raise errors[0]
        return self

    def stop(self) -> None:
        """Stop servers and join the thread (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=15)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _start_all(self) -> None:
        await self._start_servers()
        await self._start_control()

    async def _stop_all(self) -> None:
        if self._control_runner is not None:
            await self._control_runner.cleanup()
            self._control_runner = None
        await self._stop_servers()

    async def _start_servers(self) -> None:
        """Bind the provider server(s) on 127.0.0.1:0 and set ``self.port``."""
        raise NotImplementedError

    async def _stop_servers(self) -> None:
        raise NotImplementedError

    async def _start_control(self) -> None:
        """Plain-HTTP control server (separate port: the push servers may be TLS / h2)."""
        app = web.Application()
        app.add_routes(self.control_routes())
        self._control_runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._control_runner.setup()
        site = web.TCPSite(self._control_runner, "127.0.0.1", 0)
        await site.start()
        port = self._control_runner.addresses[0][1]
        self.control_url = f"http://127.0.0.1:{port}/_emulator"

    # ----------------------------------------------------------------- scripting
    def script(self, key: str, *replies: Reply) -> None:
        """The next ``len(replies)`` valid pushes for ``key`` get these replies, in order."""
        with self._cond:
            self._scripts.setdefault(key, deque()).extend(replies)

    def always(self, key: str, reply: Reply | None) -> None:
        """Every valid push for ``key`` gets ``reply`` (after any script) until reset;
        ``None`` forgets the rule (the key is healthy again)."""
        with self._cond:
            if reply is None:
                self._always.pop(key, None)
            else:
                self._always[key] = reply

    def reset(self) -> None:
        """Forget scripts, always-rules, recorded requests and latency."""
        with self._cond:
            self._scripts.clear()
            self._always.clear()
            self._received.clear()
            self._count = 0
            self.latency = 0.0

    def _pick(self, key: str) -> Reply | None:
        """Scripted/always reply for a valid push, or None for the default success."""
        if not self._scripts and not self._always:  # fast path, no lock needed
            return None
        with self._cond:
            queue = self._scripts.get(key)
            if queue:
                reply = queue.popleft()
                if not queue:
                    del self._scripts[key]
                return reply
            return self._always.get(key)

    # ----------------------------------------------------------------- recording
    def _record(
        self, key: str, headers: dict[str, str], payload: dict[str, Any], status: int
    ) -> None:
        """Record one answered push; called right before the answer is written."""
        item = Received(key=key, headers=headers, payload=payload, status=status, at=time.time())
        with self._cond:
            self._received.append(item)
            self._count += 1
            self._cond.notify_all()

    @property
    def received(self) -> list[Received]:
        """Snapshot of recorded push requests (oldest first)."""
        with self._cond:
            return list(self._received)

    def count(self) -> int:
        """Total push requests answered since start/reset (cheap, for benchmarks)."""
        return self._count

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until at least ``count`` pushes were recorded; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._count < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{self.name} emulator: expected {count} push requests within "
                        f"{timeout}s, got {self._count}"
                    )
                self._cond.wait(remaining)
            return list(self._received)

    # ----------------------------------------------------------------- control HTTP
    def control_routes(self) -> list[web.RouteDef]:
        """aiohttp routes of the control API (mounted on the control server)."""
        return [
            web.get("/_emulator/count", self._ctl_count),
            web.get("/_emulator/received", self._ctl_received),
            web.post("/_emulator/latency", self._ctl_latency),
            web.post("/_emulator/reset", self._ctl_reset),
            web.post("/_emulator/script", self._ctl_script),
            web.post("/_emulator/always", self._ctl_always),
        ]

    async def _ctl_count(self, request: web.Request) -> web.Response:
        return web.json_response({"count": self.count()})

    async def _ctl_received(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "100"))
        items = self.received[-limit:] if limit > 0 else []
        return web.json_response([asdict(r) for r in items])

    async def _ctl_latency(self, request: web.Request) -> web.Response:
        data = await request.json()
        self.latency = float(data["seconds"])
        return web.json_response({"latency": self.latency})

    async def _ctl_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    async def _ctl_script(self, request: web.Request) -> web.Response:
        data = await request.json()
        self.script(str(data["key"]), *_replies(data["replies"]))
        return web.json_response({"ok": True})

    async def _ctl_always(self, request: web.Request) -> web.Response:
        data = await request.json()
        reply = data.get("reply")
        self.always(str(data["key"]), None if reply is None else Reply.from_json(reply))
        return web.json_response({"ok": True})


def _replies(items: Iterable[dict[str, Any]]) -> list[Reply]:
    return [Reply.from_json(item) for item in items]


def json_bytes(body: dict[str, Any] | None) -> bytes:
    """Compact JSON encoding used for every emulator response body."""
    if body is None:
        return b""
    return json.dumps(body, separators=(",", ":")).encode()
