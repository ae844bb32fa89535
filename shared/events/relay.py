"""The outbox relay: publish committed events in order, mark them sent after the broker's ack.

The broker is a transport, not the record (docs/events.md, "Delivery"). Every row is marked with the broker's epoch
(shared.events.epoch) it was published to. Every second the relay reads the epoch again and how far each consumer
group of a topic has committed its offsets in that epoch, and reads the log back up to there: what the log holds at
each row's offset must be that row (a broker may acknowledge a record it then does not keep where it said, as the
embedded one does in the confusion of a restart); a row it does not hold goes again. Below the watermark
(`relay_watermarks`), every group has applied every row. When the epoch changed (the broker came back without its
log) the relay publishes again every row of a lost epoch that some group may not have applied, whatever the offsets
of the new log say; the consumers' inboxes make the repeats harmless. This watching runs beside the publishing, so
that it never holds up an event.

However many instances of a service run, one relay publishes its outbox at a time (it holds the `Lease`, an advisory
lock on a connection of its own): rows of one key leave in order. The others stand by and take over when that
connection ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import orjson
from aiokafka import TopicPartition
from prometheus_client import Counter, Gauge

from shared.db import Database, Lease, Sql, is_outage
from shared.events.envelope import dumpb
from shared.events.epoch import BrokerEpoch
from shared.events.kafka import cancelled_from_outside, close_quietly, ensure_topics, make_consumer, make_producer
from shared.events.topics import CONSUMER_GROUPS

log = logging.getLogger("yibao.relay")

PUBLISHED = Counter("yibao_outbox_published_total", "events published from the outbox", ["topic"])
REPUBLISHED = Counter("yibao_outbox_republished_total", "events queued again after the broker lost its log")
PENDING = Gauge("yibao_outbox_pending", "outbox rows not yet published")

SEND_TIMEOUT = 10.0
READ_BACK_WAIT_MS = 1000
LINGER_SECONDS = 0.005  # after a wake-up: under load, one batch a few ms late instead of a batch per commit
APPLIED = "-"  # the epoch mark of rows of a lost epoch that every consumer group had applied

_NEXT = Sql("""
SELECT id, topic, key, envelope FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT :batch
   FOR UPDATE SKIP LOCKED
""")
_MARK_SENT = Sql("""
UPDATE outbox SET published_at = now(), epoch = :epoch, partition = :partition, "offset" = :offset,
       attempts = attempts + 1
 WHERE id = :id
""")
# A row of a lost epoch is published again unless every group had committed past it in that epoch.
_REQUEUE_LOST = Sql("""
UPDATE outbox o SET published_at = NULL, epoch = NULL, partition = NULL, "offset" = NULL
 WHERE o.published_at IS NOT NULL AND o.epoch <> :epoch AND o.epoch <> '-'
   AND NOT EXISTS (SELECT 1 FROM relay_watermarks w
                    WHERE w.epoch = o.epoch AND w.topic = o.topic AND w.partition = o.partition
                      AND o."offset" < w.applied_below)
""")
_SETTLE_LOST = Sql("UPDATE outbox SET epoch = '-' WHERE published_at IS NOT NULL AND epoch <> :epoch AND epoch <> '-'")
_FORGET_WATERMARKS = Sql("DELETE FROM relay_watermarks WHERE epoch <> :epoch")
_UNAPPLIED = Sql("""
SELECT o.topic, o.partition, max(o."offset") AS high
  FROM outbox o
 WHERE o.published_at IS NOT NULL AND o.epoch = :epoch
   AND o."offset" >= coalesce((SELECT w.applied_below FROM relay_watermarks w
                                WHERE w.epoch = o.epoch AND w.topic = o.topic AND w.partition = o.partition), 0)
 GROUP BY o.topic, o.partition
""")
_WATERMARK = Sql("""
INSERT INTO relay_watermarks AS w (epoch, topic, partition, applied_below) VALUES (:epoch, :topic, :partition, :below)
ON CONFLICT (epoch, topic, partition) DO UPDATE
   SET applied_below = greatest(w.applied_below, EXCLUDED.applied_below), observed_at = now()
