"""Registering one device per provider, as the Android, iOS and web clients would."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from backend.devtools.providers import Providers
from backend.tests.conftest import bearer


@dataclass
class UserDevices:
    fcm_token: str
    apns_token: str
    subscription: dict[str, Any]
    ids: dict[str, int]  # provider -> device_token_id

    @property
    def endpoint(self) -> str:
        return self.subscription["endpoint"]


async def register(client: httpx.AsyncClient, user: str, body: dict[str, Any]) -> int:
    response = await client.post("/devices/register", json=body, headers=bearer(user))
    assert response.status_code in (200, 201), response.text
    return response.json()["device_token_id"]


async def register_all_providers(
    client: httpx.AsyncClient, providers: Providers, user: str
) -> UserDevices:
    fcm_token = "fcm-" + secrets.token_urlsafe(48)
    apns_token = secrets.token_hex(32)
    subscription = providers.webpush.subscribe()
    ids = {
        "fcm": await register(
            client, user, {"device_token": fcm_token, "platform": "android", "provider": "fcm"}
        ),
        "apns": await register(
            client, user, {"device_token": apns_token, "platform": "ios", "provider": "apns"}
        ),
        "web_push": await register(
            client,
            user,
            {"device_token": json.dumps(subscription), "platform": "web", "provider": "web_push"},
        ),
    }
    return UserDevices(fcm_token, apns_token, subscription, ids)


async def metric(root: httpx.AsyncClient, name: str, **labels: str) -> float:
    """Current value of one Prometheus sample from `/metrics` (0 when absent)."""
    text = (await root.get("/metrics")).text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and ",".join(sorted((match.group(1) or "").split(","))).strip(",") == wanted:
            return float(match.group(2))
    return 0.0
