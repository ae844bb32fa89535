"""The outbox relay: publish committed events in order, mark them sent after the broker's ack.

The broker is a transport, not the record. When the broker comes back without its log (the
embedded broker keeps it in memory; a Kafka may expire it), the relay notices that a partition's
offsets went backwards and publishes again every event still retained in the outbox; consumers'
inboxes make the repeats harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import TopicPartition
from prometheus_client import Counter, Gauge

from shared.db import Database, Sql, Unit
from shared.events.envelope import dumpb
from shared.events.kafka import ensure_topics, make_consumer, make_producer

log = logging.getLogger("yibao.relay")

PUBLISHED = Counter("yibao_outbox_published_total", "events published from the outbox", ["topic"])
REPUBLISHED = Counter("yibao_outbox_republished_total", "events queued again after the broker lost its log")
PENDING = Gauge("yibao_outbox_pending", "outbox rows not yet published")

SEND_TIMEOUT = 10.0
LINGER_SECONDS = 0.005  # after a wake-up: under load, one batch a few ms late instead of a batch per commit

_NEXT = Sql("""
SELECT id, topic, key, envelope FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT :batch
   FOR UPDATE SKIP LOCKED
""")
_MARK_SENT = Sql("""
UPDATE outbox SET published_at = now(), partition = :partition, "offset" = :offset, attempts = attempts + 1
 WHERE id = :id
""")
_REQUEUE = Sql("""
UPDATE outbox SET published_at = NULL, partition = NULL, "offset" = NULL
 WHERE published_at IS NOT NULL AND published_at > now() - make_interval(hours => :hours)
   AND NOT (id = ANY(CAST(:exclude AS bigint[])))
""")
_HIGH_MARKS = Sql("""
SELECT topic, partition, max("offset") AS high FROM outbox
 WHERE published_at IS NOT NULL AND partition IS NOT NULL GROUP BY topic, partition