""")
_WATERMARKS = Sql("SELECT topic, partition, applied_below FROM relay_watermarks WHERE epoch = :epoch")
_PUBLISHED_IN = Sql("""
SELECT id, CAST(event_id AS text) AS event_id, "offset" FROM outbox
 WHERE epoch = :epoch AND topic = :topic AND partition = :partition AND published_at IS NOT NULL
   AND "offset" >= :low AND "offset" < :high
""")
_REQUEUE_IDS = Sql("""
UPDATE outbox SET published_at = NULL, epoch = NULL, partition = NULL, "offset" = NULL
 WHERE id = ANY(CAST(:ids AS bigint[]))
""")
_PURGE = Sql("DELETE FROM outbox WHERE published_at < now() - make_interval(hours => :hours)")
_PENDING = Sql("SELECT count(*) FROM outbox WHERE published_at IS NULL")


class _LeaseLost(Exception):
    pass


class _EpochChanged(Exception):
    def __init__(self, epoch: str) -> None:
        super().__init__(epoch)
        self.epoch = epoch


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
        check_seconds: float = 1.0,
        groups: Mapping[str, tuple[str, ...]] = CONSUMER_GROUPS,
    ) -> None:
        self.db = db
        self.bootstrap = bootstrap
        self.topics = topics
        self.partitions = partitions
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.retention_hours = retention_hours
        self.check_seconds = check_seconds
        self.groups = groups
        self.epoch: str | None = None
        self.connected = False
        self.standby = False  # another instance of the service holds the relay's lease
        self.lease = Lease(db, "relay")
        self.unapplied: dict[tuple[str, int], int] = {}  # (topic, partition) → highest offset published, this epoch
        self._producer: Any = None
        self._epoch: BrokerEpoch | None = None
        self._watchers: dict[str, Any] = {}
        self._reader: Any = None  # reads back what the consumer groups have committed past
        self._wake = asyncio.Event()
        self._adopting = asyncio.Lock()

    def wake(self) -> None:
        """Publish soon: a transaction just committed events."""
        self._wake.set()

    @property
    def ready(self) -> bool:
        """Publishing, or standing by while another instance of the service does."""
        return self.connected or self.standby

    async def run(self) -> None:
        """Run until cancelled: hold the lease (one relay per service publishes), reconnecting with backoff when the
        broker is away."""
        backoff = 0.2
        while True:
            try:
                await self._take_lease()
                await self._connect()
                backoff = 0.2
                await self._loop()
            except (Exception, asyncio.CancelledError) as exc:  # broker down: wait and try again
                if isinstance(exc, asyncio.CancelledError) and cancelled_from_outside():
                    raise
                self.connected = False
                log.warning("relay paused: %s: %s", type(exc).__name__, str(exc)[:200])
                await self._disconnect()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def stop(self) -> None:
        await self._disconnect()
        await self.lease.release()

    async def _take_lease(self) -> None:
        """Wait until this instance holds the relay's lease (at once, when it is the only one)."""
        while True:
            try:
                if await self.lease.take():
                    self.standby = False
                    return
                self.standby = True
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self.standby = False
            await asyncio.sleep(1.0)

    async def _connect(self) -> None:
        await ensure_topics(self.bootstrap, self.topics, self.partitions)
        self._producer = make_producer(self.bootstrap)
        await asyncio.wait_for(self._producer.start(), 10)
        self._epoch = BrokerEpoch(self.bootstrap)
        await self._epoch.start()
        await self.adopt(await self._epoch.read())
        self.connected = True

    async def _disconnect(self) -> None:
        clients = [self._producer, self._reader, *self._watchers.values()]
        self._producer, self._reader, self._watchers = None, None, {}
        for client in clients:
            if client is not None:
                await close_quietly(client)
        if self._epoch is not None:
            await self._epoch.stop()
            self._epoch = None

    async def _loop(self) -> None:
        """Publish, and beside it (so that reading offsets and the log back never holds up an event) watch the
        epoch and the watermarks; either one failing ends both."""
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._publish_loop())
                tasks.create_task(self._watch_loop())
        except ExceptionGroup as group:
            raise group.exceptions[0] from None

    async def _watch_loop(self) -> None:
        last_purge = 0.0
        while True:
            await asyncio.sleep(self.check_seconds)
            try:
                await self.check()
                if time.monotonic() - last_purge >= 600:
                    await self.purge()
                    last_purge = time.monotonic()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                log.warning("relay's watch waits for the database: %s", type(exc).__name__)

    async def _publish_loop(self) -> None:
        while True:
            if not self.lease.held:
                raise _LeaseLost("the relay's lease ended with its connection; taking it again")
            try:
                sent = await self.publish_batch()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                log.warning("relay waits for the database: %s", type(exc).__name__)  # the broker stays connected
                await asyncio.sleep(0.5)
                continue
            if sent < self.batch:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                    await asyncio.sleep(LINGER_SECONDS)  # let the commits of this moment join one batch
                except TimeoutError:
                    pass

    async def publish_batch(self) -> int:
        """Publish the oldest unpublished rows; mark them sent only after every ack, with the epoch read after the
        acks (so a row is marked with the broker life that holds it: lives only follow one another). When the epoch
        changed under the batch, nothing is marked and the new epoch is adopted: the rows go again."""
        assert self._epoch is not None
        try:
            async with self.db.begin() as unit:
                rows = await unit.fetch(_NEXT, batch=self.batch)
                if not rows:
                    PENDING.set(0)
                    return 0
                futures = [
                    await self._producer.send(row.topic, dumpb(row.envelope), key=row.key.encode()) for row in rows
                ]
                results = await asyncio.wait_for(asyncio.gather(*futures), SEND_TIMEOUT)
                await self.after_publish(rows)
                epoch = await self._epoch.read()
                if epoch != self.epoch:
                    raise _EpochChanged(epoch)
                await unit.executemany(
                    _MARK_SENT,
                    [
                        {"id": row.id, "epoch": self.epoch, "partition": meta.partition, "offset": meta.offset}
                        for row, meta in zip(rows, results, strict=True)
                    ],
                )
        except _EpochChanged as changed:
            log.warning("the broker came back without its log (epoch %s → %s)", self.epoch, changed.epoch)
            await self.adopt(changed.epoch)
            return 0
        for row, meta in zip(rows, results, strict=True):
            tp = (row.topic, meta.partition)
            self.unapplied[tp] = max(self.unapplied.get(tp, -1), meta.offset)
            PUBLISHED.labels(row.topic).inc()
        return len(rows)

    async def after_publish(self, rows: list[Any]) -> None:
        """Hook between the broker's ack and marking the rows sent (a crash here means redelivery)."""

    async def check(self) -> None:
        """Read the broker's epoch: a new one means it lost its log (adopt it); else note what groups applied."""
        assert self._epoch is not None
        epoch = await self._epoch.read()
        if epoch != self.epoch:
            log.warning("the broker came back without its log (epoch %s → %s)", self.epoch, epoch)
            await self.adopt(epoch)
            return
        if self.unapplied:
            await self.observe()

    async def adopt(self, epoch: str) -> None:
        """Publish into `epoch` from now on; what lost epochs may not have delivered is published again first."""
        async with self._adopting:
            if epoch != self.epoch:
                await self._adopt(epoch)

    async def _adopt(self, epoch: str) -> None:
        async with self.db.begin() as unit:
            status = await unit.execute(_REQUEUE_LOST, epoch=epoch)
            await unit.execute(_SETTLE_LOST, epoch=epoch)
            await unit.execute(_FORGET_WATERMARKS, epoch=epoch)
            unapplied = await unit.fetch(_UNAPPLIED, epoch=epoch)
        requeued = int(status.split()[-1])
        if requeued:
            REPUBLISHED.inc(requeued)
            log.warning("publishing %d events again that a lost broker log may not have delivered", requeued)
            self.wake()
        self.epoch = epoch
        self.unapplied = {(row.topic, row.partition): row.high for row in unapplied}

    async def observe(self) -> None:
        """Raise the watermarks: per partition with rows not yet known applied, how far every consumer group has
        committed, checked against the log itself. A row below that counts as applied only if the log holds it at
        the offset the broker acknowledged: one that the log does not hold there (a broker that lost or overwrote
        an acknowledged record in the confusion of a restart) is published again."""
        assert self._epoch is not None
        committed: dict[tuple[str, int], int] = {}
        for (topic, partition), high in list(self.unapplied.items()):
            tp = TopicPartition(topic, partition)
            offsets = [await (await self._watcher(g)).committed(tp) for g in self.groups.get(topic, ())]
            committed[(topic, partition)] = min((c or 0 for c in offsets), default=high + 1)
        async with self.db.connect() as unit:
            lows = {(r.topic, r.partition): r.applied_below for r in await unit.fetch(_WATERMARKS, epoch=self.epoch)}
        lost: list[int] = []
        for (topic, partition), below in committed.items():
            low = lows.get((topic, partition), 0)
            if below <= low:
                continue
            async with self.db.connect() as unit:
                rows = await unit.fetch(
                    _PUBLISHED_IN, epoch=self.epoch, topic=topic, partition=partition, low=low, high=below
                )
            held = await self._read_back(TopicPartition(topic, partition), low, below)
            lost += [row.id for row in rows if held.get(row.offset) != row.event_id]
        if await self._epoch.read() != self.epoch:
            return  # those offsets and records may be a new broker life's; the next check adopts it
        async with self.db.begin() as unit:
            if lost:
                await unit.execute(_REQUEUE_IDS, ids=lost)
            await unit.executemany(
                _WATERMARK,
                [
                    {"epoch": self.epoch, "topic": t, "partition": p, "below": below}
                    for (t, p), below in committed.items()
                    if below > 0
                ],
            )
        if lost:
            REPUBLISHED.inc(len(lost))
            log.warning(
                "the broker does not hold %d acknowledged events where it said: publishing them again", len(lost)
            )
            self.wake()
        for tp, below in committed.items():
            if below > self.unapplied.get(tp, -1):
                self.unapplied.pop(tp, None)

    async def _read_back(self, tp: TopicPartition, low: int, high: int) -> dict[int, str]:
        """offset → event_id of the records the log holds in [low, high) of one partition."""
        if self._reader is None:
            self._reader = make_consumer(self.bootstrap, group_id=None)
            await asyncio.wait_for(self._reader.start(), 10)
        if tp not in self._reader.assignment():
            self._reader.assign([*self._reader.assignment(), tp])
        self._reader.seek(tp, low)
        held: dict[int, str] = {}
        while True:
            batch = await self._reader.getmany(tp, timeout_ms=READ_BACK_WAIT_MS, max_records=1000)
            records = batch.get(tp) or []
            for record in records:
                if record.offset < high:
                    held[record.offset] = str(orjson.loads(record.value).get("event_id"))
            if not records or records[-1].offset >= high - 1:
                return held

    async def _watcher(self, group: str) -> Any:
        """A client of the group that never subscribes: it only reads the group's committed offsets."""
        if group not in self._watchers:
            watcher = make_consumer(self.bootstrap, group_id=group)
            await asyncio.wait_for(watcher.start(), 10)
            self._watchers[group] = watcher
        return self._watchers[group]

    async def purge(self) -> int:
        """Forget published events older than the retention window."""
        async with self.db.begin() as unit:
            status = await unit.execute(_PURGE, hours=self.retention_hours)
            pending = await unit.fetchval(_PENDING)
        PENDING.set(pending or 0)
        return int(status.split()[-1])
