"""Helpers for the preference, email and digest tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from backend.app.auth import mint_token
from backend.app.config import Settings
from backend.tests.conftest import TEST_JWT_SECRET


def bearer_with_email(user_id: str, email: str | None) -> dict[str, str]:
    """A host-issued token carrying an `email` claim."""
    settings = Settings(_env_file=None, jwt_secret=TEST_JWT_SECRET)  # type: ignore[call-arg]
    return {"Authorization": f"Bearer {mint_token(settings, user_id=user_id, email=email)}"}


async def put_preferences(
    client: httpx.AsyncClient, user_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.put(
        "/notification-preferences", json=body, headers=bearer_with_email(user_id, None)
    )
    assert response.status_code == 200, response.text
    return response.json()


def midday_zone(now: datetime | None = None) -> str:
    """A fixed-offset IANA zone where it is about noon now: "earlier today" and "later today"
    both exist there whatever time the tests run."""
    hour = (now or datetime.now(UTC)).hour
    offset = 12 - hour  # -11 .. 12
    if offset == 0:
        return "UTC"
    return f"Etc/GMT-{offset}" if offset > 0 else f"Etc/GMT+{-offset}"  # POSIX signs are inverted
