"""The web client at /app/, driven in real headless Chromium against the real stack."""

from __future__ import annotations

import json
import secrets

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from backend.tests.browser.conftest import WebServer, token_for
from backend.tests.browser.pages import (
    async_js,
    console_problems,
    eventually,
    screenshot,
    sign_in,
)
from backend.tests.conftest import bearer, web_push_subscription


def create_conversation(server: WebServer, owner: str, others: list[str], title: str | None) -> str:
    with server.api() as http:
        response = http.post(
            "/conversations",
            json={"title": title, "participant_ids": others},
            headers=bearer(owner),
        )
        response.raise_for_status()
        return response.json()["id"]


def send(server: WebServer, sender: str, conversation_id: str, content: str) -> None:
    with server.api() as http:
        http.post(
            f"/conversations/{conversation_id}/messages",
            json={"content": content},
            headers=bearer(sender),
        ).raise_for_status()


def unread_badge(driver, conversation_id: str) -> str:
    link = driver.find_element(By.CSS_SELECTOR, f'a[data-conversation-id="{conversation_id}"]')
    return link.find_element(By.CSS_SELECTOR, ".badge.unread").get_attribute("data-unread")


def open_conversation(driver, conversation_id: str) -> None:
    """Click the conversation in the list (re-found on each try: the list re-renders live)."""

    def click() -> bool:
        css = f'a[data-conversation-id="{conversation_id}"]'
        driver.find_element(By.CSS_SELECTOR, css).click()
        return True

    eventually(click, what="conversation link clicked")


def presence_dot(driver, conversation_id: str) -> str:
    link = driver.find_element(By.CSS_SELECTOR, f'a[data-conversation-id="{conversation_id}"]')
    return link.find_element(By.CSS_SELECTOR, ".dot").get_attribute("data-state")


def bubbles(driver) -> list[str]:
    return [el.text for el in driver.find_elements(By.CSS_SELECTOR, "#messages .bubble .content")]


def test_two_users_chat_live_with_unread_counts_and_presence(web_server, browser):
    review = create_conversation(web_server, "carol", ["alice", "dave"], "Design review")
    send(web_server, "carol", review, "Mockups are in the shared folder")
    send(web_server, "carol", review, "Feedback by Thursday, please")
    conversation_id = create_conversation(web_server, "alice", ["bob"], "Launch plan")
    send(web_server, "alice", conversation_id, "Morning Bob, are we on for Friday?")
    alice, bob = browser(), browser()
    sign_in(alice, web_server.url, token_for("alice", name="Alice"))
    sign_in(bob, web_server.url, token_for("bob", name="Bob"), hash_path=f"#/c/{conversation_id}")
    eventually(
        lambda: "Morning Bob" in " ".join(bubbles(bob)), what="history in bob's conversation"
    )

    # Bob types; Alice (on her list) sees the unread count rise and Bob online.
    composer = eventually(lambda: bob.find_element(By.ID, "composer"), what="composer")
    composer.send_keys("Yes! Friday 10:00 works." + Keys.ENTER)
    eventually(lambda: unread_badge(alice, conversation_id) == "1", what="alice's unread count")
    eventually(lambda: presence_dot(alice, conversation_id) == "active", what="bob's dot active")
    # Bob's optimistic bubble was confirmed by the server's ack (it now carries the id).
    eventually(
        lambda: bob.find_element(
            By.CSS_SELECTOR, "#messages .bubble.mine:not(.pending)"
        ).get_attribute("data-id"),
        what="acked bubble",
    )
    screenshot(alice, "client-list-unread")

    # Alice opens the conversation: history shown, unread cleared; live messages both ways.
    open_conversation(alice, conversation_id)
    eventually(
        lambda: "Yes! Friday 10:00 works." in bubbles(alice), what="bob's message in alice's chat"
    )
    eventually(lambda: unread_badge(alice, conversation_id) == "0", what="alice's unread cleared")
    bob.find_element(By.ID, "composer").send_keys("I'll book the room." + Keys.ENTER)
    eventually(
        lambda: "I'll book the room." in bubbles(alice), timeout=5, what="live message at alice"
    )
    alice.find_element(By.ID, "composer").send_keys("Perfect, thanks!" + Keys.ENTER)
    eventually(lambda: "Perfect, thanks!" in bubbles(bob), timeout=5, what="live message at bob")
    screenshot(alice, "client-conversation")
    screenshot(bob, "client-conversation-bob")
    assert console_problems(alice) == []
    assert console_problems(bob) == []

    # Bob closes his tab: Alice's presence dot for him goes offline.
    bob.quit()
    eventually(lambda: presence_dot(alice, conversation_id) == "offline", what="bob's dot offline")
    assert console_problems(alice) == []


