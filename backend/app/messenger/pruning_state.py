from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.app.db import Base


class MaintenanceRun(Base):
    """When a periodic task last completed, kept in the database so restarts neither repeat nor skip it."""

    __tablename__ = "maintenance_runs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_completed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
