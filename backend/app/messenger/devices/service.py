"""Device registry: registration upsert, removal, listings and statistics.

Functions take the session and explicit arguments and never commit.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, and_, delete, func, literal_column, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.messenger.devices.models import PLATFORMS, PROVIDERS, DeviceToken
from backend.app.messenger.devices.validation import _APNS_TOKEN, ParsedToken
from backend.app.messenger.push.service import stop_pending_pushes

# The pruning clock: the later of the last registration and the last successful push.
# Spelled exactly as the expression index `ix_device_tokens_last_activity`.
LAST_ACTIVITY = func.greatest(DeviceToken.updated_at, DeviceToken.last_used_at)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, slots=True)
class Registration:
    device_id: int
    created: bool


async def register_device(
    session: AsyncSession,
    *,
    user_id: str,
    parsed: ParsedToken,
    platform: str,
    provider: str,
    device_name: str | None,
    max_active_devices: int,
    app_id: str = "default",
) -> Registration:
    """Insert the token, or take it over if known (any owner): one statement, race-free.

    Re-registering reactivates the device and resets its pruning clock. Past
    `max_active_devices` the user's least recently used devices are deactivated. A token
    taken over from another user stops every push still pending for that previous owner.
    """
    # Serialise one user's registrations so the device cap holds under concurrency.
    await session.execute(
        select(func.pg_advisory_xact_lock(func.hashtextextended(f"devices:{user_id}", 0)))
    )
    digest = token_hash(parsed.token)
    previous_owner = (
        await session.execute(
            select(DeviceToken.id, DeviceToken.user_id)
            .where(DeviceToken.token_hash == digest)
            .with_for_update()
        )
    ).one_or_none()
    values: dict[str, Any] = {
        "user_id": user_id,
        "app_id": app_id,
        "token": parsed.token,
        "token_hash": digest,
        "web_push_p256dh": parsed.p256dh,
        "web_push_auth": parsed.auth,
        "platform": platform,
        "provider": provider,
        "device_name": device_name,
    }
    statement = insert(DeviceToken).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[DeviceToken.token_hash],
        set_={
            **{k: statement.excluded[k] for k in values if k not in ("token", "token_hash")},
            "is_active": True,
            "deactivated_at": None,
            "updated_at": func.now(),
        },
    ).returning(DeviceToken.id, literal_column("xmax = 0").label("created"))
    row = (await session.execute(statement)).one()
    if previous_owner is not None and previous_owner.user_id != user_id:
        await stop_pending_pushes(
            session, device_ids=[row.id], reason="token registered by another user"
        )
    await _enforce_active_cap(session, user_id=user_id, keep=max_active_devices)
    return Registration(device_id=row.id, created=row.created)


async def _enforce_active_cap(session: AsyncSession, *, user_id: str, keep: int) -> None:
    beyond_cap = (
        select(DeviceToken.id)
        .where(DeviceToken.user_id == user_id, DeviceToken.is_active)
        .order_by(LAST_ACTIVITY.desc(), DeviceToken.id.desc())
        .offset(keep)
    )
    await session.execute(
        update(DeviceToken)
        .where(DeviceToken.id.in_(beyond_cap.scalar_subquery()))
        .values(is_active=False, deactivated_at=func.now())
    )


async def unregister_device(session: AsyncSession, *, user_id: str, token: str) -> bool:
    """Delete the caller's device; someone else's token is indistinguishable from an unknown one."""
    matches = [and_(DeviceToken.token_hash == token_hash(token), DeviceToken.token == token)]
    if _APNS_TOKEN.fullmatch(token) and token != token.lower():
        # APNs tokens are stored lower-cased: accept the token in the case it was registered in.
        lowered = token.lower()
        matches.append(
            and_(
                DeviceToken.token_hash == token_hash(lowered),
                DeviceToken.token == lowered,
                DeviceToken.provider == "apns",
            )
        )
    result = await session.execute(
        delete(DeviceToken).where(or_(*matches), DeviceToken.user_id == user_id)
    )
    return result.rowcount > 0


async def list_user_devices(session: AsyncSession, *, user_id: str) -> list[DeviceToken]:
    result = await session.scalars(
        select(DeviceToken).where(DeviceToken.user_id == user_id).order_by(DeviceToken.id)
    )
    return list(result)


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Opaque to clients; raises ValueError for anything we did not hand out."""
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    prefix, _, value = raw.partition(":")
    if prefix != "id" or not value.isascii() or not value.isdigit() or int(value) >= 2**63:
        raise ValueError("invalid cursor")  # ids are BIGINT: a larger value would fail in SQL
    return int(value)


