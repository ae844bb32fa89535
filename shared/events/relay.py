"""The outbox relay: publish committed events in order, mark them sent after the broker's ack, and find out that
every consumer group applied them.

The broker is a transport, not the record (docs/events.md, "Delivery"). A row is sent when the broker acknowledged
it, and delivered when every consumer group of its topic says its inbox holds it: every second the relay asks each
group's service (`POST /v1/inbox/applied`, the ids of rows not yet delivered) and keeps the answers (`applied_by`,
`delivered`). The acknowledgement is not trusted further than that: the embedded broker, killed and back within
seconds, was seen acknowledging records its log then did not hold where it said, or held at one moment and not at the
next. So:
- a row a group has not applied although it has committed offsets past the row's (it read past it: what it found
  there was not this row), or that the log does not hold (its offset at or past the end of its partition, or a
  partition the topic no longer has), is published again at once;
- when the broker came back without its log (a new epoch, shared.events.epoch), every row not delivered is
  published again, whatever the offsets of the new log say.
The consumers' inboxes make the repeats harmless. This watching runs beside the publishing and never holds it up.

However many instances of a service run, one relay publishes its outbox at a time (it holds the `Lease`, an advisory
lock on a connection of its own): rows of one key leave in order. The others stand by and take over when that
connection ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiokafka import TopicPartition
from prometheus_client import Counter, Gauge

from shared.db import Database, Lease, Sql, is_outage
from shared.events.envelope import dumpb
from shared.events.epoch import BrokerEpoch
from shared.events.kafka import (
    cancelled_from_outside,
    close_quietly,
    ensure_topics,
    make_consumer,
    make_producer,
    partition_for,
)
from shared.events.topics import CONSUMER_GROUPS

log = logging.getLogger("yibao.relay")

PUBLISHED = Counter("yibao_outbox_published_total", "events published from the outbox", ["topic"])
REPUBLISHED = Counter("yibao_outbox_republished_total", "events queued again after the broker lost its log")
PENDING = Gauge("yibao_outbox_pending", "outbox rows not yet published")
UNDELIVERED = Gauge(
    "yibao_outbox_undelivered", "outbox rows sent and not yet applied by every consumer group (counted up to 2000)"
)

SEND_TIMEOUT = 10.0
CONFIRM_BATCH = 2000  # rows asked about per round (the oldest first)
SETTLE_SECONDS = 2.0  # a row younger than this is not yet called lost (its consumer may be applying it right now)
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
UPDATE outbox SET published_at = NULL, epoch = NULL, partition = NULL, "offset" = NULL
 WHERE published_at IS NOT NULL AND NOT delivered AND epoch IS DISTINCT FROM :epoch
""")
_UNDELIVERED = Sql("""
SELECT id, CAST(event_id AS text) AS event_id, topic, epoch, partition, "offset", applied_by,
       published_at < now() - make_interval(secs => :settle) AS settled
  FROM outbox WHERE published_at IS NOT NULL AND NOT delivered ORDER BY id LIMIT :limit
""")
_CONFIRM = Sql("""
UPDATE outbox SET applied_by = CAST(:applied_by AS text[]), delivered = :delivered WHERE id = :id
""")
_REQUEUE_IDS = Sql("""
UPDATE outbox SET published_at = NULL, epoch = NULL, partition = NULL, "offset" = NULL
 WHERE id = ANY(CAST(:ids AS bigint[])) AND NOT delivered
""")
_PURGE = Sql("DELETE FROM outbox WHERE published_at < now() - make_interval(hours => :hours)")
_PENDING = Sql("SELECT count(*) FROM outbox WHERE published_at IS NULL")


class _LeaseLost(Exception):
    pass


class _EpochChanged(Exception):
    def __init__(self, epoch: str) -> None:
        super().__init__(epoch)
        self.epoch = epoch


