"""Real-browser tests: headless Chromium (Debian's `chromium` + `chromium-driver`) driven by
Selenium against the real app, served by uvicorn in a thread of its own so the blocking
WebDriver calls never stall it.

Chromium is installed with apt when it is missing and this is root with apt-get; otherwise
every browser test is skipped, saying why. Screenshots go to `artefacts/browser/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from redis.asyncio import Redis

from backend.app.config import Settings
from backend.app.main import create_app
from backend.devtools import infra as test_infra
from backend.tests.conftest import ALL_TABLES, API, TEST_API_KEY, TEST_JWT_SECRET, bearer

try:
    import selenium  # noqa: F401
except ImportError:  # the test modules import it; without it there is nothing to collect
    collect_ignore_glob = ["test_*.py"]

ARTEFACTS = Path(__file__).resolve().parents[3] / "artefacts" / "browser"
# Without these Chromium stalls on a closed network (component updates, sync, QUIC probes).
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--window-size=1280,800",
)


def _chromium_paths() -> tuple[str | None, str | None]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return browser, driver


def _ensure_chromium() -> tuple[str, str] | str:
    """(browser, driver) paths, installing Debian's packages when possible; else why not."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements-dev.txt)"
    browser, driver = _chromium_paths()
    if browser and driver:
        return browser, driver
    if os.environ.get("MESSENGER_NO_BROWSER_INSTALL"):
        return "chromium/chromedriver missing and MESSENGER_NO_BROWSER_INSTALL is set"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "chromium/chromedriver missing (apt-get install chromium chromium-driver as root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "chromium", "chromium-driver"],
    ):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            return f"installing chromium failed: {' '.join(command)}: {result.stderr[-300:]}"
    browser, driver = _chromium_paths()
    if browser and driver:
        return browser, driver
    return "chromium/chromedriver still missing after apt-get install"


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    found = _ensure_chromium()
    if isinstance(found, str):
        pytest.skip(f"browser tests skipped: {found}")
    return found


@dataclass
class WebServer:
    url: str
    settings: Settings

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url + API, timeout=30)


class _ThreadServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _clean(database_url: str, redis_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        tables = await connection.fetchval(ALL_TABLES)
        await connection.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


@pytest.fixture
def web_server(
    database_url: str, infrastructure: test_infra.TestInfrastructure
) -> Iterator[WebServer]:
    """The real app on an ephemeral port, in its own thread and event loop."""
    asyncio.run(_clean(database_url, infrastructure.redis_url))
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        redis_url=infrastructure.redis_url,
        jwt_secret=TEST_JWT_SECRET,
        service_api_key=TEST_API_KEY,
        push_sweep_interval_seconds=0.2,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _ThreadServer(uvicorn.Config(create_app(settings), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("web server did not start")
        time.sleep(0.02)
    yield WebServer(url=f"http://127.0.0.1:{port}", settings=settings)
    server.should_exit = True
    thread.join(20)


def token_for(user_id: str, *, name: str | None = None, admin: bool = False) -> str:
    return bearer(user_id, name=name, admin=admin)["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def browser(chromium: tuple[str, str]) -> Iterator[Callable[[], Any]]:
    """A factory of fresh Chromium sessions (own profile each), all quit after the test."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium
    drivers: list[Any] = []
    profiles: list[str] = []

    def open_browser() -> Any:
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        profile = tempfile.mkdtemp(prefix="chromium-profile-")
        profiles.append(profile)
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
        driver.set_page_load_timeout(30)
        drivers.append(driver)
        return driver

    yield open_browser
    for driver in drivers:
        with contextlib.suppress(Exception):
            driver.quit()
    for profile in profiles:
        shutil.rmtree(profile, ignore_errors=True)
