"""Which Web Push endpoints and resolved addresses a send may reach (SSRF guard)."""

from __future__ import annotations

import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from backend.app.messenger.devices.validation import TokenError, check_endpoint
from backend.app.messenger.push.providers.webpush_transport import (
    AddressRefused,
    GuardedResolver,
    address_allowed,
    named_private_hosts,
)

PUBLIC = ("https://fcm.googleapis.com/", "https://*.notify.windows.com/")
WITH_LOCAL = (*PUBLIC, "https://127.0.0.1:8443/")


def test_a_public_push_service_endpoint_is_accepted() -> None:
    check_endpoint("https://fcm.googleapis.com/fcm/send/abc", PUBLIC)


def test_a_wildcard_prefix_matches_subdomains_only() -> None:
    check_endpoint("https://wns2-db5p.notify.windows.com/w/?token=x", PUBLIC)
    with pytest.raises(TokenError):
        check_endpoint("https://notify.windows.com/w/", PUBLIC)


def test_an_endpoint_outside_the_list_is_refused() -> None:
    with pytest.raises(TokenError):
        check_endpoint("https://evil.example/push", PUBLIC)


def test_plain_http_is_refused() -> None:
    with pytest.raises(TokenError):
        check_endpoint("http://fcm.googleapis.com/fcm/send/abc", PUBLIC)


def test_a_loopback_endpoint_needs_a_prefix_naming_it() -> None:
    check_endpoint("https://127.0.0.1:8443/push/1", WITH_LOCAL)
    with pytest.raises(TokenError):
        check_endpoint("https://127.0.0.1:9999/push/1", WITH_LOCAL)


def test_public_addresses_are_always_allowed_at_send_time() -> None:
    assert address_allowed("fcm.googleapis.com", "142.250.1.1", named_private_hosts(PUBLIC))


def test_a_public_name_resolving_to_a_private_address_is_refused() -> None:
    named = named_private_hosts(PUBLIC)
    assert not address_allowed("fcm.googleapis.com", "127.0.0.1", named)
    assert not address_allowed("fcm.googleapis.com", "10.1.2.3", named)
    assert not address_allowed("fcm.googleapis.com", "::1", named)


def test_a_private_address_named_by_the_list_is_allowed() -> None:
    assert address_allowed("127.0.0.1", "127.0.0.1", named_private_hosts(WITH_LOCAL))


class Rebinding(AbstractResolver):
    """A name that resolves to loopback at send time (DNS rebinding)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host, host="127.0.0.1", port=port, family=family, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        pass


async def test_the_send_time_resolver_refuses_a_rebound_name() -> None:
    resolver = GuardedResolver(PUBLIC, inner=Rebinding())
    with pytest.raises(AddressRefused):
        await resolver.resolve("fcm.googleapis.com", 443)
