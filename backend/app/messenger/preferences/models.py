from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import Boolean, DateTime, Index, String, Time, func, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.app.db import Base

DEFAULT_DIGEST_TIME = time(8, 0)
DEFAULT_DIGEST_TIMEZONE = "UTC"


class NotificationPreference(Base):
    """One row per user who changed a preference or whose JWT carried an `email` claim.

    No row means the defaults. `claim_email` is the `email` claim of the user's latest
    authenticated call; `email_address` (set by the user) wins over it.
    `digest_next_at` is the next UTC instant the digest is due (null when the digest is off):
    the scheduler claims due rows from a partial index instead of evaluating every time zone.
    """

    __tablename__ = "notification_preferences"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    push: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    email: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    email_address: Mapped[str | None] = mapped_column(String(254))
    claim_email: Mapped[str | None] = mapped_column(String(254))
    quiet_start: Mapped[time | None] = mapped_column(Time)
    quiet_end: Mapped[time | None] = mapped_column(Time)
    quiet_timezone: Mapped[str | None] = mapped_column(String(64))
    digest_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    digest_time: Mapped[time] = mapped_column(Time, server_default=text("'08:00'"))
    digest_timezone: Mapped[str] = mapped_column(String(64), server_default=text("'UTC'"))
    digest_next_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        Index(
            "ix_notification_preferences_digest_due",
            "digest_next_at",
            postgresql_where=text("digest_enabled"),
        ),
    )
