"""Which life of the broker we are talking to.

A broker that comes back without its log (the embedded broker keeps it in memory; a Kafka whose disks were
replaced) looks like the old one: same address, same topics soon recreated, offsets starting again at 0 and
overtaking the old ones under load. Comparing offsets cannot tell the two apart every time; an identity can.

The broker's epoch is a random id kept as the first record of a one-partition topic (kept forever). The first client
that finds the topic missing or empty creates it and writes a fresh id; whoever wrote first, every client then reads
the same record at offset 0. A broker that lost its log has lost that record too, so the next reader writes a new
id: the epoch changed. Relays label what they publish with the epoch, consumers commit offsets only to the epoch
they started in (docs/events.md).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from aiokafka import TopicPartition

from shared.events.kafka import close_quietly, ensure_topics, make_consumer, make_producer

log = logging.getLogger("yibao.epoch")

EPOCH_TOPIC = "yibao.broker-epoch"
_PARTITION = TopicPartition(EPOCH_TOPIC, 0)
READ_TIMEOUT_MS = 1000
KEEP_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}  # on a durable Kafka the first record must stay


class BrokerEpoch:
    """Reads (and, on a fresh broker, writes) the broker's epoch id."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._reader: Any = None
        self._writer: Any = None
        self._reading = asyncio.Lock()  # one reader: a seek of one read must not move another's

    async def start(self) -> None:
        self._reader = make_consumer(self.bootstrap, group_id=None)
        await asyncio.wait_for(self._reader.start(), 10)
        self._reader.assign([_PARTITION])
        self._writer = make_producer(self.bootstrap)
        await asyncio.wait_for(self._writer.start(), 10)

    async def stop(self) -> None:
        for client in (self._reader, self._writer):
            if client is not None:
                await close_quietly(client)
        self._reader = self._writer = None

    async def read(self) -> str:
        """The epoch of the broker now; a fresh broker gets one. Raises when the broker cannot be reached."""
        async with self._reading:
            return await self._read()

    async def _read(self) -> str:
        for _ in range(5):
            found = await self._first_record()
            if found is not None:
                return found
            await ensure_topics(self.bootstrap, (EPOCH_TOPIC,), 1, configs=KEEP_FOREVER)
            candidate = uuid.uuid4().hex
            await asyncio.wait_for(self._writer.send_and_wait(EPOCH_TOPIC, candidate.encode(), partition=0), 10)
        raise ConnectionError("the broker's epoch record could not be read back")

    async def _first_record(self) -> str | None:
        self._reader.seek(_PARTITION, 0)
        batch = await self._reader.getmany(_PARTITION, timeout_ms=READ_TIMEOUT_MS, max_records=1)
        records = batch.get(_PARTITION) or []
        return records[0].value.decode() if records else None
