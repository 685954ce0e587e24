"""Client features backed by the read-state, inbox, preferences and presence endpoints. These
endpoints are part of the service, so every test here runs (none skips when a feature exists)."""

from __future__ import annotations

from selenium.webdriver.common.by import By

from backend.tests.browser.conftest import WebServer, token_for
from backend.tests.browser.pages import console_problems, eventually, screenshot, sign_in
from backend.tests.browser.test_web_client import (
    create_conversation,
    open_conversation,
    presence_dot,
    send,
    unread_badge,
)
from backend.tests.conftest import TEST_API_KEY, bearer


def server_unread(server: WebServer, user_id: str) -> dict:
    with server.api() as http:
        return http.get("/unread", headers=bearer(user_id)).json()


def test_unread_counts_from_the_server_show_and_clear_after_reading(web_server, browser):
    review = create_conversation(web_server, "carol", ["alice"], "Design review")
    send(web_server, "carol", review, "Mockups are in the shared folder")
    send(web_server, "carol", review, "Feedback by Thursday, please")
    alice = browser()
    sign_in(alice, web_server.url, token_for("alice"))
    eventually(lambda: unread_badge(alice, review) == "2", what="unread count from the server")

    # Opening the conversation sends the read position: the server's count clears too.
    open_conversation(alice, review)
    eventually(lambda: unread_badge(alice, review) == "0", what="badge cleared on reading")
    eventually(lambda: server_unread(web_server, "alice")["total"] == 0, what="server read state")

    # A message arriving while she is elsewhere counts again, and a reload shows the same.
    alice.execute_script("location.hash = '#/inbox'")
    send(web_server, "carol", review, "One more thing")
    eventually(lambda: unread_badge(alice, review) == "1", what="live unread count")
    alice.refresh()
    eventually(lambda: unread_badge(alice, review) == "1", what="unread count after a reload")
    assert server_unread(web_server, "alice")["conversations"] == {review: 1}
    assert console_problems(alice) == []


def test_inbox_shows_a_notification_live(web_server, browser):
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


def fill(driver, element_id: str, value: str) -> None:
    """Set an input's value the way typing would (time inputs ignore send_keys formats)."""
    driver.execute_script(
        "const el = document.getElementById(arguments[0]); el.value = arguments[1];"
        "el.dispatchEvent(new Event('input', {bubbles: true}));"
        "el.dispatchEvent(new Event('change', {bubbles: true}));",
        element_id,
        value,
    )


def test_preferences_saved_through_the_page_are_what_the_api_returns(web_server, browser):
    conversation_id = create_conversation(web_server, "alice", ["bob"], "Launch plan")
    alice = browser()
    sign_in(alice, web_server.url, token_for("alice"), hash_path="#/preferences")
    push = eventually(lambda: alice.find_element(By.ID, "pref-push"), what="preferences form")
    assert push.is_selected()  # the defaults, as the API reports them
    push.click()
    fill(alice, "pref-email-address", "alice@example.com")
    alice.find_element(By.ID, "pref-quiet").click()
    fill(alice, "pref-quiet-start", "21:30")
    fill(alice, "pref-quiet-end", "06:45")
    fill(alice, "pref-quiet-tz", "Europe/Berlin")
    alice.find_element(By.ID, "pref-digest").click()
    fill(alice, "pref-digest-time", "07:15")
    fill(alice, "pref-digest-tz", "America/New_York")
    alice.find_element(By.ID, "save-preferences").click()

    def saved() -> dict | None:
        with web_server.api() as http:
            prefs = http.get("/notification-preferences", headers=bearer("alice")).json()
        return prefs if prefs.get("quiet_hours") else None

    assert eventually(saved, what="preferences saved") == {
        "push": False,
        "email": True,
        "email_address": "alice@example.com",
        "quiet_hours": {"start": "21:30", "end": "06:45", "timezone": "Europe/Berlin"},
        "digest": {"enabled": True, "time": "07:15", "timezone": "America/New_York"},
    }

    # Muting a conversation on the same page is stored per conversation.
    eventually(lambda: alice.find_element(By.ID, f"mute-{conversation_id}"), what="mute").click()

    def muted() -> bool:
        with web_server.api() as http:
            path = f"/conversations/{conversation_id}/notification-settings"
            return http.get(path, headers=bearer("alice")).json()["muted"]

    eventually(muted, what="conversation muted")
    screenshot(alice, "preferences")

    # A fresh visit shows what was saved.
    alice.refresh()
    eventually(
        lambda: (
            alice.find_element(By.ID, "pref-quiet-tz").get_attribute("value") == "Europe/Berlin"
        ),
        what="saved preferences shown again",
    )
    assert not alice.find_element(By.ID, "pref-push").is_selected()
    assert alice.find_element(By.ID, f"mute-{conversation_id}").is_selected()
    assert console_problems(alice) == []


