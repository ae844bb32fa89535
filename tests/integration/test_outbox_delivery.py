"""Effectively-once delivery through the real broker, under the faults that happen in production.

Producer: the eligibility service (registering an institution writes `institution-changed` to its
outbox). Consumer: the prepayment service's copy of institutions, whose `applied` column counts
the events applied — a redelivery that slipped past the inbox would make it 2.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from deploy.embedded import free_port
from services.eligibility.app import spec as eligibility_spec
from services.prepayment.app import spec as prepayment_spec
from shared.events.kafka import make_producer, partition_for
from shared.events.relay import Relay
from shared.events.topics import ALL_TOPICS, INSTITUTION_CHANGED
from shared.service import create_app
from shared.testing import ADMIN_KEY, OPS_KEY, ServiceProcess, make_settings, running_app, service_env
from tests.integration.conftest import create_database, eventually

HEADERS = {"X-Api-Key": ADMIN_KEY}


def institution(code: str) -> dict:
    return {
        "fixmedins_code": code,
        "fixmedins_name": f"医院{code}",
        "kind": "hospital",
        "level": 2,
        "affiliation": "county",
        "admdvs": "621022",
    }


async def copies(url: str, prefix: str) -> dict[str, int]:
    """prepayment's copy: code → number of events applied."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "select fixmedins_code, applied from prepayment.institutions where fixmedins_code like $1", prefix + "%"
        )
    except asyncpg.UndefinedTableError:
        return {}
    finally:
        await conn.close()
    return {r["fixmedins_code"]: r["applied"] for r in rows}


