"""shared.db, the one way every service reaches PostgreSQL: statements, units of work, retries, outbox, outages."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from shared.db import Database, DatabaseUnavailable, Sql, Unit


@pytest.fixture
async def db(pg):
    schema = f"kit_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(pg.url)
    await conn.execute(f"CREATE SCHEMA {schema}")
    await conn.execute(f"""
        CREATE TABLE {schema}.outbox (id bigserial PRIMARY KEY, event_id uuid NOT NULL UNIQUE, topic text NOT NULL,
            key text NOT NULL, type text NOT NULL, envelope jsonb NOT NULL, created_at timestamptz DEFAULT now(),
            published_at timestamptz, partition int, "offset" bigint, attempts int NOT NULL DEFAULT 0);
        CREATE TABLE {schema}.counters (name text PRIMARY KEY, n int NOT NULL, doc jsonb)""")
    await conn.close()
    database = await Database.open(pg.url, schema=schema, size=4, producer="kit")
    yield database
    await database.close()
    conn = await asyncpg.connect(pg.url)
    await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    await conn.close()


def test_named_parameters_compile_once_to_positional() -> None:
    q = Sql("SELECT :a, :b, :a::text, CAST(:c AS int), x::jsonb FROM t WHERE y = :b")
    assert q.sql == "SELECT $1, $2, $1::text, CAST($3 AS int), x::jsonb FROM t WHERE y = $2"
    assert q.args({"a": 1, "b": 2, "c": 3, "unused": 4}) == [1, 2, 3]
    with pytest.raises(KeyError):
        q.args({"a": 1})


async def test_rows_by_name_and_attribute_and_json_both_ways(db: Database) -> None:
    async with db.connect() as unit:
        await unit.execute(
            Sql("INSERT INTO counters (name, n, doc) VALUES (:name, 1, CAST(:doc AS jsonb))"),
            name="a",
            doc={"amount": "1.50", "ids": [1, 2]},
        )
        await unit.execute(
            Sql("INSERT INTO counters (name, n, doc) VALUES (:name, 2, CAST(:doc AS jsonb))"),
            name="b",
            doc='{"already": "text"}',
        )
        rows = await unit.fetch(Sql("SELECT name, n, doc FROM counters ORDER BY name"))
    assert [(r.name, r["n"], r.doc) for r in rows] == [
        ("a", 1, {"amount": "1.50", "ids": [1, 2]}),
        ("b", 2, {"already": "text"}),
    ]
    with pytest.raises(AttributeError):
        _ = rows[0].missing


async def test_a_transaction_commits_whole_or_not_at_all(db: Database) -> None:
    insert = Sql("INSERT INTO counters (name, n) VALUES (:name, 0)")

    async def fails(unit: Unit) -> None:
        await unit.execute(insert, name="kept?")
        raise ValueError("refused")

    with pytest.raises(ValueError):
        await db.transaction(fails)
    async with db.connect() as unit:
        assert await unit.fetchval(Sql("SELECT count(*) FROM counters")) == 0


async def test_deadlocks_are_retried_and_both_units_take_effect(db: Database) -> None:
    async with db.connect() as unit:
        await unit.execute(Sql("INSERT INTO counters (name, n) VALUES ('x', 0), ('y', 0)"))
    bump = Sql("UPDATE counters SET n = n + 1 WHERE name = :name")
    both_hold_one = asyncio.Barrier(2)
    runs = []

    def crossing(first: str, second: str):
        async def work(unit: Unit) -> None:
            runs.append(first)
            await unit.execute(bump, name=first)
            if len(runs) <= 2:
                await both_hold_one.wait()
            await unit.execute(bump, name=second)

        return work

    await asyncio.gather(db.transaction(crossing("x", "y")), db.transaction(crossing("y", "x")))
    assert len(runs) == 3  # one of them ran again after PostgreSQL chose it as the deadlock victim
    async with db.connect() as unit:
        assert {r.name: r.n for r in await unit.fetch(Sql("SELECT name, n FROM counters"))} == {"x": 2, "y": 2}


async def test_publish_writes_the_outbox_row_and_wakes_after_commit_only(db: Database) -> None:
    woken: list[str] = []
    db.on_publish = lambda: woken.append("relay")

    async def publishes(unit: Unit) -> str:
        event = await unit.publish(topic="settled", key="P1", payload={"amount": "1.00"})
        unit.after_commit(lambda: woken.append("callback"))
        assert woken == []  # nothing before the commit
        return event.event_id

    event_id = await db.transaction(publishes)
    assert woken == ["relay", "callback"]
    async with db.connect() as unit:
        row = await unit.fetchrow(
            Sql("SELECT topic, key, type, envelope FROM outbox WHERE event_id = :id"), id=uuid.UUID(event_id)
        )
    assert (row.topic, row.key, row.type) == ("settled", "P1", "settled")
    assert row.envelope["producer"] == "kit" and row.envelope["payload"] == {"amount": "1.00"}

    async def rolls_back(unit: Unit) -> None:
        await unit.publish(topic="settled", key="P2", payload={})
        unit.after_commit(lambda: woken.append("never"))
        raise RuntimeError

    woken.clear()
    with pytest.raises(RuntimeError):
        await db.transaction(rolls_back)
    assert woken == []
    async with db.connect() as unit:
        assert await unit.fetchval(Sql("SELECT count(*) FROM outbox")) == 1


async def test_an_unreachable_database_is_database_unavailable(pg) -> None:
    from deploy.embedded import free_port

    away = await Database.open(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing", schema="x", size=1)
    try:
        with pytest.raises(DatabaseUnavailable):
            async with away.connect() as unit:
                await unit.fetchval(Sql("SELECT 1"))
        with pytest.raises(ConnectionError):
            await away.transaction(lambda unit: unit.fetchval(Sql("SELECT 1")))
    finally:
        await away.close()


async def test_a_lease_has_one_holder_and_passes_on_when_its_connection_ends(db: Database, pg) -> None:
    from shared.db import Lease

    other = await Database.open(pg.url, schema=db.schema, size=2)
    try:
        first, second = Lease(db, "relay"), Lease(other, "relay")
        assert await first.take() and first.held
        assert not await second.take() and not second.held
        assert await first.take()  # taking it again while holding it: still held
        first._conn.terminate()  # the holder's connection dies (process killed, database restarted)
        assert not first.held
        for _ in range(50):  # the server notices the dead session
            if await second.take():
                break
            await asyncio.sleep(0.1)
        assert second.held and not await first.take()
        await second.release()
        assert await first.take()
        await first.release()
    finally:
        await other.close()