HIDE_PAGE = """
Object.defineProperty(document, "visibilityState", {value: "hidden", configurable: true});
document.dispatchEvent(new Event("visibilitychange"));
"""
SHOW_PAGE = """
Object.defineProperty(document, "visibilityState", {value: "visible", configurable: true});
document.dispatchEvent(new Event("visibilitychange"));
window.dispatchEvent(new Event("keydown"));
"""


def test_presence_dots_follow_idle_active_and_a_closed_tab(web_server, browser):
    conversation_id = create_conversation(web_server, "alice", ["bob"], None)
    alice, bob = browser(), browser()
    sign_in(alice, web_server.url, token_for("alice"))
    sign_in(bob, web_server.url, token_for("bob"))

    def state_of_alice() -> str:
        with web_server.api() as http:
            answer = http.get("/presence", params={"user_ids": "alice"}, headers=bearer("bob"))
        return answer.json()["presence"]["alice"]["state"]

    eventually(lambda: presence_dot(bob, conversation_id) == "active", what="alice's dot active")
    assert state_of_alice() == "active"

    alice.execute_script(HIDE_PAGE)
    eventually(lambda: state_of_alice() == "idle", what="alice idle while her tab is hidden")
    eventually(lambda: presence_dot(bob, conversation_id) == "idle", what="alice's dot idle")
    screenshot(bob, "presence-idle")

    alice.execute_script(SHOW_PAGE)
    eventually(lambda: state_of_alice() == "active", what="alice active again")
    eventually(lambda: presence_dot(bob, conversation_id) == "active", what="dot active again")
    assert console_problems(alice) == []

    alice.quit()
    eventually(lambda: presence_dot(bob, conversation_id) == "offline", what="alice's dot offline")
    assert state_of_alice() == "offline"
    assert console_problems(bob) == []


def test_blocking_from_a_conversation_hides_presence_from_the_blocked_user(web_server, browser):
    conversation_id = create_conversation(web_server, "alice", ["bob"], None)
    alice = browser()
    sign_in(alice, web_server.url, token_for("alice"), hash_path=f"#/c/{conversation_id}")

    def alice_as_bob_sees_her() -> str:
        with web_server.api() as http:
            answer = http.get("/presence", params={"user_ids": "alice"}, headers=bearer("bob"))
        return answer.json()["presence"]["alice"]["state"]

    eventually(lambda: alice_as_bob_sees_her() == "active", what="alice active for bob")
    block = eventually(lambda: alice.find_element(By.ID, "block"), what="block button")
    eventually(lambda: block.is_displayed(), what="block button shown")
    block.click()
    eventually(lambda: block.get_attribute("data-blocked") == "true", what="blocked")
    with web_server.api() as http:
        assert http.get("/blocks", headers=bearer("alice")).json() == {"user_ids": ["bob"]}
    assert alice_as_bob_sees_her() == "offline"

    block.click()
    eventually(lambda: block.get_attribute("data-blocked") == "false", what="unblocked")
    with web_server.api() as http:
        assert http.get("/blocks", headers=bearer("alice")).json() == {"user_ids": []}
    assert console_problems(alice) == []
