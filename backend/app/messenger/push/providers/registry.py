"""Builds one adapter per configured (app, provider), each from its own slice of settings,
with the app's circuit breaker beside it; closes them all at shutdown."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from backend.app.messenger.push.apps import (
    ApnsCredentials,
    FcmCredentials,
    PushApp,
    Transport,
    WebPushCredentials,
)
from backend.app.messenger.push.breaker import CircuitBreaker
from backend.app.messenger.push.providers.base import PushProvider
from backend.app.messenger.push.vocabulary import Provider
from backend.app.metrics import PUSH_CIRCUIT_OPEN

log = logging.getLogger(__name__)


@dataclass(slots=True)
class AppChannel:
    """One app of one provider: its adapter (None when unconfigured or broken) and breaker."""

    app: PushApp
    provider: PushProvider | None
    breaker: CircuitBreaker

    @property
    def configured(self) -> bool:
        return self.provider is not None

    def publish_state(self) -> None:
        PUSH_CIRCUIT_OPEN.labels(self.app.provider.value, self.app.app_id).set(
            0 if self.breaker.state == "closed" else 1
        )


def _build(app: PushApp, transport: Transport) -> PushProvider | None:
    credentials = app.credentials
    if credentials is None:
        return None
    try:
        if isinstance(credentials, FcmCredentials):
            from backend.app.messenger.push.providers.fcm import FcmProvider

            return FcmProvider(app.app_id, credentials, transport)
        if isinstance(credentials, ApnsCredentials):
            from backend.app.messenger.push.providers.apns import ApnsProvider

            return ApnsProvider(app.app_id, credentials, transport)
        if isinstance(credentials, WebPushCredentials):
            from backend.app.messenger.push.providers.webpush import WebPushProvider

            return WebPushProvider(app.app_id, credentials, transport)
    except Exception:
        log.exception(
            "%s app %r is configured but cannot start; its devices will not be pushed",
            app.provider,
            app.app_id,
        )
    return None


class ProviderRegistry:
    def __init__(self, channels: dict[tuple[Provider, str], AppChannel]) -> None:
        self.channels = channels

    @classmethod
    def build(cls, apps: list[PushApp], transport: Transport) -> ProviderRegistry:
        """Must run inside the event loop (the adapters' clients bind to it)."""
        channels = {
            (app.provider, app.app_id): AppChannel(app, _build(app, transport), CircuitBreaker())
            for app in apps
        }
        registry = cls(channels)
        for channel in channels.values():
            channel.publish_state()
        log.info(
            "push apps: %s",
            ", ".join(
                f"{p}/{a}={'on' if c.configured else 'off'}" for (p, a), c in channels.items()
            ),
        )
        return registry

    def channel(self, provider: str, app_id: str) -> AppChannel | None:
        try:
            return self.channels.get((Provider(provider), app_id))
        except ValueError:
            return None

    def knows(self, provider: str, app_id: str) -> bool:
        """May a device name this app? `default` always; others only when configured."""
        channel = self.channel(provider, app_id)
        return app_id == "default" or (channel is not None and channel.app.credentials is not None)

    def open_circuits(self) -> list[dict[str, str | None]]:
        return [
            {
                "app_id": c.app.app_id,
                "provider": c.app.provider.value,
                "last_error": c.breaker.last_error,
            }
            for c in self.channels.values()
            if c.breaker.state != "closed"
        ]

    async def close(self) -> None:
        for channel in self.channels.values():
            if channel.provider is not None:
                try:
                    await channel.provider.close()
                except Exception:
                    log.exception("closing %s/%s failed", channel.app.provider, channel.app.app_id)
