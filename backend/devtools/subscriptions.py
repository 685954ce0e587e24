"""Browser-side Web Push material for clients of the API (tests, benchmarks, dev mode)."""

from __future__ import annotations

import json
import secrets

from cryptography.hazmat.primitives.asymmetric import ec

from backend.app.vapid import b64url, public_key_bytes


def p256dh_key() -> str:
    """A fresh browser-side P-256 public key, as a PushSubscription carries it."""
    return b64url(public_key_bytes(ec.generate_private_key(ec.SECP256R1())))


def web_push_subscription(
    endpoint: str | None = None, *, p256dh: str | None = None, auth: str | None = None
) -> str:
    """The `PushSubscription` JSON a browser hands out: a real key pair and 16 random auth bytes.

    The default endpoint is on the default allow-list (Chrome's push service) and unique.
    """
    if endpoint is None:
        endpoint = f"https://fcm.googleapis.com/fcm/send/{secrets.token_urlsafe(24)}"
    keys = {
        "p256dh": p256dh if p256dh is not None else p256dh_key(),
        "auth": auth if auth is not None else b64url(secrets.token_bytes(16)),
    }
    return json.dumps({"endpoint": endpoint, "keys": keys})
