"""Fitting a push under the provider's payload limit, and the message push's text."""

from __future__ import annotations

import json

from backend.app.messenger.push.payloads import ELLIPSIS, cut, fit_body, message_notification


def render(body: str) -> bytes:
    return json.dumps({"body": body}, ensure_ascii=False).encode()


def test_a_short_body_is_rendered_as_it_is() -> None:
    assert fit_body(render, "hello", limit=100) == render("hello")


def test_a_long_body_is_cut_to_fit_and_ends_with_an_ellipsis() -> None:
    rendered = fit_body(render, "é" * 5000, limit=400)
    body = json.loads(rendered)["body"]
    assert len(rendered) <= 400
    assert body.endswith(ELLIPSIS)
    assert len(render(body[:-1] + "é" + ELLIPSIS)) > 400  # as long as fits, not shorter


def test_escaping_heavy_text_still_fits() -> None:
    rendered = fit_body(render, '"\\' * 3000, limit=500)
    assert len(rendered) <= 500


def test_cut_keeps_199_code_points_and_an_ellipsis_past_200() -> None:
    assert cut("x" * 200, 200) == "x" * 200
    assert cut("x" * 201, 200) == "x" * 199 + ELLIPSIS


def test_message_title_joins_sender_and_conversation_title() -> None:
    notification = message_notification(
        sender_name="Alice",
        conversation_title="Team",
        content="hi",
        include_content=False,
        conversation_id="c",
        message_id="m",
        sender_id="alice",
    )
    assert (notification.title, notification.body) == ("Alice • Team", "New message")