async def admin_list_devices(
    session: AsyncSession,
    *,
    user_id: str | None,
    platform: str | None,
    provider: str | None,
    is_active: bool | None,
    limit: int,
    after_id: int | None,
) -> tuple[list[DeviceToken], int | None]:
    """Keyset pagination on the id: pages never repeat or skip rows, whatever is inserted meanwhile."""
    query: Select[tuple[DeviceToken]] = (
        select(DeviceToken).order_by(DeviceToken.id).limit(limit + 1)
    )
    conditions = [
        condition
        for condition in (
            DeviceToken.user_id == user_id if user_id is not None else None,
            DeviceToken.platform == platform if platform is not None else None,
            DeviceToken.provider == provider if provider is not None else None,
            DeviceToken.is_active.is_(is_active) if is_active is not None else None,
            DeviceToken.id > after_id if after_id is not None else None,
        )
        if condition is not None
    ]
    rows = list(await session.scalars(query.where(and_(True, *conditions))))
    next_id = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_id


IDLE_BUCKETS_DAYS = (30, 60, 90)


async def device_stats(session: AsyncSession) -> dict[str, Any]:
    """All counts in one scan."""
    now = func.now()
    columns = {
        "total": func.count(),
        "active": func.count().filter(DeviceToken.is_active),
        **{f"provider_{p}": func.count().filter(DeviceToken.provider == p) for p in PROVIDERS},
        **{f"platform_{p}": func.count().filter(DeviceToken.platform == p) for p in PLATFORMS},
        **{
            f"idle_{days}": func.count().filter(
                DeviceToken.is_active, now - timedelta(days=days) > LAST_ACTIVITY
            )
            for days in IDLE_BUCKETS_DAYS
        },
    }
    row = (await session.execute(select(*(c.label(k) for k, c in columns.items())))).one()._mapping
    return {
        "total": row["total"],
        "active": row["active"],
        "inactive": row["total"] - row["active"],
        "by_provider": {p: row[f"provider_{p}"] for p in PROVIDERS},
        "by_platform": {p: row[f"platform_{p}"] for p in PLATFORMS},
        "idle_over_days": {str(d): row[f"idle_{d}"] for d in IDLE_BUCKETS_DAYS},
    }


async def active_devices_by_app(session: AsyncSession) -> dict[tuple[str, str], int]:
    """Active devices per (provider, app_id): one grouped count."""
    rows = await session.execute(
        select(DeviceToken.provider, DeviceToken.app_id, func.count())
        .where(DeviceToken.is_active)
        .group_by(DeviceToken.provider, DeviceToken.app_id)
    )
    return {(provider, app_id): count for provider, app_id, count in rows}


def users_with_active_devices_after(after_user_id: str | None, limit: int) -> Select[tuple[str]]:
    """The next `limit` users (user-id order, keyset) holding an active device: broadcast audiences."""
    query = select(DeviceToken.user_id.label("user_id")).where(DeviceToken.is_active).distinct()
    if after_user_id is not None:
        query = query.where(DeviceToken.user_id > after_user_id)
    return query.order_by(DeviceToken.user_id).limit(limit)
