"""The hot path's own asyncpg pool: statements written with :named parameters, run as $n.

Settling is a handful of statements; through the ORM session each costs a pool ping, BEGIN/COMMIT
of read-only transactions and a compile step. Here a visit, its fee lines and its settlement take
one statement per step and no ping (asyncpg drops a broken connection itself). Round trips are what
a settlement costs most (each is a system call and a wake-up on both sides), so a step that is one
statement runs by itself, without BEGIN/COMMIT: a new visit with nothing to merge, an upload of fee
lines (its guards in the statement), a settle on the accumulators as loaded (their version checked in
the write). 8.5 statements per settlement in all, eligibility's two included (benchmarks/settle.py
--statements), down from 17.6.

Statements are prepared once per connection and PostgreSQL soon settles on a generic plan. Such a
plan is only as good as the statistics it was made from: in a brand-new database, before
autovacuum's first ANALYZE, loading a visit scanned fee_lines sequentially (3.7 ms instead of
0.12 ms in benchmarks/settle.py --statements) until the next ANALYZE replaced the plan, within
a minute. Planning every execution (plan_cache_mode=force_custom_plan) avoids that window but costs
PostgreSQL 0.4-0.5 ms of CPU per settlement for good, so we keep the generic plans.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, TypeVar

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger("yibao.settlement.pg")

T = TypeVar("T")
ACQUIRE_TIMEOUT = 10.0
RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
OUTAGE = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError, OSError,
          asyncio.TimeoutError)
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class Sql:
    """A statement with :named parameters, compiled once to asyncpg's $1, $2 …"""

    __slots__ = ("sql", "names")

    def __init__(self, statement: str) -> None:
        names: list[str] = []

        def number(match: re.Match) -> str:
            name = match.group(1)
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        self.sql = _NAMED.sub(number, statement)
        self.names = tuple(names)

    def args(self, params: dict[str, Any]) -> list[Any]:
        return [params[name] for name in self.names]


class Attrs:
    """Attribute access to an asyncpg record (the engine's adapters read attributes)."""

    __slots__ = ("_record",)

    def __init__(self, record: asyncpg.Record) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        return self._record[name]


async def fetchrow(conn: asyncpg.Connection, q: Sql, **params: Any) -> asyncpg.Record | None:
    return await conn.fetchrow(q.sql, *q.args(params))


async def fetch(conn: asyncpg.Connection, q: Sql, **params: Any) -> list[asyncpg.Record]:
    return await conn.fetch(q.sql, *q.args(params))


async def fetchval(conn: asyncpg.Connection, q: Sql, **params: Any) -> Any:
    return await conn.fetchval(q.sql, *q.args(params))


async def execute(conn: asyncpg.Connection, q: Sql, **params: Any) -> str:
    return await conn.execute(q.sql, *q.args(params))


async def _init(conn: asyncpg.Connection) -> None:
    # Parameters are passed as JSON text (as on SQLAlchemy's connections); results come back decoded.
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=lambda value: value, decoder=orjson.loads, schema="pg_catalog")


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Every use ends its transaction; nothing else to reset (saves a round trip per release)."""


async def open_pool(database_url: str, *, size: int) -> asyncpg.Pool:
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    return await asyncpg.create_pool(dsn, min_size=1, max_size=size, init=_init, reset=_no_reset,
                                     command_timeout=30, max_inactive_connection_lifetime=60,
                                     server_settings={"timezone": "Asia/Shanghai",
                                                      "application_name": "settlement-hot-path"})


@asynccontextmanager
async def connection(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection; an unreachable database becomes ConnectionError (answered 503)."""
    try:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            yield conn
    except OUTAGE as exc:
        log.warning("database unavailable: %s", type(exc).__name__)
        raise ConnectionError(f"database unavailable ({type(exc).__name__})") from None


async def run_in_transaction(pool: asyncpg.Pool, work: Callable[[asyncpg.Connection], Awaitable[T]], *,
                             attempts: int = 5) -> T:
    """`work(conn)` in one transaction, retried on deadlock or serialization failure."""
    for attempt in range(1, attempts + 1):
        try:
            async with connection(pool) as conn:
                async with conn.transaction():
                    return await work(conn)
        except RETRYABLE as exc:
            if attempt == attempts:
                raise
            log.info("retrying transaction after %s (attempt %d)", type(exc).__name__, attempt)
            await asyncio.sleep(0.01 * 2**attempt)
    raise AssertionError("unreachable")


async def driver(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under a SQLAlchemy session, its transaction begun."""
    await session.execute(text("SELECT 1"))  # the adapter begins its transaction lazily
    raw = await (await session.connection()).get_raw_connection()
    return raw.driver_connection