Inbox = Callable[[str, list[str]], Awaitable[set[str] | None]]  # (group, event ids) → those applied; None: no answer


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
        inbox: Inbox | None = None,
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
        self.inbox = inbox  # asks a consumer group which event ids it has applied (None: no one to ask)
        self.epoch: str | None = None
        self.connected = False
        self.standby = False  # another instance of the service holds the relay's lease
        self.lease = Lease(db, "relay")
        self._producer: Any = None
        self._epoch: BrokerEpoch | None = None
        self._watchers: dict[str | None, Any] = {}
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
        clients = [self._producer, *self._watchers.values()]
        self._producer, self._watchers = None, {}
        for client in clients:
            if client is not None:
                await close_quietly(client)
        if self._epoch is not None:
            await self._epoch.stop()
            self._epoch = None

    async def _loop(self) -> None:
        """Publish, and beside it (so that asking the consumer groups never holds up an event) watch the epoch and
        confirm deliveries; either one failing ends both."""
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
                futures = []
                for row in rows:
                    key = row.key.encode()
                    partition = partition_for(key, self.partitions)
                    futures.append(
                        await self._producer.send(row.topic, dumpb(row.envelope), key=key, partition=partition)
                    )
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
        for row in rows:
            PUBLISHED.labels(row.topic).inc()
        return len(rows)

    async def after_publish(self, rows: list[Any]) -> None:
        """Hook between the broker's ack and marking the rows sent (a crash here means redelivery)."""

    async def check(self) -> None:
        """Read the broker's epoch: a new one means it lost its log (adopt it); else confirm deliveries."""
        assert self._epoch is not None
        epoch = await self._epoch.read()
        if epoch != self.epoch:
            log.warning("the broker came back without its log (epoch %s → %s)", self.epoch, epoch)
            await self.adopt(epoch)
            return
        await self.confirm()

    async def adopt(self, epoch: str) -> None:
        """Publish into `epoch` from now on; what was sent into lost epochs and not delivered goes again first."""
        async with self._adopting:
            if epoch == self.epoch:
                return
            async with self.db.begin() as unit:
                requeued = int((await unit.execute(_REQUEUE_LOST, epoch=epoch)).split()[-1])
            if requeued:
                REPUBLISHED.inc(requeued)
                log.warning("publishing %d events again that a lost broker log may not have delivered", requeued)
                self.wake()
            self.epoch = epoch

    async def confirm(self) -> None:
        """Ask every consumer group which of the rows sent and not yet delivered it has applied; keep the answers.
        A row a group has not applied although it committed offsets past it (in this epoch) is sent again."""
        assert self._epoch is not None
        async with self.db.connect() as unit:
            rows = await unit.fetch(_UNDELIVERED, settle=SETTLE_SECONDS, limit=CONFIRM_BATCH)
        if not rows:
            UNDELIVERED.set(0)
            return
        asked: dict[str, set[str]] = {}  # group → the event ids to ask it about
        for row in rows:
            for group in self.groups.get(row.topic, ()):
                if group not in row.applied_by:
                    asked.setdefault(group, set()).add(row.event_id)
        past = await self._committed_past(rows)  # first the offsets, then the inboxes (consumers commit after)
        absent = await self._not_in_log(rows)
        applied: dict[str, set[str]] = {}
        for group, ids in asked.items():
            answer = await self.inbox(group, sorted(ids)) if self.inbox is not None else None
            if answer is not None:
                applied[group] = answer
        if await self._epoch.read() != self.epoch:
            return  # those offsets may be a new broker life's; the next check adopts it
        confirmed, lost = [], []
        for row in rows:
            groups = self.groups.get(row.topic, ())
            now = set(row.applied_by) | {g for g in groups if row.event_id in applied.get(g, ())}
            if now != set(row.applied_by) or now >= set(groups):
                confirmed.append({"id": row.id, "applied_by": sorted(now), "delivered": now >= set(groups)})
            missed = [
                g
                for g in groups
                if g in applied
                and g not in now
                and ((g, row.topic, row.partition, row.offset) in past or row.id in absent)
            ]
            if missed and row.settled and row.epoch == self.epoch:
                lost.append(row.id)
        UNDELIVERED.set(len(rows) - sum(1 for row in confirmed if row["delivered"]))
        async with self.db.begin() as unit:
            if confirmed:
                await unit.executemany(_CONFIRM, confirmed)
            if lost:
                await unit.execute(_REQUEUE_IDS, ids=lost)
        if lost:
            REPUBLISHED.inc(len(lost))
            log.warning(
                "%d events not applied by a consumer group were read past or are not in the log: publishing them again",
                len(lost),
            )
            self.wake()

    async def _committed_past(self, rows: list[Any]) -> set[tuple[str, str, int, int]]:
        """(group, topic, partition, offset) of the rows (of this epoch) that the group has committed offsets past."""
        committed: dict[tuple[str, str, int], int] = {}
        past = set()
        for row in rows:
            if row.epoch != self.epoch or row.partition is None:
                continue
            for group in self.groups.get(row.topic, ()):
                key = (group, row.topic, row.partition)
                if key not in committed:
                    watcher = await self._watcher(group)
                    committed[key] = (await watcher.committed(TopicPartition(row.topic, row.partition))) or 0
                if row.offset < committed[key]:
                    past.add((group, row.topic, row.partition, row.offset))
        return past

    async def _not_in_log(self, rows: list[Any]) -> set[int]:
        """The ids of the rows (of this epoch) the broker's log does not hold where it acknowledged them: a partition
        the topic does not have (anymore), or an offset at or past the end of its partition."""
        ours = [row for row in rows if row.epoch == self.epoch and row.partition is not None]
        if not ours:
            return set()
        shape = {topic: await self._producer.partitions_for(topic) for topic in {row.topic for row in ours}}
        places = {TopicPartition(row.topic, row.partition) for row in ours if row.partition in shape[row.topic]}
        ends = await (await self._watcher(None)).end_offsets(sorted(places)) if places else {}
        return {
            row.id
            for row in ours
            if row.partition not in shape[row.topic] or row.offset >= ends[TopicPartition(row.topic, row.partition)]
        }

    async def _watcher(self, group: str | None) -> Any:
        """A client of the group that never subscribes: it only reads the group's committed offsets (None: the log's
        end offsets)."""
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
