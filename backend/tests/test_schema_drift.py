"""The migrations and the models describe the same schema (Alembic autogenerate finds nothing)."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

import backend.app.messenger.models  # noqa: F401  (every table on Base.metadata)
from backend.app.config import sqlalchemy_url
from backend.app.db import Base, create_engine


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


async def test_migrations_match_the_models(database_url: str) -> None:
    engine = create_engine(sqlalchemy_url(database_url), pool_size=1)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == []
