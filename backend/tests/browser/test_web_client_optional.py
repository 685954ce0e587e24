"""Client features whose endpoints other parts of the service provide. Each test runs when
this build has the endpoint (read from /openapi.json) and is skipped, saying so, otherwise."""

from __future__ import annotations

import httpx
import pytest
from selenium.webdriver.common.by import By

from backend.tests.browser.conftest import WebServer, token_for
from backend.tests.browser.pages import console_problems, eventually, screenshot, sign_in
from backend.tests.browser.test_web_client import create_conversation, send, unread_badge
from backend.tests.conftest import API, TEST_API_KEY, bearer


def require(server: WebServer, method: str, path: str) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    if method.lower() not in spec["paths"].get(API + path, {}):
        pytest.skip(f"{method} {path} is not in this build")


def test_unread_counts_from_before_sign_in_are_shown(web_server, browser):
    require(web_server, "GET", "/unread")
    review = create_conversation(web_server, "carol", ["alice"], "Design review")
    send(web_server, "carol", review, "Mockups are in the shared folder")
    send(web_server, "carol", review, "Feedback by Thursday, please")
    alice = browser()
    sign_in(alice, web_server.url, token_for("alice"))
    eventually(lambda: unread_badge(alice, review) == "2", what="unread count from the server")
    assert console_problems(alice) == []


def test_inbox_shows_a_notification_live(web_server, browser):
    require(web_server, "POST", "/internal/notifications")
    alice = browser()
    sign_in(alice, web_server.url, token_for("alice"), hash_path="#/inbox")
    eventually(lambda: alice.find_element(By.ID, "inbox-list"), what="inbox")
    with web_server.api() as http:
        http.post(
            "/internal/notifications",
            json={
                "user_ids": ["alice"],
                "title": "Deploy finished",
                "body": "v2.4 is live",
                "channels": ["in_app"],
            },
            headers={"X-API-Key": TEST_API_KEY},
        ).raise_for_status()
    eventually(
        lambda: "Deploy finished" in alice.find_element(By.ID, "inbox-list").text,
        what="notification.new in the inbox",
    )
    eventually(lambda: alice.find_element(By.ID, "inbox-badge").text == "1", what="inbox badge")
    screenshot(alice, "inbox-live")
    assert console_problems(alice) == []


def test_preferences_are_saved_through_the_api(web_server, browser):
    require(web_server, "PUT", "/notification-preferences")
    alice = browser()
    sign_in(alice, web_server.url, token_for("alice"), hash_path="#/preferences")
    quiet = eventually(lambda: alice.find_element(By.ID, "pref-quiet"), what="preferences form")
    quiet.click()
    tz = alice.find_element(By.ID, "pref-quiet-tz")
    tz.clear()
    tz.send_keys("Europe/Berlin")
    alice.find_element(By.ID, "save-preferences").click()

    def saved() -> dict | None:
        with web_server.api() as http:
            prefs = http.get("/notification-preferences", headers=bearer("alice")).json()
        return prefs if prefs.get("quiet_hours") else None

    prefs = eventually(saved, what="preferences saved")
    assert prefs["quiet_hours"]["timezone"] == "Europe/Berlin"
    screenshot(alice, "preferences")
    assert console_problems(alice) == []


def presence_states_supported(server: WebServer) -> bool:
    schemas = httpx.get(server.url + "/openapi.json").json()["components"]["schemas"]
    return "state" in schemas.get("UserPresence", {}).get("properties", {})


HIDE_PAGE = """
Object.defineProperty(document, "visibilityState", {value: "hidden", configurable: true});
document.dispatchEvent(new Event("visibilitychange"));
"""
SHOW_PAGE = """
Object.defineProperty(document, "visibilityState", {value: "visible", configurable: true});
document.dispatchEvent(new Event("visibilitychange"));
window.dispatchEvent(new Event("keydown"));
"""


def test_a_hidden_tab_reports_idle_and_a_visible_one_active(web_server, browser):
    if not presence_states_supported(web_server):
        pytest.skip("GET /presence reports no active/idle state in this build")
    create_conversation(web_server, "alice", ["bob"], None)
    alice = browser()
    sign_in(alice, web_server.url, token_for("alice"))

    def state_of_alice() -> str:
        with web_server.api() as http:
            answer = http.get("/presence", params={"user_ids": "alice"}, headers=bearer("bob"))
        return answer.json()["presence"]["alice"]["state"]

    eventually(lambda: state_of_alice() == "active", what="alice active")
    alice.execute_script(HIDE_PAGE)
    eventually(lambda: state_of_alice() == "idle", what="alice idle while her tab is hidden")
    alice.execute_script(SHOW_PAGE)
    eventually(lambda: state_of_alice() == "active", what="alice active again")
    assert console_problems(alice) == []
