"""Database engine, ORM base and the per-request session.

Services receive an `AsyncSession` and never commit; the request dependency
commits when the endpoint returns normally and rolls back otherwise, before
the response is sent (FastAPI's function-scoped dependency).
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import MetaData, event
from sqlalchemy.exc import DisconnectionError
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


# A pooled connection idle for longer than this is pinged before use (see `create_engine`).
PING_AFTER_IDLE_SECONDS = 2.0


def create_engine(url: str, *, pool_size: int = 10, overflow: bool = True) -> AsyncEngine:
    """The engine of the request path (and, with a smaller pool, of background work).

    `overflow=False` (the request path): a fixed pool, requests beyond it wait. Overflow
    connections are closed as soon as they come back while the pool is full, which under
    load meant a new connection (TLS probe, type introspection, statements prepared again)
    every few requests.

    Connections are checked with a ping only after they sat idle in the pool: under load a
    connection is reused within milliseconds, and a ping per checkout (`pool_pre_ping`) was
    a round trip per request, a tenth of a send's CPU. A connection that dies while busy
    fails its statement; SQLAlchemy then invalidates the pool's older connections.
    """
    # hide_parameters: SQL errors (and the tracebacks that log them) never carry bound values
    # such as message content or device tokens.
    engine = create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size if overflow else 0,
        hide_parameters=True,
    )
    _ping_connections_after_idle(engine)
    return engine


def _ping_connections_after_idle(engine: AsyncEngine) -> None:
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def remember_checkin(dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out another (a fresh one if needed).
            raise DisconnectionError("connection failed its ping after idling") from exc


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def autocommit(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose every statement is its own transaction, committed by PostgreSQL as the
    statement ends: no BEGIN/COMMIT round trips, and the locks of a one-statement write never
    wait for this process to send COMMIT (a busy event loop kept such writes `idle in
    transaction` for a second). Only for writes that are one statement each."""
    async with maker(bind=_autocommit_engine(maker.kw["bind"])) as session:
        yield session


@functools.cache
def _autocommit_engine(engine: AsyncEngine) -> AsyncEngine:
    """The same pool with AUTOCOMMIT set at checkout (cheaper than per-session options)."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


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


async def get_autocommit_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with autocommit(runtime_of(request).sessionmaker) as session:
        yield session


# For endpoints whose write is one statement, atomic by itself: each statement commits as
# it runs (before the response), without the BEGIN and COMMIT round trips (the send path:
# they were a tenth of its CPU).
AutocommitSessionDep = Annotated[AsyncSession, Depends(get_autocommit_session, scope="function")]