def test_history_scrolls_back_with_before(web_server, browser):
    conversation_id = create_conversation(web_server, "alice", ["bob"], None)
    for i in range(60):
        send(web_server, "bob", conversation_id, f"message {i}")
    alice = browser()
    sign_in(alice, web_server.url, token_for("alice"), hash_path=f"#/c/{conversation_id}")
    eventually(lambda: len(bubbles(alice)) == 50, what="first page")
    assert bubbles(alice)[-1] == "message 59"
    alice.find_element(By.ID, "load-older").click()
    eventually(lambda: len(bubbles(alice)) == 60, what="older page")
    assert bubbles(alice)[0] == "message 0"
    assert console_problems(alice) == []


def deliver_push(driver, origin: str, payload: dict) -> None:
    """Hand a push message to this origin's service worker through the DevTools protocol
    (Chromium cannot reach a real push service here). The profile is fresh and holds one
    registration; CDP reports its id only as an event, so the first ten ids are tried (a
    push for an id that does not exist is dropped; Chromium 156 numbers past 2)."""
    driver.execute_cdp_cmd("ServiceWorker.enable", {})
    for registration_id in map(str, range(10)):
        driver.execute_cdp_cmd(
            "ServiceWorker.deliverPushMessage",
            {"origin": origin, "registrationId": registration_id, "data": json.dumps(payload)},
        )


SHOWN = """
const registration = await navigator.serviceWorker.ready;
const shown = await registration.getNotifications();
return shown.map((n) => ({title: n.title, body: n.body, tag: n.tag, url: n.data && n.data.url}));
"""


def test_service_worker_shows_pushes_and_closes_them_when_read(web_server, browser):
    conversation_id = create_conversation(web_server, "alice", ["bob"], "Launch plan")
    alice = browser()
    sign_in(alice, web_server.url, token_for("alice"))
    scope = async_js(alice, "return (await navigator.serviceWorker.ready).scope;")
    assert scope == f"{web_server.url}/app/"
    alice.execute_cdp_cmd(
        "Browser.grantPermissions", {"permissions": ["notifications"], "origin": web_server.url}
    )

    # The payload a message push carries (contract: {"title", "body", "data"}).
    deliver_push(
        alice,
        web_server.url + "/",
        {
            "title": "Bob • Launch plan",
            "body": "Friday works",
            "data": {
                "type": "message.new",
                "conversation_id": conversation_id,
                "message_id": secrets.token_hex(8),
                "sender_id": "bob",
                "unread_total": "1",
            },
        },
    )
    shown = eventually(lambda: async_js(alice, SHOWN), what="notification shown")
    assert shown == [
        {
            "title": "Bob • Launch plan",
            "body": "Friday works",
            "tag": f"conversation:{conversation_id}",
            "url": f"/app/#/c/{conversation_id}",
        }
    ]
    # Headless Chromium cannot click a system notification; the click handler opens the URL
    # the notification carries, and that URL opens the conversation:
    alice.get(web_server.url + shown[0]["url"])
    eventually(
        lambda: alice.find_element(By.ID, "chat-title").text == "Launch plan",
        what="conversation opened",
    )

    # A `conversation.read` push (read on another device) closes it.
    deliver_push(
        alice,
        web_server.url + "/",
        {
            "type": "conversation.read",
            "data": {
                "conversation_id": conversation_id,
                "last_read_message_id": "x",
                "unread_total": "0",
            },
        },
    )
    eventually(lambda: async_js(alice, SHOWN) == [], what="notification closed")
    assert console_problems(alice) == []


def register_devices(server: WebServer) -> None:
    """24 devices across users, providers and platforms, one of them inactive."""
    with server.api() as http:
        for i in range(8):
            user = f"user{i}"
            for body in (
                {
                    "device_token": f"fcm-token-{i}-" + "a" * 40,
                    "platform": "android",
                    "provider": "fcm",
                },
                {"device_token": secrets.token_hex(32), "platform": "ios", "provider": "apns"},
                {
                    "device_token": web_push_subscription(),
                    "platform": "web",
                    "provider": "web_push",
                },
            ):
                http.post(
                    "/devices/register",
                    json={**body, "device_name": f"{user}'s {body['platform']}"},
                    headers=bearer(user),
                ).raise_for_status()


