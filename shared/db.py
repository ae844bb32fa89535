"""One way to reach PostgreSQL, for every route, every event handler and every background task.

- **One pool per process**: `Database.open` makes the service's asyncpg pool. Its connections' search_path is the
  service's schema, so statements name tables without a schema (reporting's replay points a second `Database` at a
  scratch schema and runs the same statements there).
- **One statement style**: `Sql("... :name ...")`, plain SQL with named parameters, compiled once to asyncpg's
  `$1, $2 …` and prepared once per connection. Rows are `Row`s: `row["col"]` or `row.col`. JSON parameters are
  passed as text (`shared.events.envelope.dumps`) or as plain values, which are dumped on the way.
  Why not SQLAlchemy sessions: a settlement is a handful of statements, and through the ORM each cost a pool ping,
  BEGIN/COMMIT around reads and a compile step (benchmarks/settle.py: 17.6 → 8.5 statements per settlement).
  SQLAlchemy stays for the table definitions (`models.py`) and Alembic.
- **One unit of work**: a `Unit` is one connection, either in a transaction (`db.transaction(work)`, retried on
  deadlock and serialization failure, or `db.begin()` without retry) or not (`db.connect()`, where each statement
  commits by itself: the hot path's single-statement steps). `unit.publish(...)` writes an outbox row; after the
  commit the relay is woken. Routes and event handlers receive the same `Unit`.
- **One outage rule**: an unreachable database is `DatabaseUnavailable` (a ConnectionError, answered 503).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import orjson

from shared.events.envelope import Envelope, dumps, new_event

log = logging.getLogger("yibao.db")

T = TypeVar("T")
ACQUIRE_TIMEOUT = 10.0
ATTEMPTS = 5
RETRYABLE: tuple[type[Exception], ...] = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
OUTAGE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    OSError,
    asyncio.TimeoutError,
    # PostgreSQL killed while a COMMIT was being sent: asyncpg found its connection mid-operation ("cannot switch to
    # state 15; another operation is in progress"); the outcome is unknown, as with any connection lost at commit
    asyncpg.InternalClientError,
)
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class DatabaseUnavailable(ConnectionError):
    """The database cannot be reached now (answered 503, retried by consumers and relays)."""


def is_outage(exc: BaseException) -> bool:
    """True when a failure is the database being away, not the statement being wrong."""
    return isinstance(exc, (DatabaseUnavailable, *OUTAGE))


class Sql:
    """A statement with :named parameters, compiled once to asyncpg's $1, $2 …"""

    __slots__ = ("sql", "names")

    def __init__(self, statement: str) -> None:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        self.sql = _NAMED.sub(number, statement)
        self.names = tuple(names)

    def args(self, params: dict[str, Any]) -> list[Any]:
        """The positional arguments for `params` (KeyError names a missing one)."""
        return [params[name] for name in self.names]

    def __repr__(self) -> str:
        return f"Sql({self.sql[:60]!r}…)"


class Row(asyncpg.Record):  # type: ignore[misc]  # asyncpg has no type information
    """A result row: `row["col"]` or `row.col`."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _encode_json(value: Any) -> str:
    return value if isinstance(value, str) else dumps(value)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=_encode_json, decoder=orjson.loads, schema="pg_catalog")


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Every use ends its transaction; nothing else to reset (saves a round trip per release)."""