""")
_PURGE = Sql("DELETE FROM outbox WHERE published_at < now() - make_interval(hours => :hours)")
_PENDING = Sql("SELECT count(*) FROM outbox WHERE published_at IS NULL")


class Relay:
    """Publishes one service's outbox to Kafka."""

    def __init__(
        self,
        *,
        db: Database,
        bootstrap: str,
        topics: tuple[str, ...],
        partitions: int = 3,
        poll_seconds: float = 0.05,
        batch: int = 200,
        retention_hours: int = 168,
        check_seconds: float = 3.0,
    ) -> None:
        self.db = db
        self.bootstrap = bootstrap
        self.topics = topics
        self.partitions = partitions
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.retention_hours = retention_hours
        self.check_seconds = check_seconds
        self.high: dict[tuple[str, int], int] = {}
        self.seen_ends: dict[tuple[str, int], int] = {}
        self.connected = False
        self._producer: Any = None
        self._watcher: Any = None
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Publish soon: a transaction just committed events."""
        self._wake.set()

    async def run(self) -> None:
        """Run until cancelled, reconnecting with backoff when the broker is away."""
        backoff = 0.2
        while True:
            try:
                await self._connect()
                backoff = 0.2
                await self._loop()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker down, database down: wait and try again
                self.connected = False
                log.warning("relay paused: %s: %s", type(exc).__name__, str(exc)[:200])
                await self._disconnect()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def stop(self) -> None:
        await self._disconnect()

    async def _connect(self) -> None:
        await ensure_topics(self.bootstrap, self.topics, self.partitions)
        self._producer = make_producer(self.bootstrap)
        await asyncio.wait_for(self._producer.start(), 10)
        self._watcher = make_consumer(self.bootstrap, group_id=None)
        await asyncio.wait_for(self._watcher.start(), 10)
        await self._load_high_marks()
        self.connected = True

    async def _disconnect(self) -> None:
        for client in (self._producer, self._watcher):
            if client is not None:
                try:
                    await asyncio.wait_for(client.stop(), 5)
                except Exception:  # already broken; nothing more to release
                    pass
        self._producer = self._watcher = None

    async def _loop(self) -> None:
        last_check = time.monotonic()
        last_purge = 0.0
        while True:
            sent = await self.publish_batch()
            now = time.monotonic()
            if now - last_check >= self.check_seconds:
                await self.check_for_lost_log()
                last_check = now
            if now - last_purge >= 600:
                await self.purge()
                last_purge = now
            if sent < self.batch:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                    await asyncio.sleep(LINGER_SECONDS)  # let the commits of this moment join one batch
                except TimeoutError:
                    pass

    async def publish_batch(self) -> int:
        """Publish the oldest unpublished rows; mark them sent only after every ack."""
        async with self.db.begin() as unit:
            rows = await unit.fetch(_NEXT, batch=self.batch)
            if not rows:
                PENDING.set(0)
                return 0
            futures = [await self._producer.send(row.topic, dumpb(row.envelope), key=row.key.encode()) for row in rows]
            results = await asyncio.wait_for(asyncio.gather(*futures), SEND_TIMEOUT)
            await self.after_publish(rows)
            lost = any(
                meta.offset <= self.high.get((row.topic, meta.partition), -1) for row, meta in zip(rows, results)
            )
            await unit.executemany(
                _MARK_SENT,
                [
                    {"id": row.id, "partition": meta.partition, "offset": meta.offset}
                    for row, meta in zip(rows, results)
                ],
            )
            if lost:
                log.warning("broker offsets went back: it lost its log")
                await self._requeue(unit, exclude_ids=[r.id for r in rows])
                self.high = {}
                self.seen_ends = {}
            for row, meta in zip(rows, results):
                tp = (row.topic, meta.partition)
                self.high[tp] = max(self.high.get(tp, -1), meta.offset)
            for row in rows:
                PUBLISHED.labels(row.topic).inc()
            return len(rows)

    async def after_publish(self, rows: list[Any]) -> None:
        """Hook between the broker's ack and marking the rows sent (a crash here means redelivery)."""

    async def check_for_lost_log(self) -> None:
        """Requeue if the broker's log went backwards: a partition we published to is empty, or its
        reported end offset is lower than at the previous check.

        Both signals hold on Kafka and on the embedded broker, whose reported end offset may trail
        the produced offsets when records arrive in batches (so it is never compared with them).
        """
        known = set(self.high) | set(self.seen_ends)
        if not known:
            return
        tps = [TopicPartition(t, p) for (t, p) in sorted(known)]
        try:
            ends = await asyncio.wait_for(self._watcher.end_offsets(tps), 5)
        except Exception as exc:  # unknown topic after a restart also means the log is gone
            if "UnknownTopic" not in type(exc).__name__:
                raise
            ends = {tp: 0 for tp in tps}
        behind = [
            tp
            for tp in tps
            if ends.get(tp, 0) < self.seen_ends.get((tp.topic, tp.partition), 0)
            or (ends.get(tp, 0) == 0 and self.high.get((tp.topic, tp.partition), -1) >= 0)
        ]
        self.seen_ends = {(tp.topic, tp.partition): ends.get(tp, 0) for tp in tps}
        if behind:
            log.warning("broker lost its log (%s partitions went back); publishing retained events again", len(behind))
            await ensure_topics(self.bootstrap, self.topics, self.partitions)
            async with self.db.begin() as unit:
                await self._requeue(unit)
            self.high.clear()
            self.seen_ends.clear()

    async def _requeue(self, unit: Unit, *, exclude_ids: list[int] | None = None) -> None:
        status = await unit.execute(_REQUEUE, hours=self.retention_hours, exclude=exclude_ids or [])
        count = int(status.split()[-1])
        REPUBLISHED.inc(count)
        log.warning("requeued %d retained events for publishing again", count)

    async def _load_high_marks(self) -> None:
        async with self.db.connect() as unit:
            rows = await unit.fetch(_HIGH_MARKS)
        self.high = {(row.topic, row.partition): int(row.high) for row in rows}

    async def purge(self) -> int:
        """Forget published events older than the retention window."""
        async with self.db.begin() as unit:
            status = await unit.execute(_PURGE, hours=self.retention_hours)
            pending = await unit.fetchval(_PENDING)
        PENDING.set(pending or 0)
        return int(status.split()[-1])
