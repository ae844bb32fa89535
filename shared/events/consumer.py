"""The consumer: apply each event once, recording its id in the inbox in the same transaction.

What one poll returns is applied in one transaction (inbox rows and effects together); when that fails for
a reason other than the database being away, the events are applied one at a time, so that a poison
message is isolated (retried, then dead-lettered) and the others still take effect.

Offsets are committed after the database commit ({tp: offset + 1}); a crash between the two
means the events are delivered again and the inbox turns the repeats into no-ops. While the database is away the
consumer keeps its partitions and applies the same events again until it is back.

A broker that came back without its log (a new epoch, shared.events.epoch) has a new log whose offsets start at 0
again, below the positions the consumer held. So after every batch, and every second when idle, the consumer reads
the epoch: when it changed, it commits nothing and starts over as a new member of its group, which finds no committed
offsets in the new log and reads it from its beginning (auto_offset_reset=earliest). Offsets are only ever committed
to the broker life the consumer started in (docs/events.md, "Delivery").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from prometheus_client import Counter

from shared.db import Database, Sql, Unit, is_outage
from shared.events.envelope import Envelope
from shared.events.epoch import BrokerEpoch
from shared.events.kafka import cancelled_from_outside, close_quietly, ensure_topics, make_consumer

log = logging.getLogger("yibao.consumer")

Handler = Callable[[Unit, Envelope], Awaitable[None]]
BatchHandler = Callable[[Unit, list[Envelope]], Awaitable[None]]


class Batched:
    """A handler that takes a run of events at once (one set of bulk statements for a whole poll): register the
    same `Batched` for several topics, and consecutive events of those topics reach it together, in their order."""

    def __init__(self, handle: BatchHandler) -> None:
        self.handle = handle

    async def __call__(self, unit: Unit, event: Envelope) -> None:
        await self.handle(unit, [event])


APPLIED = Counter("yibao_events_applied_total", "events applied by a consumer", ["topic"])
DUPLICATES = Counter("yibao_events_duplicate_total", "redelivered events dropped by the inbox", ["topic"])
DEAD = Counter("yibao_events_dead_letter_total", "events that failed every attempt", ["topic"])
RESTARTS = Counter("yibao_consumer_epoch_restarts_total", "consumers started over on a broker that lost its log")
IDLE_CHECK_SECONDS = 1.0

UNREADABLE_ID = "00000000-0000-0000-0000-000000000000"
_RECEIVE = Sql("""
INSERT INTO inbox (event_id, topic, type)
SELECT CAST(e.id AS uuid), e.topic, e.type
  FROM unnest(CAST(:ids AS text[]), CAST(:topics AS text[]), CAST(:types AS text[])) AS e(id, topic, type)
