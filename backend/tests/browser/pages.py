"""What the browser tests do to pages: sign in, wait, read the console, take screenshots."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from backend.tests.browser.conftest import ARTEFACTS

T = TypeVar("T")


def eventually(check: Callable[[], T], *, timeout: float = 15, what: str = "condition") -> T:
    """Poll until `check` returns something truthy (WebDriver exceptions count as not yet)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # stale elements, not-yet-present elements
            last = exc
        time.sleep(0.1)
    raise AssertionError(
        f"timed out waiting for {what}" + (f" (last error: {last})" if last else "")
    )


def sign_in(driver: Any, base_url: str, token: str, *, hash_path: str = "") -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base_url}/app/")
    field = eventually(lambda: driver.find_element(By.ID, "token-input"), what="sign-in form")
    field.send_keys(token)
    driver.find_element(By.ID, "signin").click()
    eventually(lambda: driver.find_element(By.ID, "conversation-list"), what="signed-in shell")
    eventually(
        lambda: "up" in driver.find_element(By.ID, "connection").get_attribute("class"),
        what="live connection",
    )
    eventually(
        lambda: driver.find_element(By.ID, "root").get_attribute("data-ready") == "true",
        what="client started",
    )
    if hash_path:
        driver.execute_script("location.hash = arguments[0]", hash_path)


def console_problems(driver: Any) -> list[str]:
    """Console errors and CSP violations since the last call (warnings about CSP included)."""
    problems = []
    for entry in driver.get_log("browser"):
        message = entry.get("message", "")
        if (
            entry.get("level") == "SEVERE"
            or "Content Security Policy" in message
            or "Refused to" in message
        ):
            problems.append(message)
    return problems


def screenshot(driver: Any, name: str) -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def text_of(driver: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css).text


def js(driver: Any, script: str, *args: Any) -> Any:
    return driver.execute_script(script, *args)


def async_js(driver: Any, script: str, *args: Any) -> Any:
    """Run `script` (an async function body; `arguments` available) and return its result."""
    wrapped = (
        "const done = arguments[arguments.length - 1];"
        f"(async (...arguments) => {{ {script} }})(...Array.from(arguments).slice(0, -1))"
        ".then((v) => done(JSON.stringify({ok: v})), (e) => done(JSON.stringify({error: String(e)})));"
    )
    result = json.loads(driver.execute_async_script(wrapped, *args))
    if "error" in result:
        raise AssertionError(f"page script failed: {result['error']}")
    return result.get("ok")