async def unpublished(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("select count(*) from eligibility.outbox where published_at is null")
    finally:
        await conn.close()


async def messages_on_topic(bootstrap: str, prefix: str) -> int:
    """How many copies of our events the broker holds (duplicates included)."""
    consumer = AIOKafkaConsumer(
        INSTITUTION_CHANGED,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    count = 0
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1500)
            if not batch:
                return count
            count += sum(prefix.encode() in m.key for msgs in batch.values() for m in msgs)
    finally:
        await consumer.stop()


class CrashAfterPublish(Exception):
    pass


class CrashingRelay(Relay):
    """Dies after the broker acknowledged, before the rows are marked sent."""

    async def after_publish(self, rows) -> None:
        raise CrashAfterPublish


@asynccontextmanager
async def _with_prepayment_in_process(pg, broker, database: str, *, relay: bool = True):
    """eligibility and prepayment in-process on a database of their own; yields (its url, eligibility's client,
    prepayment's client). `relay=False`: eligibility's relay is off (the test publishes), so it is not awaited ready."""
    url = await create_database(pg, database)
    relay_off = {} if relay else {"RELAY_ENABLED": False}
    settings = make_settings("eligibility", database_url=url, bootstrap=broker.bootstrap, **relay_off)
    consumer_settings = make_settings("prepayment", database_url=url, bootstrap=broker.bootstrap)
    async with (
        running_app(create_app(eligibility_spec, settings), ready=relay) as elig,
        running_app(create_app(prepayment_spec, consumer_settings)) as prep,
    ):
        yield url, elig, prep


@asynccontextmanager
async def _with_a_prepayment_process(pg, broker, workdir, database: str):
    """eligibility in-process and prepayment as a process of its own (to stop, kill and start again), on a database
    of their own; yields (its url, the prepayment process, eligibility's client)."""
    url = await create_database(pg, database)
    settings = make_settings("eligibility", database_url=url, bootstrap=broker.bootstrap)
    consumer = ServiceProcess(
        "prepayment", free_port(), service_env(database_url=url, bootstrap=broker.bootstrap), workdir
    )
    consumer.start()
    try:
        await consumer.wait_ready()
        async with running_app(create_app(eligibility_spec, settings)) as elig:
            yield url, consumer, elig
    finally:
        consumer.stop()


async def test_relay_killed_after_publish_is_redelivered_and_deduplicated(pg, own_broker):
    async with _with_prepayment_in_process(pg, own_broker, "relaykill", relay=False) as (url, elig, _):
        for i in range(20):
            assert (
                await elig.post("/v1/institutions", json=institution(f"RK{i:03d}"), headers=HEADERS)
            ).status_code == 201
        app = elig._transport.app
        crashing = CrashingRelay(db=app.state.db, bootstrap=own_broker.bootstrap, topics=ALL_TOPICS)
        await crashing._connect()
        with pytest.raises(CrashAfterPublish):
            await crashing.publish_batch()
        await crashing.stop()
        assert await unpublished(url) == 20  # the broker has them, the outbox does not know

        relay = Relay(db=app.state.db, bootstrap=own_broker.bootstrap, topics=ALL_TOPICS)
        await relay._connect()
        assert await relay.publish_batch() == 20
        await relay.stop()
        assert await unpublished(url) == 0

        applied = await eventually(lambda: _all(url, "RK", 20), what="20 institutions applied")
        assert set(applied.values()) == {1}
        assert await messages_on_topic(own_broker.bootstrap, "RK") == 40  # every event was on the broker twice


async def _all(url: str, prefix: str, n: int):
    found = await copies(url, prefix)
    return found if len(found) == n else None


async def test_broker_down_10s_while_200_requests_write(pg, own_broker):
    async with _with_prepayment_in_process(pg, own_broker, "brokerdown") as (url, elig, _):
        started = time.monotonic()
        statuses = []
        restarted = False
        own_broker_stopped_at = None
        for i in range(200):
            statuses.append(
                (await elig.post("/v1/institutions", json=institution(f"BD{i:03d}"), headers=HEADERS)).status_code
            )
            elapsed = time.monotonic() - started
            if i == 20:
                own_broker.stop()
                own_broker_stopped_at = time.monotonic()
            if own_broker_stopped_at and not restarted and time.monotonic() - own_broker_stopped_at >= 10:
                own_broker.start()  # back, with an empty log
                restarted = True
            await asyncio.sleep(max(0.0, (i + 1) * 0.06 - elapsed))  # ~200 requests over 12 s
        if not restarted:
            await asyncio.sleep(max(0.0, 10 - (time.monotonic() - own_broker_stopped_at)))
            own_broker.start()
        assert statuses == [201] * 200  # writes never depended on the broker
        applied = await eventually(lambda: _all(url, "BD", 200), timeout=90, what="200 institutions applied")
        assert set(applied.values()) == {1}, {k: v for k, v in applied.items() if v != 1}
        await eventually(lambda: _zero(unpublished(url)), what="outbox drained")


async def _zero(awaitable):
    return (await awaitable) == 0


async def test_consumer_process_restarted_mid_stream(pg, own_broker, workdir):
    async with _with_a_prepayment_process(pg, own_broker, workdir, "consumerkill") as (url, consumer, elig):

        async def write(start: int, stop: int) -> None:
            for i in range(start, stop):
                assert (
                    await elig.post("/v1/institutions", json=institution(f"CK{i:03d}"), headers=HEADERS)
                ).status_code == 201

        await write(0, 150)
        await eventually(lambda: _at_least(url, "CK", 30), what="consumer under way")
        consumer.kill()  # SIGKILL mid-stream: no clean shutdown, offsets maybe not committed
        await write(150, 300)
        consumer.start()
        applied = await eventually(lambda: _all(url, "CK", 300), timeout=90, what="300 applied")
        assert set(applied.values()) == {1}


async def _at_least(url: str, prefix: str, n: int):
    return len(await copies(url, prefix)) >= n


async def test_broker_restart_loses_log_consumer_stopped_every_event_applied_once(pg, own_broker, workdir):
    async with _with_a_prepayment_process(pg, own_broker, workdir, "logloss") as (url, consumer, elig):
        for i in range(30):
            await elig.post("/v1/institutions", json=institution(f"LL{i:03d}"), headers=HEADERS)
        await eventually(lambda: _all(url, "LL", 30), what="first 30 applied")
        consumer.stop()
        for i in range(30, 60):  # published while the consumer is away
            await elig.post("/v1/institutions", json=institution(f"LL{i:03d}"), headers=HEADERS)
        await eventually(lambda: _zero(unpublished(url)), what="published to the broker")
        own_broker.stop()
        own_broker.start()  # the in-memory log is gone
        await eventually(lambda: _zero(unpublished(url)), timeout=30, what="republished after the loss")
        consumer.start()
        applied = await eventually(lambda: _all(url, "LL", 60), timeout=90, what="all 60 applied")
        assert set(applied.values()) == {1}


async def test_a_broker_back_empty_within_a_heartbeat_loses_nothing(pg, own_broker):
    """The loss the chaos run found: the broker is killed and back empty before the consumer's next heartbeat.

    The consumer keeps its positions in the lost log (50 per partition) and the group goes on as if nothing happened;
    the new log starts at 0 below them. Offsets cannot tell, whether the new traffic stays below the old positions
    or overtakes them: the events the new log holds below the old positions were never read, and the relay did not
    publish again what it had sent in its first batch after the restart."""
    async with _with_prepayment_in_process(pg, own_broker, "backempty") as (url, elig, _):

        async def register(start: int, stop: int) -> None:
            answers = await asyncio.gather(
                *(
                    elig.post("/v1/institutions", json=institution(f"BE{i:03d}"), headers=HEADERS)
                    for i in range(start, stop)
                )
            )
            assert {a.status_code for a in answers} == {201}

        await register(0, 150)
        await eventually(lambda: _all(url, "BE", 150), what="the first 150 applied")
        await asyncio.sleep(2.5)  # offsets committed, the relay has seen them applied
        own_broker.proc.kill()  # SIGKILL, and back at once with an empty log (as `yibao up` restarts it)
        own_broker.proc.wait()
        own_broker.start()
        await register(150, 180)
        await register(180, 300)  # and more, past the old positions
        applied = await eventually(lambda: _all(url, "BE", 300), timeout=60, what="all 300 applied")
        assert set(applied.values()) == {1}
        await eventually(lambda: _zero(unpublished(url)), what="outbox drained")


async def test_an_event_a_group_read_past_but_never_applied_is_published_again(pg, own_broker):
    """The loss the chaos run found after quick broker kills: the embedded broker acknowledged an event at an offset
    where its log then held another record, or none. The consumers read past that offset, so their committed offsets
    would count the event as applied; the relay asks each group's inbox instead (POST /v1/inbox/applied) and
    publishes again, once it has settled, what a group read past and does not hold. A group that does not answer
    proves nothing either way: nothing is marked delivered and nothing goes again."""
    async with _with_prepayment_in_process(pg, own_broker, "inboxproof", relay=False) as (url, elig, prep):
        answering = True

        async def inbox(group: str, ids: list[str]) -> set[str] | None:
            assert group == "prepayment"
            if not answering:
                return None
            answer = await prep.post("/v1/inbox/applied", json={"event_ids": ids}, headers=HEADERS)
            assert answer.status_code == 200, answer.text
            return set(answer.json()["applied"])

        for i in range(12):
            assert (
                await elig.post("/v1/institutions", json=institution(f"RB{i:03d}"), headers=HEADERS)
            ).status_code == 201
        relay = Relay(
            db=elig._transport.app.state.db,
            bootstrap=own_broker.bootstrap,
            topics=ALL_TOPICS,
            groups={INSTITUTION_CHANGED: ("prepayment",)},  # the one consumer group running here
            inbox=inbox,
        )
        await relay._connect()
        try:
            assert await relay.publish_batch() == 12
            await eventually(lambda: _all(url, "RB", 12), what="12 applied")
            lost = await _forget_one(url)  # as if the log had held another record where it acknowledged this one
            answering = False
            await asyncio.sleep(2.2)  # settled
            await relay.confirm()
            assert (await _delivery(url)) == (0, 0)  # (delivered, waiting to go again): nothing concluded
            answering = True

            async def requeued() -> bool:
                await relay.confirm()  # once prepayment committed past every row
                return (await _delivery(url))[1] == 1

            await eventually(requeued, what="the unapplied event queued again")
            assert await _delivery(url) == (11, 1)  # the other eleven delivered; that one, and only it, goes again
            assert await relay.publish_batch() == 1
            applied = await eventually(lambda: _all(url, "RB", 12), what="the lost one applied again")
            assert applied[lost] == 1 and set(applied.values()) == {1}
            await relay.confirm()
            assert await _delivery(url) == (12, 0)
        finally:
            await relay.stop()
        bad = await prep.post("/v1/inbox/applied", json={"event_ids": ["not-a-uuid"]}, headers=HEADERS)
        assert bad.status_code == 422
        ops = await prep.post("/v1/inbox/applied", json={"event_ids": []}, headers={"X-Api-Key": OPS_KEY})
        assert ops.status_code == 403


async def _forget_one(url: str) -> str:
    """Undo prepayment's application of one event (its copy and its inbox row); the institution's code."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow("select event_id, key from eligibility.outbox order by id limit 1")
        await conn.execute("delete from prepayment.institutions where fixmedins_code = $1", row["key"])
        await conn.execute("delete from prepayment.inbox where event_id = $1", row["event_id"])
        return row["key"]
    finally:
        await conn.close()


async def _delivery(url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "select count(*) filter (where delivered) as d, count(*) filter (where published_at is null) as q"
            " from eligibility.outbox"
        )
        return row["d"], row["q"]
    finally:
        await conn.close()


async def test_a_topic_the_broker_made_up_itself_loses_nothing(pg, own_broker):
    """The loss of chaos seed 106: the broker back empty, the relay's producer asked for `institution-changed` before
    anyone recreated it, and the embedded broker made the topic up itself, with 4 partitions; the consumer groups
    were only ever assigned 3 (the metadata changed again under everyone), and the events keyed into partition 3
    were never read. Events go to the partition of their key among the partitions the topics are created with,
    whatever the broker's metadata says; and an event the log does not hold where the broker acknowledged it (an
    offset past the end of its partition) and that a group has not applied goes again."""
    producer = make_producer(own_broker.bootstrap)
    await producer.start()
    try:
        assert len(await producer.partitions_for(INSTITUTION_CHANGED)) == 4  # the broker made it up, with 4
    finally:
        await producer.stop()
    async with _with_prepayment_in_process(pg, own_broker, "madeup", relay=False) as (url, elig, prep):

        async def inbox(group: str, ids: list[str]) -> set[str] | None:
            answer = await prep.post("/v1/inbox/applied", json={"event_ids": ids}, headers=HEADERS)
            return set(answer.json()["applied"])

        for i in range(40):
            assert (
                await elig.post("/v1/institutions", json=institution(f"MU{i:03d}"), headers=HEADERS)
            ).status_code == 201
        relay = Relay(
            db=elig._transport.app.state.db,
            bootstrap=own_broker.bootstrap,
            topics=ALL_TOPICS,
            partitions=3,
            groups={INSTITUTION_CHANGED: ("prepayment",)},
            inbox=inbox,
        )
        await relay._connect()
        try:
            assert await relay.publish_batch() == 40
            places = await _places(url)
            assert {key: partition for key, (partition, _) in places.items()} == {
                key: partition_for(key.encode(), 3) for key in places
            }  # never partition 3, which the murmur2 of 4 partitions would give some of these keys
            assert any(partition_for(key.encode(), 4) == 3 for key in places)
            await eventually(lambda: _all(url, "MU", 40), what="40 applied")
            lost = await _forget_one(url)
            conn = await asyncpg.connect(url)
            try:  # where the broker said it put the event, its log ends before
                await conn.execute('update eligibility.outbox set "offset" = 1000000 where key = $1', lost)
            finally:
                await conn.close()
            await asyncio.sleep(2.2)  # settled

            async def requeued() -> bool:
                await relay.confirm()
                return (await _delivery(url))[1] == 1

            await eventually(requeued, what="the event the log does not hold queued again")
            assert await _delivery(url) == (39, 1)
            assert await relay.publish_batch() == 1
            applied = await eventually(lambda: _all(url, "MU", 40), what="the lost one applied again")
            assert applied[lost] == 1 and set(applied.values()) == {1}
        finally:
            await relay.stop()


async def _places(url: str) -> dict[str, tuple[int, int]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch('select key, partition, "offset" from eligibility.outbox where key like $1', "MU%")
        return {r["key"]: (r["partition"], r["offset"]) for r in rows}
    finally:
        await conn.close()