def test_admin_console_charts_real_data_and_pages_the_device_table(web_server, browser):
    register_devices(web_server)
    admin = browser()
    sign_in(admin, web_server.url, token_for("root", name="Admin", admin=True), hash_path="#/admin")
    eventually(lambda: admin.find_element(By.ID, "stat-total").text.startswith("24"), what="totals")
    for chart in ("chart-provider", "chart-platform"):
        values = [
            int(bar.get_attribute("data-value"))
            for bar in admin.find_elements(By.CSS_SELECTOR, f"#{chart} rect.chart-bar")
        ]
        assert values == [8, 8, 8], chart
    assert admin.find_elements(By.CSS_SELECTOR, "#chart-idle rect.chart-bar")
    screenshot(admin, "admin-console")

    def rows() -> list[str]:
        return [r.text for r in admin.find_elements(By.CSS_SELECTOR, "#admin-device-rows tr")]

    first = eventually(lambda: rows() if len(rows()) == 10 else None, what="first page")
    admin.find_element(By.ID, "devices-next").click()
    second = eventually(
        lambda: rows() if len(rows()) == 10 and rows() != first else None, what="second page"
    )
    admin.find_element(By.ID, "devices-next").click()
    eventually(lambda: len(rows()) == 4, what="last page")
    assert admin.find_element(By.ID, "devices-next").get_attribute("disabled") is not None
    admin.find_element(By.ID, "devices-prev").click()
    eventually(lambda: rows() == second, what="back to the second page")
    assert not set(first) & set(second)

    # Filters narrow the table.
    admin.find_element(By.CSS_SELECTOR, "#filter-provider option[value='apns']").click()
    eventually(lambda: len(rows()) == 8 and all("apns" in r for r in rows()), what="apns filter")
    admin.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    screenshot(admin, "admin-devices")
    assert console_problems(admin) == []


PAGES = ("#/", "#/new", "#/inbox", "#/preferences", "#/devices", "#/admin")


def test_every_page_renders_without_console_errors_or_csp_violations(web_server, browser):
    conversation_id = create_conversation(web_server, "alice", ["bob"], "Launch plan")
    send(web_server, "bob", conversation_id, "Hello")
    driver = browser()
    sign_in(driver, web_server.url, token_for("alice", name="Alice", admin=True))
    for page in (*PAGES, f"#/c/{conversation_id}"):
        driver.execute_script("location.hash = arguments[0]", page)
        eventually(lambda: driver.find_element(By.CSS_SELECTOR, "#main > *"), what=f"page {page}")
        eventually(
            lambda: "Loading…" not in driver.find_element(By.ID, "main").text, what=f"{page} loaded"
        )
        name = page.strip("#/").split("/")[0] or "home"
        screenshot(driver, f"page-{name}")
        assert console_problems(driver) == [], page

    driver.get(web_server.url + "/docs")
    eventually(
        lambda: driver.find_element(By.CSS_SELECTOR, ".swagger-ui .opblock"), what="swagger ui"
    )
    screenshot(driver, "docs")
    assert console_problems(driver) == []
    driver.get(web_server.url + "/redoc")
    eventually(lambda: driver.find_element(By.CSS_SELECTOR, "h1"), timeout=30, what="redoc")
    eventually(
        lambda: "Messenger backend" in driver.find_element(By.CSS_SELECTOR, "h1").text,
        what="redoc title",
    )
    screenshot(driver, "redoc")
    assert console_problems(driver) == []

    # Signing in again needs a token: it lives in sessionStorage, not in the URL.
    driver.get(web_server.url + "/app/")
    assert "token" not in driver.current_url


def test_sign_in_refuses_a_bad_token_without_console_noise(web_server, browser):
    driver = browser()
    driver.get(f"{web_server.url}/app/")
    field = eventually(lambda: driver.find_element(By.ID, "token-input"), what="sign-in form")
    field.send_keys("not-a-token")
    driver.find_element(By.ID, "signin").click()
    eventually(
        lambda: "not a JWT" in driver.find_element(By.CSS_SELECTOR, ".signin .error").text,
        what="error",
    )
    screenshot(driver, "signin")
    assert console_problems(driver) == []
