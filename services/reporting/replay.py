"""Rebuild the read models from the topics, offset 0, into a scratch schema; compare with (or replace) the live ones.

The same handlers and the same inbox run against the scratch schema through SQLAlchemy's
`schema_translate_map`, read by a group-less consumer (no offsets committed, the live consumer
group untouched) up to the end offsets seen at the start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer
from sqlalchemy import MetaData, Table, delete, insert, select, text, true
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from services.reporting.handlers import handlers
from services.reporting.models import (SCHEMA, budgets, claims, covid_cases, events, institutions, metadata,
                                       persons, prepayments, settlement_moves, subsidies)
from shared.events.consumer import Consumer
from shared.events.topics import (ALL_TOPICS, BUDGET_SET, CLAIM_SUBMITTED, COVID_CASE_REGISTERED,
                                  INSTITUTION_CHANGED, PERSON_CHANGED, PREPAYMENT_DISBURSED, SETTLED,
                                  SETTLEMENT_REVERSED, SUBSIDY_DUE)

log = logging.getLogger("yibao.reporting.replay")

SCRATCH = "reporting_replay"
_IDENT = re.compile(r"[a-z_][a-z0-9_]{0,62}")
VOLATILE = {"updated_at"}  # stamped with the time of application, not carried by the event
Filter = Callable[[Table], object]


@dataclass(frozen=True)
class Part:
    """The rows of one read model that one topic feeds."""

    table: Table
    where: Callable[[Table], object] = lambda t: true()


PARTS: dict[str, list[Part]] = {
    SETTLED: [Part(settlement_moves, lambda t: t.c.kind == "settle")],
    SETTLEMENT_REVERSED: [Part(settlement_moves, lambda t: t.c.kind == "reverse")],
    SUBSIDY_DUE: [Part(subsidies)],
    PREPAYMENT_DISBURSED: [Part(prepayments)],
    COVID_CASE_REGISTERED: [Part(covid_cases)],
    PERSON_CHANGED: [Part(persons)],
    INSTITUTION_CHANGED: [Part(institutions)],
    CLAIM_SUBMITTED: [Part(claims)],
    BUDGET_SET: [Part(budgets)],
}


@dataclass
class Rebuilt:
    """What a rebuild read and applied, per topic."""

    read: dict[str, int] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class Difference:
    topic: str
    table: str
    only_live: int
    only_rebuilt: int
    sample: list[str]


def check_topics(topics: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """The topics asked for (all of them when none), each one the reporting service consumes."""
    chosen = tuple(dict.fromkeys(topics or ALL_TOPICS))
    unknown = [t for t in chosen if t not in PARTS]
    if unknown:
        raise ValueError(f"unknown topic(s) {', '.join(unknown)}; known: {', '.join(ALL_TOPICS)}")
    return chosen


def check_schema(schema: str) -> str:
    """A scratch schema name: a plain identifier, never the live schema."""
    if not _IDENT.fullmatch(schema) or schema == SCHEMA:
        raise ValueError(f"scratch schema must be a plain identifier other than {SCHEMA}")
    return schema


def translated(engine: AsyncEngine, schema: str) -> AsyncEngine:
    """The engine with every reporting table redirected to `schema`."""
    return engine.execution_options(schema_translate_map={SCHEMA: schema})


async def _create_scratch(engine: AsyncEngine, schema: str) -> None:
    check_schema(schema)
    async with engine.begin() as conn:
        await conn.execute(text(f'drop schema if exists "{schema}" cascade'))
        await conn.execute(text(f'create schema "{schema}"'))
    async with translated(engine, schema).begin() as conn:
        await conn.run_sync(metadata.create_all)


async def _read_to_end(bootstrap: str, topics: tuple[str, ...], apply, *, timeout: float) -> dict[str, int]:
    """Read every partition of the topics from offset 0 to its end.

    The end is where reading stops finding records, not the end offset the broker reports: Tansu (the
    embedded broker) answers ListOffsets with the last batch's base offset + 1, which is short of the
    end whenever the relay sent several records in one batch. So every partition is read at least up to
    its reported end, then on until one fetch of all of them comes back empty."""
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", metadata_max_age_ms=2000, request_timeout_ms=10000)
    read = dict.fromkeys(topics, 0)
    await asyncio.wait_for(consumer.start(), 15)
    try:
        deadline = time.monotonic() + timeout
        while not consumer.assignment():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no partitions for {', '.join(topics)}")
            await consumer.getmany(timeout_ms=200)  # lets the client load metadata and assign
        assignment = consumer.assignment()
        await consumer.seek_to_beginning(*assignment)
        ends = await consumer.end_offsets(list(assignment))
        short = {tp for tp, end in ends.items() if end > 0}  # not yet read up to the reported end
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"replay did not reach the end of {sorted(str(tp) for tp in short) or topics}")
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            for messages in batches.values():
                for message in messages:
                    await apply(message.topic, message.value)
                    read[message.topic] += 1
            for tp in list(short):
                if await consumer.position(tp) >= ends[tp]:
                    short.discard(tp)
            if not short and not any(batches.values()):
                return read
    finally:
        await asyncio.wait_for(consumer.stop(), 10)


def _event_id(raw: bytes) -> str | None:
    try:
        return str(json.loads(raw)["event_id"])
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: the consumer dead-letters it


async def rebuild(engine: AsyncEngine, *, bootstrap: str, topics: tuple[str, ...] | None = None,
                  schema: str = SCRATCH, timeout: float = 300.0) -> Rebuilt:
    """Create `schema` afresh and apply every event of the topics to it, through the inbox, from offset 0."""
    chosen = check_topics(topics)
    started = time.monotonic()
    await _create_scratch(engine, schema)
    sessions = async_sessionmaker(translated(engine, schema), expire_on_commit=False)
    consumer = Consumer(sessions=sessions, tables=events, bootstrap=bootstrap, group_id=f"{schema}-unused",
                        handlers={t: handlers[t] for t in chosen})
    result = Rebuilt(applied=dict.fromkeys(chosen, 0))

    seen: set[str] = set()

    async def apply(topic: str, raw: bytes) -> None:
        event_id = _event_id(raw)
        if event_id is not None:
            if event_id in seen:  # a redelivery: the inbox would drop it too, without a round trip
                return
            seen.add(event_id)
        if await consumer.apply(topic, raw):
            result.applied[topic] += 1

    result.read = await _read_to_end(bootstrap, chosen, apply, timeout=timeout)
    result.seconds = time.monotonic() - started
    log.info("rebuilt %s into %s: %d events read, %d applied in %.1f s", ",".join(chosen), schema,
             sum(result.read.values()), sum(result.applied.values()), result.seconds)
    return result


def _comparable(value):
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value


def _columns(table: Table) -> list:
    return [c for c in table.c if c.name not in VOLATILE]


async def _rows(engine: AsyncEngine, schema: str, part: Part, where: Filter | None) -> set[tuple]:
    table = part.table
    query = select(*_columns(table)).where(part.where(table))
    if where is not None:
        query = query.where(where(table))
    async with translated(engine, schema).connect() as conn:
        return {tuple(_comparable(v) for v in row) for row in await conn.execute(query)}


async def compare(engine: AsyncEngine, *, topics: tuple[str, ...] | None = None, schema: str = SCRATCH,
                  where: Filter | None = None) -> list[Difference]:
    """Rows of the live read models that differ from the rebuilt ones (`where` narrows both, e.g. to a test's data)."""
    differences = []
    for topic in check_topics(topics):
        for part in PARTS[topic]:
            live = await _rows(engine, SCHEMA, part, where)
            rebuilt = await _rows(engine, schema, part, where)
            if live != rebuilt:
                only_live, only_rebuilt = live - rebuilt, rebuilt - live
                sample = [f"live: {r}" for r in list(only_live)[:3]] + [f"rebuilt: {r}" for r in list(only_rebuilt)[:3]]
                differences.append(Difference(topic, part.table.name, len(only_live), len(only_rebuilt), sample))
    return differences


async def replace_live(engine: AsyncEngine, *, topics: tuple[str, ...] | None = None, schema: str = SCRATCH) -> None:
    """Replace the live rows of the topics' read models by the rebuilt ones, in one transaction."""
    check_schema(schema)
    async with engine.begin() as conn:
        for topic in check_topics(topics):
            for part in PARTS[topic]:
                table = part.table
                scratch = table.to_metadata(MetaData(), schema=schema)
                columns = [c.name for c in table.c]
                await conn.execute(delete(table).where(part.where(table)))
                await conn.execute(insert(table).from_select(
                    columns, select(*[scratch.c[c] for c in columns]).where(part.where(scratch))))
        # the live inbox must know every event the rebuilt models hold, or a redelivery would apply it twice
        inbox = events.inbox
        scratch_inbox = inbox.to_metadata(MetaData(), schema=schema)
        names = [c.name for c in inbox.c]
        await conn.execute(pg_insert(inbox).from_select(names, select(*[scratch_inbox.c[n] for n in names]))
                           .on_conflict_do_nothing(index_elements=["event_id"]))


async def drop_scratch(engine: AsyncEngine, schema: str = SCRATCH) -> None:
    check_schema(schema)
    async with engine.begin() as conn:
        await conn.execute(text(f'drop schema if exists "{schema}" cascade'))


