"""The Web Push transport: an aiohttp session that trusts `WEB_PUSH_CA_FILE`, follows no
redirects and connects to no loopback/private address the allow-list does not name, checked
on the addresses the host name resolves to at send time (a DNS-rebinding guard: the check at
registration alone would trust whatever the name points at later)."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult


class AddressRefused(aiohttp.ClientConnectionError):
    """The host resolved only to addresses we will not connect to."""


def _private(address: str) -> bool:
    return not ipaddress.ip_address(address.split("%", 1)[0]).is_global


def named_private_hosts(allowlist: tuple[str, ...]) -> frozenset[str]:
    """Hosts the allow-list names explicitly (only those may be loopback/private)."""
    return frozenset(
        host.lower() for prefix in allowlist if (host := urlsplit(prefix).hostname) is not None
    )


def address_allowed(host: str, address: str, named: frozenset[str]) -> bool:
    """Public addresses always; a private one only when the allow-list names that very
    address, or names this host and the host is itself a local name (`localhost`)."""
    if not _private(address):
        return True
    host = host.lower()
    return address in named or (host in named and host in ("localhost",))


class GuardedResolver(AbstractResolver):
    def __init__(self, allowlist: tuple[str, ...], inner: AbstractResolver | None = None) -> None:
        self._named = named_private_hosts(allowlist)
        self._inner = inner or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if address_allowed(host, r["host"], self._named)]
        if not allowed:
            raise AddressRefused(f"{host} resolves only to addresses outside the allow-list")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


class NoRedirectSession:
    """What pywebpush calls (`post`), with redirects off: a 3xx comes back as an answer."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    def post(self, url: str, **kwargs: Any) -> Any:
        return self._session.post(url, allow_redirects=False, **kwargs)

    async def close(self) -> None:
        await self._session.close()


def web_push_session(
    *, ca_file: str, allowlist: tuple[str, ...], connection_limit: int
) -> NoRedirectSession:
    ssl_context = ssl.create_default_context()
    if ca_file:
        ssl_context.load_verify_locations(cafile=ca_file)
    connector = aiohttp.TCPConnector(
        ssl=ssl_context,
        limit=connection_limit,
        ttl_dns_cache=60,
        resolver=GuardedResolver(allowlist),
    )
    return NoRedirectSession(aiohttp.ClientSession(connector=connector))
