"""aioapns on one long-lived HTTP/2 connection: what our transport (`apns_transport.py`)
fixes in it, over the real wire against the APNs emulator."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from backend.app.config import Settings
from backend.app.messenger.push.apps import ApnsCredentials, Transport, default_apps
from backend.app.messenger.push.payloads import Notification
from backend.app.messenger.push.providers.apns import ApnsProvider
from backend.app.messenger.push.providers.base import Target, Verdict
from backend.devtools.emulators import apns
from backend.devtools.providers import Providers

NOTIFICATION = Notification(title="t", body="b", data={})
REGISTERED = datetime.now(UTC) - timedelta(days=1)  # before any 410 the emulator dates


@pytest.fixture
async def provider(providers: Providers) -> AsyncIterator[ApnsProvider]:
    settings = Settings(_env_file=None, **providers.settings())  # type: ignore[call-arg]
    default_apns = next(a for a in default_apps(settings) if a.provider == "apns")
    assert isinstance(default_apns.credentials, ApnsCredentials)
    provider = ApnsProvider("default", default_apns.credentials, Transport.from_settings(settings))
    try:
        yield provider
    finally:
        await provider.close()


async def send_all(provider: ApnsProvider, tokens: list[str]) -> list[Verdict]:
    semaphore = asyncio.Semaphore(100)

    async def send(token: str) -> Verdict:
        async with semaphore:
            return (await provider.send(Target(1, token, REGISTERED), NOTIFICATION)).outcome

    return await asyncio.gather(*(send(t) for t in tokens))


async def test_apns_keeps_answering_after_thousands_of_error_bodies(
    provider: ApnsProvider, providers: Providers
) -> None:
    """aioapns never returns HTTP/2 window credit; without our fix sends hang after ~64 KiB
    of error bodies on one connection."""
    dead = [secrets.token_hex(32) for _ in range(2500)]
    for token in dead:
        providers.apns.always(token, apns.reply(410, "Unregistered"))

    assert set(await send_all(provider, dead)) == {Verdict.TOKEN_DEAD}
    assert await send_all(provider, [secrets.token_hex(32)]) == [Verdict.DELIVERED]


async def test_answered_pushes_leave_nothing_behind_on_the_connection(
    provider: ApnsProvider, providers: Providers
) -> None:
    """aioapns drops a stream's bookkeeping only when an error body arrives: a connection
    that delivered a million pushes kept a million entries."""
    dead = [secrets.token_hex(32) for _ in range(50)]
    for token in dead:
        providers.apns.always(token, apns.reply(410, "Unregistered"))
    healthy = [secrets.token_hex(32) for _ in range(250)]

    verdicts = await send_all(provider, healthy + dead)

    assert verdicts == [Verdict.DELIVERED] * 250 + [Verdict.TOKEN_DEAD] * 50
    connections = provider._client.pool.connections
    assert connections
    for connection in connections:
        assert (connection.request_streams, connection.requests, connection.request_statuses) == (
            {},
            {},
            {},
        )
