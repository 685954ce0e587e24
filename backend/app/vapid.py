"""Base64url and VAPID key helpers: the one encoding every Web Push key uses (RFC 8291/8292).

Shared by `messenger vapid-keys`, the dev mode, the Web Push emulator, the tests and the
benchmarks, so the encoding is spelled once.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(raw: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Inverse of :func:`b64url`; tolerates padding and the standard alphabet."""
    text = text.strip().replace("+", "-").replace("/", "_").rstrip("=")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The uncompressed P-256 point (65 bytes) a PushSubscription / VAPID `k` carries."""
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def generate_vapid_keys() -> tuple[str, str]:
    """A fresh VAPID key pair as (private, public), both base64url as `.env` expects."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    return b64url(private), b64url(public_key_bytes(key))
