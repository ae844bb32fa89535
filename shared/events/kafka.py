"""Kafka clients built one way everywhere: no idempotence, acks=all, bounded timeouts."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import murmur2

log = logging.getLogger("yibao.kafka")


def make_producer(bootstrap: str) -> AIOKafkaProducer:
    """A producer the embedded broker accepts (no InitProducerId) that still waits for all replicas."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        request_timeout_ms=5000,
        retry_backoff_ms=200,
        metadata_max_age_ms=5000,
        linger_ms=2,
    )


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of `key` among the first `partitions`: the Java client's and aiokafka's default (murmur2), but
    counted on the partitions the topics were created with, not on those the broker's metadata shows. The embedded
    broker creates a topic it does not know on a producer's first metadata request, with 4 partitions; after a
    restart that topic can win the race against ensure_topics', and the metadata then changes under the producer
    (chaos seed 106: events keyed into a partition 3 no consumer was ever assigned)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def make_consumer(
    bootstrap: str, *topics: str, group_id: str | None, offset_reset: str = "earliest"
) -> AIOKafkaConsumer:
    """A consumer that commits offsets by hand, after the database transaction (subscribed to `topics` if given);
    where it has no offset it starts at `offset_reset` (earliest: so that it cannot miss anything)."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset=offset_reset,
        metadata_max_age_ms=5000,
        request_timeout_ms=10000,
        # a member that stopped heartbeating is dropped after this; the embedded broker also holds a group's first
        # join for about half of it. After the broker came back empty, a consumer's old instance rejoins before it is
        # closed, and its successor waits for that member to time out: with 10 s a new instance's start took ~18 s
        # and timed out once (lag back under 2 s only 29 s after a broker kill); with 6 s it joins in ~11 s
        session_timeout_ms=6000,
        heartbeat_interval_ms=1500,
        max_poll_records=500,
        # how long the broker may hold a fetch that finds nothing new: the floor of every event's way to its
        # consumers (500 by default: 110 ms p50 on the embedded broker; 50: 13 ms, at ~20 empty fetches a second)
        fetch_max_wait_ms=50,
    )


def cancelled_from_outside() -> bool:
    """True when this task itself is being cancelled, not when a client library lets a CancelledError of its own
    internal tasks escape (aiokafka does, when the broker goes away under a fetch)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def close_quietly(client: Any, timeout: float = 5.0) -> None:
    """Stop an aiokafka client whatever state the broker left it in: its stop() may raise anything (even a
    CancelledError of its own tasks), and with the broker gone it may wait for ever to flush, deaf to cancellation.
    After `timeout` it is left to end on its own; only a cancellation of the caller goes on."""
    stopping = asyncio.ensure_future(client.stop())
    stopping.add_done_callback(lambda task: task.cancelled() or task.exception())  # nothing left unretrieved
    try:
        done, _ = await asyncio.wait({stopping}, timeout=timeout)
    except asyncio.CancelledError:
        stopping.cancel()
        raise
    if not done:
        stopping.cancel()  # asked, not awaited


async def ensure_topics(
    bootstrap: str, topics: tuple[str, ...], partitions: int, configs: dict[str, str] | None = None
) -> None:
    """Create the topics that do not exist yet (a restarted in-memory broker has none), with `configs` if given."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await asyncio.wait_for(admin.start(), 10)
    try:
        existing = set(await asyncio.wait_for(admin.list_topics(), 10))
        missing = [t for t in topics if t not in existing]
        if missing:
            try:
                answer = await asyncio.wait_for(
                    admin.create_topics(
                        [
                            NewTopic(t, num_partitions=partitions, replication_factor=1, topic_configs=configs or {})
                            for t in missing
                        ]
                    ),
                    10,
                )
                created = [t for t, code, *_ in answer.topic_errors if code == 0]
                if created:
                    log.info("created topics %s", ",".join(created))
            except TopicAlreadyExistsError:
                pass
    finally:
        await asyncio.wait_for(admin.close(), 5)
