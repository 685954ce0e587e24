from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.app.db import Base
from backend.app.messenger.push.vocabulary import (
    VALID_COMBINATIONS,
    Platform,
    Provider,
    sql_in,
)

PLATFORMS = tuple(p.value for p in Platform)
PROVIDERS = tuple(p.value for p in Provider)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class DeviceToken(Base):
    """One push address of one user.

    `token` is the FCM registration token, the APNs device token, or, for Web Push,
    the subscription endpoint URL (its identity); the subscription's keys sit beside it.
    Uniqueness is enforced on `token_hash` = SHA-256 of the token (computed by the
    service) because FCM tokens may be up to 4 KiB, more than a btree index entry holds.
    """

    __tablename__ = "device_tokens"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64))
    token: Mapped[str] = mapped_column(Text)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)  # sha256(token)
    web_push_p256dh: Mapped[str | None] = mapped_column(String(128))
    web_push_auth: Mapped[str | None] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(16))
    # Which push app (set of credentials, see push/apps.py) the token belongs to.
    app_id: Mapped[str] = mapped_column(String(64), server_default=text("'default'"))
    device_name: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(sql_in("platform", Platform), name="platform"),
        CheckConstraint(sql_in("provider", Provider), name="provider"),
        CheckConstraint(
            " OR ".join(
                f"(provider = '{p.value}' AND {_in('platform', ps)})"
                for p, ps in VALID_COMBINATIONS.items()
            ),
            name="provider_platform",
        ),
        CheckConstraint(
            "(provider = 'web_push') = (web_push_p256dh IS NOT NULL AND web_push_auth IS NOT NULL)",
            name="web_push_keys",
        ),
        CheckConstraint("is_active OR deactivated_at IS NOT NULL", name="deactivated_at"),
        # Active devices of a set of users (push fan-out), and a user's own list.
        Index("ix_device_tokens_user_id_active", "user_id", "is_active"),
        # Admin filters page by id within a provider/platform.
        Index("ix_device_tokens_provider_platform_id", "provider", "platform", "id"),
        # Pruning clock: the later of last registration and last successful push.
        Index(
            "ix_device_tokens_last_activity",
            func.greatest(text("updated_at"), text("last_used_at")),
        ),
        Index(
            "ix_device_tokens_deactivated_at",
            "deactivated_at",
            postgresql_where=text("NOT is_active"),
        ),
    )