class Unit:
    """One unit of work on one connection: statements, outbox rows, callbacks after the commit."""

    __slots__ = ("conn", "producer", "_callbacks", "_published")

    def __init__(self, conn: asyncpg.Connection, *, producer: str) -> None:
        self.conn = conn
        self.producer = producer
        self._callbacks: list[Callable[[], None]] = []
        self._published = False

    async def fetch(self, q: Sql, **params: Any) -> list[Row]:
        rows: list[Row] = await self.conn.fetch(q.sql, *q.args(params))
        return rows

    async def fetchrow(self, q: Sql, **params: Any) -> Row | None:
        row: Row | None = await self.conn.fetchrow(q.sql, *q.args(params))
        return row

    async def fetchval(self, q: Sql, **params: Any) -> Any:
        return await self.conn.fetchval(q.sql, *q.args(params))

    async def execute(self, q: Sql, **params: Any) -> str:
        """Run a statement; returns PostgreSQL's status tag (e.g. "UPDATE 1")."""
        status: str = await self.conn.execute(q.sql, *q.args(params))
        return status

    async def executemany(self, q: Sql, rows: Iterable[dict[str, Any]]) -> None:
        """The statement once per row, in one round trip."""
        await self.conn.executemany(q.sql, [q.args(row) for row in rows])

    async def publish(self, *, topic: str, key: str, payload: dict[str, Any]) -> Envelope:
        """An event for `topic`, published by the relay once this unit commits (the outbox row is written now)."""
        event = new_event(type=topic, key=key, payload=payload, producer=self.producer)
        await self.conn.execute(_ADD_OUTBOX.sql, *_ADD_OUTBOX.args(outbox_row(event)))
        self._published = True
        return event

    def published(self) -> None:
        """A statement of this unit wrote outbox rows itself (e.g. in a CTE): wake the relay after the commit."""
        self._published = True

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` once this unit's work is committed (never when it rolls back)."""
        self._callbacks.append(callback)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested transaction: the block's statements roll back alone when it raises."""
        async with self.conn.transaction():
            yield

    def _committed(self, wake: Callable[[], None] | None) -> None:
        if self._published and wake is not None:
            wake()
        for callback in self._callbacks:
            callback()


_ADD_OUTBOX = Sql("""
INSERT INTO outbox (event_id, topic, key, type, envelope)
VALUES (CAST(:event_id AS uuid), :topic, :key, :topic, CAST(:envelope AS jsonb))
""")


def outbox_row(event: Envelope) -> dict[str, Any]:
    """The outbox columns of an event (for statements that write outbox rows themselves)."""
    return {"event_id": event.event_id, "topic": event.type, "key": event.key, "envelope": event.to_json().decode()}


class Database:
    """The process's pool of connections to its service's schema."""

    def __init__(self, pool: asyncpg.Pool, *, schema: str, producer: str | None = None) -> None:
        self.pool = pool
        self.schema = schema
        self.producer = producer or schema
        self.on_publish: Callable[[], None] | None = None  # the relay's wake-up, set by the composition root
        self.dsn = ""

    @classmethod
    async def open(
        cls, url: str, *, schema: str, size: int = 10, producer: str | None = None, application_name: str | None = None
    ) -> Database:
        """A pool of up to `size` connections (none opened until needed, so a service starts without its database)."""
        dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        pool = asyncpg.create_pool(
            dsn,
            min_size=0,
            max_size=size,
            init=_init_connection,
            reset=_no_reset,
            record_class=Row,
            command_timeout=30,
            max_inactive_connection_lifetime=60,
            timeout=5,
            statement_cache_size=500,
            server_settings={
                "timezone": "Asia/Shanghai",
                "search_path": f"{schema}, public",
                "application_name": application_name or schema,
            },
        )
        await pool  # with min_size=0 this opens nothing
        database = cls(pool, schema=schema, producer=producer)
        database.dsn = dsn
        return database

    async def dedicated(self) -> asyncpg.Connection:
        """A connection outside the pool, for something held as long as the process lives (a lease)."""
        try:
            return await asyncpg.connect(self.dsn, timeout=5, server_settings={"application_name": self.schema})
        except OUTAGE as exc:
            raise _unavailable(exc) from None

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.pool.close(), 5)
        except Exception:  # the database is gone or a connection hangs: drop them all
            self.pool.terminate()

    async def ping(self, timeout: float = 2.0) -> None:
        """Raise unless the database answers within `timeout` (asyncpg's own timeouts: a query cancelled from
        outside could leave its connection busy for the next user)."""
        try:
            async with self.pool.acquire(timeout=timeout) as conn:
                await conn.execute("SELECT 1", timeout=timeout)
        except OUTAGE as exc:
            raise _unavailable(exc) from None

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[Unit]:
        """A unit without a transaction: each statement commits by itself."""
        unit = None
        try:
            async with self.pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
                unit = Unit(conn, producer=self.producer)
                yield unit
        except OUTAGE as exc:
            raise _unavailable(exc) from None
        unit._committed(self.on_publish)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[Unit]:
        """A unit in one transaction that commits when the block ends normally (no retry: see `transaction`)."""
        unit = None
        try:
            async with self.pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn, conn.transaction():
                unit = Unit(conn, producer=self.producer)
                yield unit
        except OUTAGE as exc:
            raise _unavailable(exc) from None
        unit._committed(self.on_publish)

    async def transaction(self, work: Callable[[Unit], Awaitable[T]], *, attempts: int = ATTEMPTS) -> T:
        """`work(unit)` in one transaction, run again (whole) after a deadlock or serialization failure."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.begin() as unit:
                    return await work(unit)
            except RETRYABLE as exc:
                if attempt == attempts:
                    raise
                log.info("retrying transaction after %s (attempt %d)", type(exc).__name__, attempt)
                await asyncio.sleep(0.01 * 2**attempt)
        raise AssertionError("unreachable")


class Lease:
    """An advisory lock held on a connection of its own: one holder at a time across every process of the service
    (e.g. the relay that publishes the outbox, so that rows of one key go out in order). The lease ends with that
    connection: when its process dies, or the database restarts, another one takes it."""

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.key = int.from_bytes(hashlib.sha256(f"{db.schema}:{name}".encode()).digest()[:8], "big", signed=True)
        self._conn: Any = None

    @property
    def held(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def take(self) -> bool:
        """Take the lease if nobody holds it; True while this process holds it."""
        if self.held:
            return True
        await self.release()
        conn = await self.db.dedicated()
        try:
            if await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key, timeout=5):
                self._conn = conn
                return True
        except OUTAGE:
            pass
        conn.terminate()
        return False

    async def release(self) -> None:
        """Give the lease up (closing its connection ends the lock)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()


def _unavailable(exc: BaseException) -> DatabaseUnavailable:
    log.warning("database unavailable: %s", type(exc).__name__)
    return DatabaseUnavailable(f"database unavailable ({type(exc).__name__})")
