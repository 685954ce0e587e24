from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Identity, Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.app.db import Base


class DigestRun(Base):
    """A digest that was sent. The partial unique index on (user, local date) for scheduled
    digests is what makes "at most one per user per local day" hold across instances and
    restarts; `listed_until` is the newest item it listed (the next digest needs newer ones).
    Digests sent by hand (`messenger digest --user`) are recorded too but do not use up the day.
    """

    __tablename__ = "digest_runs"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64))
    local_date: Mapped[date] = mapped_column(Date)
    scheduled: Mapped[bool] = mapped_column(Boolean)
    listed_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index(
            "uq_digest_runs_user_scheduled_day",
            "user_id",
            "local_date",
            unique=True,
            postgresql_where=text("scheduled"),
        ),
        Index("ix_digest_runs_user_latest", "user_id", text("id DESC")),
    )
