"""The Web Push provider signs one VAPID header per push service and reuses it for hours."""

from __future__ import annotations

import jwt
from py_vapid import Vapid

from backend.app.messenger.push.providers.webpush import (
    VAPID_LIFETIME,
    VAPID_REUSE,
    VapidHeaders,
)

START = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def _claims(headers: dict[str, str]) -> dict[str, object]:
    token = headers["Authorization"].removeprefix("vapid t=").split(",k=")[0]
    return jwt.decode(token, options={"verify_signature": False})


def _signer(clock: Clock) -> VapidHeaders:
    vapid = Vapid()
    vapid.generate_keys()
    return VapidHeaders(vapid, "mailto:ops@example.com", clock)


def test_header_names_the_push_service_origin_and_expires_within_24_hours() -> None:
    headers = _signer(Clock()).for_endpoint("https://push.example.com:8443/send/abc?x=1")

    claims = _claims(headers)
    assert claims["aud"] == "https://push.example.com:8443"
    assert claims["sub"] == "mailto:ops@example.com"
    assert claims["exp"] == int(START) + VAPID_LIFETIME <= START + 24 * 3600


def test_pushes_to_one_service_reuse_its_header_until_it_nears_expiry() -> None:
    clock = Clock()
    signer = _signer(clock)
    first = signer.for_endpoint("https://push.example.com/a")

    clock.now = START + VAPID_REUSE - 1
    assert signer.for_endpoint("https://push.example.com/b") is first
    clock.now = START + VAPID_REUSE
    renewed = signer.for_endpoint("https://push.example.com/a")

    assert renewed is not first
    assert _claims(renewed)["exp"] == int(clock.now) + VAPID_LIFETIME


def test_each_push_service_gets_a_header_for_its_own_audience() -> None:
    signer = _signer(Clock())

    mozilla = signer.for_endpoint("https://updates.push.services.mozilla.com/wpush/v2/x")
    google = signer.for_endpoint("https://fcm.googleapis.com/fcm/send/y")

    assert _claims(mozilla)["aud"] == "https://updates.push.services.mozilla.com"
    assert _claims(google)["aud"] == "https://fcm.googleapis.com"
