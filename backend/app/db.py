"""Database engine, ORM base and the per-request session.

Services receive an `AsyncSession` and never commit; the request dependency
commits when the endpoint returns normally and rolls back otherwise, before
the response is sent (FastAPI's function-scoped dependency).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from backend.app.config import sqlalchemy_url
from backend.app.runtime import runtime_of

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    # hide_parameters: SQL errors (and the tracebacks that log them) never carry bound values
    # such as message content or device tokens.
    return create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        hide_parameters=True,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def autocommit(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose every statement is its own transaction, committed by PostgreSQL as the
    statement ends: the locks of a one-statement write never wait for this process to send
    COMMIT (a busy event loop kept such writes `idle in transaction` for a second)."""
    async with maker() as session:
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed if the endpoint returns, rolled back if it raises."""
    async with runtime_of(request).sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


# What routers declare: a session whose transaction commits before the response is sent.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
