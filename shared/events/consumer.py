"""The consumer: apply each event once, recording its id in the inbox in the same transaction.

Offsets are committed after the database commit ({tp: offset + 1}); a crash between the two
means the event is delivered again and the inbox turns the repeat into a no-op.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import TopicPartition
from prometheus_client import Counter
from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.events.envelope import Envelope
from shared.events.kafka import ensure_topics, make_consumer
from shared.events.tables import EventTables

log = logging.getLogger("yibao.consumer")

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]
AfterCommit = Callable[[Envelope], Awaitable[None]]

APPLIED = Counter("yibao_events_applied_total", "events applied by a consumer", ["topic"])
DUPLICATES = Counter("yibao_events_duplicate_total", "redelivered events dropped by the inbox", ["topic"])
DEAD = Counter("yibao_events_dead_letter_total", "events that failed every attempt", ["topic"])


def _is_outage(exc: BaseException) -> bool:
    """True when the failure is the database being unreachable, not the event being bad."""
    from sqlalchemy.exc import InterfaceError, OperationalError
    return isinstance(exc, (OperationalError, InterfaceError, ConnectionError, OSError)) or bool(
        getattr(exc, "connection_invalidated", False))


class Consumer:
    """Consumes topics for one service's consumer group and applies handlers through the inbox."""

    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], tables: EventTables, bootstrap: str,
                 group_id: str, handlers: dict[str, Handler], partitions: int = 3, max_attempts: int = 5,
                 after_commit: AfterCommit | None = None) -> None:
        self.sessions = sessions
        self.tables = tables
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.handlers = handlers
        self.partitions = partitions
        self.max_attempts = max_attempts
        self.after_commit = after_commit
        self.connected = False
        self._consumer = None

    async def run(self) -> None:
        """Consume until cancelled; reconnect with backoff when the broker goes away."""
        backoff = 0.2
        while True:
            try:
                await ensure_topics(self.bootstrap, tuple(self.handlers), self.partitions)
                self._consumer = make_consumer(self.bootstrap, *self.handlers, group_id=self.group_id)
                await asyncio.wait_for(self._consumer.start(), 15)
                self.connected = True
                backoff = 0.2
                await self._loop()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected = False
                log.warning("consumer %s paused: %s: %s", self.group_id, type(exc).__name__, str(exc)[:200])
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                await self.stop()

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        self.connected = False
        if consumer is not None:
            try:
                await asyncio.wait_for(consumer.stop(), 5)
            except Exception:  # the broker is gone; nothing to hand back
                pass

    async def _loop(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=500)
            for tp, messages in batches.items():
                for message in messages:
                    await self.apply(message.topic, message.value)
                try:
                    await self._consumer.commit({TopicPartition(tp.topic, tp.partition): messages[-1].offset + 1})
                except Exception as exc:  # a rebalance or a lost broker: the inbox absorbs the redelivery
                    log.info("offset commit failed (%s); events will be redelivered and deduplicated",
                             type(exc).__name__)

    async def apply(self, topic: str, raw: bytes) -> bool:
        """Apply one message exactly once in effect; True if it took effect now."""
        try:
            event = Envelope.from_json(raw)
        except Exception as exc:  # poison message: keep it for a human, move on
            await self._dead_letter(topic, "00000000-0000-0000-0000-000000000000", raw, f"unreadable: {exc}")
            return False
        handler = self.handlers.get(topic)
        if handler is None:
            return False
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with self.sessions() as session, session.begin():
                    inserted = await session.scalar(
                        pg_insert(self.tables.inbox).values(event_id=event.event_id, topic=topic, type=event.type)
                        .on_conflict_do_nothing(index_elements=["event_id"])
                        .returning(self.tables.inbox.c.event_id))
                    if inserted is None:
                        DUPLICATES.labels(topic).inc()
                        return False
                    await handler(session, event)
                APPLIED.labels(topic).inc()
                if self.after_commit is not None:
                    await self.after_commit(event)
                return True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if _is_outage(exc):
                    raise  # the database is away: stop, reconnect, and get the event again
                if attempt == self.max_attempts:
                    log.exception("event %s on %s failed %d times; dead-lettered", event.event_id, topic, attempt)
                    await self._dead_letter(topic, event.event_id, raw, f"{type(exc).__name__}: {exc}")
                    return False
                await asyncio.sleep(0.05 * 2**attempt)
        return False

    async def _dead_letter(self, topic: str, event_id: str, raw: bytes, error: str) -> None:
        DEAD.labels(topic).inc()
        async with self.sessions() as session, session.begin():
            await session.execute(insert(self.tables.dead_letter).values(
                event_id=event_id, topic=topic, envelope=raw.decode("utf-8", "replace")[:100_000], error=error[:4000]))
            if event_id != "00000000-0000-0000-0000-000000000000":
                await session.execute(pg_insert(self.tables.inbox).values(event_id=event_id, topic=topic, type=topic)
                                      .on_conflict_do_nothing(index_elements=["event_id"]))