ON CONFLICT (event_id) DO NOTHING RETURNING CAST(event_id AS text)
""")
_DEAD_LETTER = Sql("""
INSERT INTO dead_letter (event_id, topic, envelope, error) VALUES (CAST(:event_id AS uuid), :topic, :envelope, :error)
""")


class _Joined(ConsumerRebalanceListener):  # type: ignore[misc]
    """Knows when the consumer has joined its group (an assignment arrived, even an empty one)."""

    def __init__(self) -> None:
        self.joined = False

    async def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.joined = True


class Consumer:
    """Consumes topics for one service's consumer group and applies handlers through the inbox."""

    def __init__(
        self,
        *,
        db: Database,
        bootstrap: str,
        group_id: str,
        handlers: dict[str, Handler],
        partitions: int = 3,
        max_attempts: int = 5,
    ) -> None:
        self.db = db
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.handlers = handlers
        self.partitions = partitions
        self.max_attempts = max_attempts
        self.connected = False
        self._membership = _Joined()
        self._consumer: Any = None
        self._epoch: BrokerEpoch | None = None

    @property
    def ready(self) -> bool:
        """Connected and a member of its group (so what is published now will be read)."""
        return self.connected and self._membership.joined

    async def run(self) -> None:
        """Consume until cancelled; reconnect with backoff when the broker goes away; start over on a new epoch."""
        backoff = 0.2
        while True:
            try:
                self._epoch = BrokerEpoch(self.bootstrap)
                await self._epoch.start()
                epoch = await self._epoch.read()
                await ensure_topics(self.bootstrap, tuple(self.handlers), self.partitions)
                self._membership = _Joined()
                self._consumer = make_consumer(self.bootstrap, group_id=self.group_id)
                self._consumer.subscribe(topics=list(self.handlers), listener=self._membership)
                await asyncio.wait_for(self._consumer.start(), 15)
                self.connected = True
                backoff = 0.2
                await self._loop(epoch)
                RESTARTS.inc()
                log.warning(
                    "consumer %s: the broker lost its log; reading its new log from the beginning", self.group_id
                )
            except (Exception, asyncio.CancelledError) as exc:
                if isinstance(exc, asyncio.CancelledError) and cancelled_from_outside():
                    raise
                self.connected = False
                log.warning("consumer %s paused: %s: %s", self.group_id, type(exc).__name__, str(exc)[:200])
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                await self.stop()

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        epoch, self._epoch = self._epoch, None
        self.connected = False
        if consumer is not None:
            await close_quietly(consumer)
        if epoch is not None:
            await epoch.stop()

    async def _loop(self, epoch: str) -> None:
        """Apply what arrives until the broker's epoch is no longer `epoch` (then return)."""
        assert self._epoch is not None
        checked = time.monotonic()
        while True:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=500)
            if batches:
                await self._apply_until_stored([(m.topic, m.value) for messages in batches.values() for m in messages])
            elif time.monotonic() - checked < IDLE_CHECK_SECONDS:
                continue
            checked = time.monotonic()
            if await self._epoch.read() != epoch:
                return  # what we applied came from wherever it came: the inbox keeps it; commit nothing here
            if not batches:
                continue
            try:
                await self._consumer.commit(
                    {
                        TopicPartition(tp.topic, tp.partition): messages[-1].offset + 1
                        for tp, messages in batches.items()
                    }
                )
            except Exception as exc:  # a rebalance or a lost broker: the inbox absorbs the redelivery
                log.info("offset commit failed (%s); events will be redelivered and deduplicated", type(exc).__name__)

    async def _apply_until_stored(self, messages: list[tuple[str, bytes]]) -> None:
        """Apply a batch; while the database is away, keep the partitions and try again."""
        backoff = 0.2
        while True:
            try:
                await self.apply_batch(messages)
                return
            except Exception as exc:
                if not is_outage(exc):
                    raise
                log.warning("consumer %s waits for the database: %s", self.group_id, type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def apply_batch(self, messages: list[tuple[str, bytes]]) -> int:
        """Apply messages (topic, raw) in one transaction; one at a time if that fails. Returns how many took effect."""
        events: list[tuple[str, Envelope]] = []
        for topic, raw in messages:
            try:
                events.append((topic, Envelope.from_json(raw)))
            except Exception as exc:  # poison message: keep it for a human, move on
                await self._dead_letter(topic, UNREADABLE_ID, raw, f"unreadable: {exc}")
        events = [(topic, event) for topic, event in events if topic in self.handlers]
        if not events:
            return 0
        try:
            return await self._apply(events)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_outage(exc):
                raise  # the database is away: stop, reconnect, and get the events again
            if len(events) == 1:
                return await self._apply_alone(*events[0])
            log.info("batch of %d failed (%s); applying one at a time", len(events), type(exc).__name__)
            applied = 0
            for topic, event in events:
                applied += await self._apply_alone(topic, event)
            return applied

    async def apply(self, topic: str, raw: bytes) -> bool:
        """Apply one message exactly once in effect; True if it took effect now."""
        return await self.apply_batch([(topic, raw)]) == 1

    async def _apply(self, events: list[tuple[str, Envelope]]) -> int:
        async with self.db.begin() as unit:
            received = await unit.fetch(
                _RECEIVE,
                ids=[e.event_id for _, e in events],
                topics=[t for t, _ in events],
                types=[e.type for _, e in events],
            )
            fresh = {row[0] for row in received}
            applied = []
            run: list[Envelope] = []  # consecutive events for one Batched handler
            run_handler: Batched | None = None
            for topic, event in events:
                if event.event_id not in fresh:
                    DUPLICATES.labels(topic).inc()
                    continue
                fresh.discard(event.event_id)  # the same event twice in one poll: once
                handler = self.handlers[topic]
                if run_handler is not None and handler is not run_handler:
                    await run_handler.handle(unit, run)
                    run, run_handler = [], None
                if isinstance(handler, Batched):
                    run.append(event)
                    run_handler = handler
                else:
                    await handler(unit, event)
                applied.append(topic)
            if run_handler is not None:
                await run_handler.handle(unit, run)
        for topic in applied:
            APPLIED.labels(topic).inc()
        return len(applied)

    async def _apply_alone(self, topic: str, event: Envelope) -> int:
        """One event in its own transaction, retried with backoff, then dead-lettered."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                return await self._apply([(topic, event)])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_outage(exc):
                    raise
                if attempt == self.max_attempts:
                    log.exception("event %s on %s failed %d times; dead-lettered", event.event_id, topic, attempt)
                    await self._dead_letter(topic, event.event_id, event.to_json(), f"{type(exc).__name__}: {exc}")
                    return 0
                await asyncio.sleep(0.05 * 2**attempt)
        return 0

    async def _dead_letter(self, topic: str, event_id: str, raw: bytes, error: str) -> None:
        DEAD.labels(topic).inc()
        async with self.db.begin() as unit:
            await unit.execute(
                _DEAD_LETTER,
                event_id=event_id,
                topic=topic,
                envelope=raw.decode("utf-8", "replace")[:100_000],
                error=error[:4000],
            )
            if event_id != UNREADABLE_ID:
                await unit.fetch(_RECEIVE, ids=[event_id], topics=[topic], types=[topic])


Listener = Callable[[Envelope], None]


class Broadcast:
    """Every instance of a service hears these topics (no group, from the end of the log, nothing committed): for
    what each process keeps in memory and must drop when another instance's consumer applied a change (e.g. the
    institutions settlement caches). What the group's consumer applies to the database stays its own business."""

    def __init__(self, *, bootstrap: str, listeners: dict[str, Listener]) -> None:
        self.bootstrap = bootstrap
        self.listeners = listeners
        self._consumer: Any = None

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                self._consumer = make_consumer(self.bootstrap, *self.listeners, group_id=None, offset_reset="latest")
                await asyncio.wait_for(self._consumer.start(), 15)
                backoff = 0.2
                while True:
                    batches = await self._consumer.getmany(timeout_ms=1000, max_records=500)
                    for messages in batches.values():
                        for message in messages:
                            self._hear(message.topic, message.value)
            except (Exception, asyncio.CancelledError) as exc:
                if isinstance(exc, asyncio.CancelledError) and cancelled_from_outside():
                    raise
                log.info("broadcast paused: %s", type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                await self.stop()

    def _hear(self, topic: str, raw: bytes) -> None:
        try:
            self.listeners[topic](Envelope.from_json(raw))
        except Exception as exc:  # a listener only drops what it keeps; a bad message must not stop the others
            log.warning("broadcast listener for %s failed: %s", topic, type(exc).__name__)

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await close_quietly(consumer)
