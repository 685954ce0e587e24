"""Token format checks per provider, and the Web Push endpoint allow-list (an SSRF guard:
a registered endpoint is a URL this server will POST to)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from backend.app.edge.text import UnsafeInput, loads_checked
from backend.app.messenger.devices.models import VALID_COMBINATIONS

_APNS_TOKEN = re.compile(r"[0-9a-fA-F]{64,200}")
_FCM_TOKEN = re.compile(r"[A-Za-z0-9_:\-.]{32,4096}")
MAX_ENDPOINT_LENGTH = 2048


class TokenError(ValueError):
    """A client mistake in a device token; the message names the problem."""


@dataclass(frozen=True, slots=True)
class ParsedToken:
    token: str  # the stored identity: the token itself, or the Web Push endpoint
    p256dh: str | None = None
    auth: str | None = None


def check_combination(provider: str, platform: str) -> None:
    if platform not in VALID_COMBINATIONS[provider]:
        allowed = ", ".join(VALID_COMBINATIONS[provider])
        raise TokenError(
            f"provider '{provider}' cannot serve platform '{platform}' (allowed: {allowed})"
        )


def parse_token(provider: str, raw: str, allowlist: tuple[str, ...]) -> ParsedToken:
    if provider == "apns":
        if not _APNS_TOKEN.fullmatch(raw):
            raise TokenError("APNs device_token must be a hex string of 64-200 characters")
        return ParsedToken(raw.lower())
    if provider == "fcm":
        if not _FCM_TOKEN.fullmatch(raw):
            raise TokenError(
                "FCM device_token must be 32-4096 characters of letters, digits, '_', ':', '-', '.'"
            )
        return ParsedToken(raw)
    return _parse_subscription(raw, allowlist)


def _b64url_decode(value: object, field: str) -> bytes:
    if not isinstance(value, str) or not value or not re.fullmatch(r"[A-Za-z0-9_\-]+=*", value):
        raise TokenError(f"keys.{field} must be a base64url string")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError(f"keys.{field} is not valid base64url") from exc


def _parse_subscription(raw: str, allowlist: tuple[str, ...]) -> ParsedToken:
    try:
        subscription = loads_checked(raw, max_depth=4)
    except UnsafeInput as exc:
        raise TokenError(f"web_push device_token: {exc}") from exc
    except ValueError as exc:
        raise TokenError("web_push device_token must be the PushSubscription JSON") from exc
    if not isinstance(subscription, dict):
        raise TokenError("web_push device_token must be a JSON object")
    endpoint = subscription.get("endpoint")
    keys = subscription.get("keys")
    if not isinstance(endpoint, str) or not endpoint:
        raise TokenError("web_push subscription needs an 'endpoint' URL")
    if not isinstance(keys, dict):
        raise TokenError("web_push subscription needs 'keys' with 'p256dh' and 'auth'")
    p256dh = _b64url_decode(keys.get("p256dh"), "p256dh")
    auth = _b64url_decode(keys.get("auth"), "auth")
    if len(p256dh) != 65 or p256dh[0] != 4:
        raise TokenError("keys.p256dh must be a 65-byte uncompressed P-256 point")
    _check_point_on_curve(p256dh)
    if len(auth) != 16:
        raise TokenError("keys.auth must be 16 bytes")
    check_endpoint(endpoint, allowlist)
    return ParsedToken(endpoint, p256dh=keys["p256dh"].rstrip("="), auth=keys["auth"].rstrip("="))


def _check_point_on_curve(point: bytes) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as exc:
        raise TokenError("keys.p256dh is not a point on the P-256 curve") from exc


def _is_private_host(host: str) -> bool:
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def _prefix_matches(endpoint: str, prefix: str) -> bool:
    """`https://*.example.com/` matches any subdomain of example.com (not example.com itself)."""
    if "://*." not in prefix:
        return endpoint.startswith(prefix)
    scheme, rest = prefix.split("://*.", 1)
    suffix_host, _, path = rest.partition("/")
    parts = urlsplit(endpoint)
    host = parts.netloc.lower()
    return (
        parts.scheme == scheme
        and host.endswith("." + suffix_host.lower())
        and (parts.path or "/").startswith("/" + path)
    )


def check_endpoint(endpoint: str, allowlist: tuple[str, ...]) -> None:
    if len(endpoint) > MAX_ENDPOINT_LENGTH:
        raise TokenError(f"web_push endpoint is longer than {MAX_ENDPOINT_LENGTH} characters")
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.hostname:
        raise TokenError("web_push endpoint must be an https URL")
    if parts.username or parts.password:
        raise TokenError("web_push endpoint must not carry credentials")
    matching = [p for p in allowlist if _prefix_matches(endpoint, p)]
    if not matching:
        raise TokenError("web_push endpoint is not on WEB_PUSH_ENDPOINT_ALLOWLIST")
    # Loopback and private addresses only when a prefix names that very host.
    if _is_private_host(parts.hostname) and not any(
        urlsplit(p).hostname == parts.hostname for p in matching
    ):
        raise TokenError("web_push endpoint points at a private or loopback address")


def token_preview(provider: str, token: str) -> str:
    """What admins may see of a token: 8 characters of it, or of the Web Push endpoint's host."""
    visible = (urlsplit(token).hostname or "") if provider == "web_push" else token
    return visible[:8] + "…"
