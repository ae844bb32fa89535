"""Async SQLAlchemy: one engine per process, one schema per service, one unit of work per request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

log = logging.getLogger("yibao.db")

# SQLSTATEs worth a retry: serialization failure and deadlock.
RETRYABLE_SQLSTATES = {"40001", "40P01"}


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """Create the process's engine (asyncpg)."""
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={"timeout": 5, "command_timeout": 30,
                      "server_settings": {"timezone": "Asia/Shanghai"}},
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that never expire objects on commit (we return them after commit)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE behind a DBAPI error, if any."""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None)


@asynccontextmanager
async def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A transaction that commits when the block ends normally and rolls back otherwise."""
    async with sessions() as session:
        async with session.begin():
            yield session


async def run_in_transaction(sessions: async_sessionmaker[AsyncSession], work, *, attempts: int = 5):
    """Run `work(session)` in one transaction, retrying on deadlock or serialization failure."""
    for attempt in range(1, attempts + 1):
        try:
            async with unit_of_work(sessions) as session:
                return await work(session)
        except DBAPIError as exc:
            if sqlstate(exc) not in RETRYABLE_SQLSTATES or attempt == attempts:
                raise
            log.info("retrying transaction after %s (attempt %d)", sqlstate(exc), attempt)
            await asyncio.sleep(0.01 * 2**attempt)
    raise AssertionError("unreachable")


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers."""
    async with engine.connect() as conn:
        await conn.execute(text("select 1"))


def get_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    """The session factory of this service (from the composition root)."""
    return request.app.state.sessions


Sessions = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessions)]
