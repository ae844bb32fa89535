"""Settlements survive a broker that lost its whole log while their consumer was away.

The embedded broker keeps its log in memory only: a restart loses every message and every
committed consumer offset. The outbox is the record: settlement's relay notices the loss and
publishes every retained event again, and prepayment's inbox drops the ones it already applied.

Eligibility, settlement (relay on) and prepayment (its consumer) run in-process on a database and
a broker of this test's own. Prepayment applies a first batch of settlements and stops; more are
settled (some reversed) and reach the broker; the broker restarts empty; settlement republishes;
prepayment starts again. Every settlement must be in prepayment's books exactly once, to the fen.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import date, timedelta
from decimal import Decimal

import asyncpg
import httpx
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

import services.eligibility.app as eligibility_module
import services.prepayment.app as prepayment_module
import services.settlement.app as settlement_module
from shared.events.topics import SETTLED, SETTLEMENT_REVERSED
from shared.http import InternalClient
from shared.service import create_app
from shared.testing import ADMIN_KEY, HIS_KEYS, make_settings, running_app
from tests.integration.conftest import create_database, eventually

ADMIN = {"X-Api-Key": ADMIN_KEY}
HIS = {"X-Api-Key": HIS_KEYS["H1"]}
CODE = "H1"
FIRST, SECOND = 10, 30
REVERSED_FIRST = {3}  # indexes of first-batch settlements reversed before prepayment stops
REVERSED_SECOND = {FIRST + 2, FIRST + 11, FIRST + 25}  # reversed while prepayment is away
FUNDS = ("hifp_pay", "hifmi_pay", "maf_pay", "tilt_aid_pay", "fund_pay_sumamt")
ZERO = Decimal("0.00")


def certno(rng: random.Random) -> str:
    """A synthetic resident ID number (region 621000, valid check digit): nobody's real one."""
    brdy = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 50))
    body = f"621000{brdy:%Y%m%d}{rng.randrange(1, 1000):03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]


async def fetch(url: str, query: str, *args) -> list:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query, *args)
    except asyncpg.UndefinedTableError:  # that service's migration has not run yet
        return []
    finally:
        await conn.close()


async def institution_copied(url: str) -> bool:
    found = [
        await fetch(url, f"select 1 from {schema}.institutions where fixmedins_code = $1", CODE)
        for schema in ("settlement", "prepayment")
    ]
    return all(found)


async def applied(url: str, setl_ids, reversed_ids: set[str]) -> bool:
    """prepayment knows every one of these settlements, and exactly these reversals among them."""
    rows = await fetch(
        url, "select setl_id, reversed_on from prepayment.settlements where setl_id = any($1)", list(setl_ids)
    )
    return len(rows) == len(setl_ids) and {r["setl_id"] for r in rows if r["reversed_on"] is not None} == reversed_ids


async def outbox(url: str) -> list:
    """settlement's outbox: what it published, where the broker put it, how many times."""
    return await fetch(
        url,
        "select id, event_id::text as event_id, topic, envelope->'payload'->>'setl_id' as "
        'setl_id, published_at, partition, "offset", attempts from settlement.outbox order by id',
    )


async def published_once(url: str) -> bool:
    rows = await outbox(url)
    return bool(rows) and all(r["published_at"] is not None for r in rows)


async def republished(url: str, attempts_before: dict[int, int]) -> bool:
    """Every row published again after the loss (its attempts grew), and acknowledged."""
    rows = await outbox(url)
    return len(rows) == len(attempts_before) and all(
        r["published_at"] is not None and r["attempts"] > attempts_before[r["id"]] for r in rows
    )


async def committed_offsets(bootstrap: str, partitions: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """What the prepayment consumer group has committed on the broker (-1: nothing)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(
            prepayment_module.spec.name, partitions=[TopicPartition(t, p) for t, p in sorted(partitions)]
        )
    finally:
        await admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in found.items()}


async def read_past_every_event(url: str, bootstrap: str) -> bool:
    """The consumer has read (and committed past) every settlement event the broker now holds,
    the republished first batch included."""
    rows = await outbox(url)
    offsets = await committed_offsets(bootstrap, {(r["topic"], r["partition"]) for r in rows})
    return all(offsets.get((r["topic"], r["partition"]), -1) > r["offset"] for r in rows)


async def settle_one(eligibility: httpx.AsyncClient, settlement: httpx.AsyncClient, rng: random.Random, i: int) -> dict:
    """A new insured person, an outpatient visit with one fee line, settled."""
    number = certno(rng)
    person = await eligibility.post(
        "/v1/persons",
        headers=ADMIN,
        json={
            "certno": number,
            "psn_name": f"测试{i:02d}",
            "insuplc_admdvs": "621000",
            "insutype": "310",
            "psn_type": "in_service",
        },
    )
    assert person.status_code == 201, person.text
    psn_no = person.json()["psn_no"]
    visit = await settlement.post(
        "/v1/visits",
        headers=HIS,
        json={
            "psn_no": psn_no,
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": number,
            "fixmedins_code": CODE,
            "med_type": "11",
            "begntime": "2024-03-08T09:00:00+08:00",
        },
    )
    assert visit.status_code == 201, visit.text
    mdtrt_id = visit.json()["mdtrt_id"]
    price = Decimal("400.00") + Decimal("37.45") * i  # every settlement a different amount
    fees = await settlement.post(
        f"/v1/visits/{mdtrt_id}/fees",
        headers=HIS,
        json={
            "items": [{"feedetl_sn": "1", "med_list_codg": "TA005", "item_class": "A", "pric": str(price), "cnt": "1"}]
        },
    )
    assert fees.status_code == 201, fees.text
    settled = await settlement.post(f"/v1/visits/{mdtrt_id}/settle", headers=HIS, json={})
    assert settled.status_code == 201, settled.text
    return settled.json()


async def settle_batch(eligibility, settlement, rng, indexes: range, reverse: set[int]) -> tuple[dict, set[str]]:
    done: dict[str, dict] = {}
    reversed_ids: set[str] = set()
    for i in indexes:
        answer = await settle_one(eligibility, settlement, rng, i)
        done[answer["setl_id"]] = answer
        if i in reverse:
            response = await settlement.post(f"/v1/settlements/{answer['setl_id']}/reverse", headers=HIS)
            assert response.status_code == 200, response.text
            reversed_ids.add(answer["setl_id"])
    return done, reversed_ids


async def test_settled_while_consumer_stopped_broker_restarted_every_settlement_posted_once(pg, own_broker):
    url = await create_database(pg, "settleloss")
    bootstrap = own_broker.bootstrap
    rng = random.Random()
    elig_app = create_app(eligibility_module.spec, make_settings("eligibility", database_url=url, bootstrap=bootstrap))
    setl_app = create_app(settlement_module.spec, make_settings("settlement", database_url=url, bootstrap=bootstrap))
    took_effect: list[list[tuple[str, str | None, str]]] = []  # per prepayment run: events applied and committed

    def prepayment_app():
        """prepayment with its consumer; records each event that took effect (after its commit)."""
        run: list[tuple[str, str | None, str]] = []
        took_effect.append(run)

        def recording(app):
            def wrap(handle):
                async def handle_and_record(unit, event) -> None:
                    await handle(unit, event)
                    unit.after_commit(lambda: run.append((event.type, event.payload.get("setl_id"), event.event_id)))

                return handle_and_record

            return {topic: wrap(handle) for topic, handle in prepayment_module.spec.handlers(app).items()}

        spec = dataclasses.replace(prepayment_module.spec, handlers=recording)
        return create_app(spec, make_settings("prepayment", database_url=url, bootstrap=bootstrap))

    async with running_app(elig_app) as eligibility, running_app(setl_app) as settlement:
        setl_app.state.eligibility = InternalClient(
            "http://eligibility.internal", timeout=5, transport=httpx.ASGITransport(app=elig_app)
        )
        try:
            # 1. the institution reaches settlement's and prepayment's copies
            async with running_app(prepayment_app()):
                registered = await eligibility.post(
                    "/v1/institutions",
                    headers=ADMIN,
                    json={
                        "fixmedins_code": CODE,
                        "fixmedins_name": "测试医院",
                        "kind": "hospital",
                        "level": 3,
                        "affiliation": "city",
                        "admdvs": "621000",
                    },
                )
                assert registered.status_code == 201, registered.text
                await eventually(lambda: institution_copied(url), what="institution copied")

                # 2. prepayment applies a first batch (inbox rows written, offsets committed)
                first, first_reversed = await settle_batch(eligibility, settlement, rng, range(FIRST), REVERSED_FIRST)
                await eventually(lambda: applied(url, first, first_reversed), timeout=90, what="first batch applied")
                await eventually(
                    lambda: read_past_every_event(url, bootstrap), timeout=30, what="first batch's offsets committed"
                )

            # 3. prepayment is away: more settlements (and reversals) reach the broker
            second, second_reversed = await settle_batch(
                eligibility, settlement, rng, range(FIRST, FIRST + SECOND), REVERSED_SECOND
            )
            await eventually(lambda: published_once(url), timeout=60, what="acknowledged by the broker")
            before_loss = await outbox(url)
            assert len(before_loss) == FIRST + SECOND + len(REVERSED_FIRST) + len(REVERSED_SECOND)
            assert {r["setl_id"] for r in before_loss} == set(first) | set(second)
            assert not any(
                await fetch(url, "select 1 from prepayment.settlements where setl_id = any($1)", list(second))
            )

            # 4. the broker comes back empty; settlement's relay notices and publishes everything again
            own_broker.stop()
            own_broker.start()
            attempts_before = {r["id"]: r["attempts"] for r in before_loss}
            await eventually(
                lambda: republished(url, attempts_before),
                timeout=60,
                what="settlement's outbox republished after the loss",
            )

            # 5. prepayment again: its committed offsets went with the log, so it reads from the start
            settlements = {**first, **second}
            reversed_ids = first_reversed | second_reversed
            async with running_app(prepayment_app()) as prepayment:
                await eventually(
                    lambda: applied(url, settlements, reversed_ids), timeout=90, what="every settlement applied"
                )
                await eventually(
                    lambda: read_past_every_event(url, bootstrap),
                    timeout=60,
                    what="consumer read past every republished event",
                )

                # 6. every event took effect once: the republished first batch was dropped by the inbox
                events = {r["event_id"]: (r["topic"], r["setl_id"]) for r in await outbox(url)}
                first_run, second_run = (
                    [e for e in run if e[0] in (SETTLED, SETTLEMENT_REVERSED)] for run in took_effect
                )
                both = first_run + second_run
                assert sorted(e[2] for e in both) == sorted(events), "each settlement event applied exactly once"
                assert {e[1] for e in first_run} == set(first)
                assert {e[1] for e in second_run} == set(second)
                assert {e[1] for e in both if e[0] == SETTLEMENT_REVERSED} == reversed_ids
                await _assert_books(url, prepayment, settlements, reversed_ids)
        finally:
            await setl_app.state.eligibility.aclose()


async def _assert_books(
    url: str, prepayment: httpx.AsyncClient, settlements: dict[str, dict], reversed_ids: set[str]
) -> None:
    ids = list(settlements)
    inbox = await fetch(
        url,
        "select type, count(*) as n from prepayment.inbox where topic = any($1) group by type",
        [SETTLED, SETTLEMENT_REVERSED],
    )
    assert {r["type"]: r["n"] for r in inbox} == {SETTLED: len(ids), SETTLEMENT_REVERSED: len(reversed_ids)}

    rows = await fetch(
        url,
        "select setl_id, count(*) over (partition by setl_id) as n, fixmedins_code, reversed_on, "
        + ", ".join(FUNDS)
        + " from prepayment.settlements where setl_id = any($1)",
        ids,
    )
    assert len(rows) == len(ids) and {r["n"] for r in rows} == {1}
    for row in rows:
        answer = settlements[row["setl_id"]]
        assert row["fixmedins_code"] == CODE
        assert {f: row[f] for f in FUNDS} == {f: Decimal(answer[f]) for f in FUNDS}, row["setl_id"]
        assert (row["reversed_on"] is not None) == (row["setl_id"] in reversed_ids), row["setl_id"]

    # one settlement entry per settlement the funds paid, one reversal entry per reversed one
    paid = [s for s, a in settlements.items() if Decimal(a["fund_pay_sumamt"]) > 0]
    assert len(paid) >= len(ids) - 2, "the funds paid (almost) every settlement"  # else the books prove little
    assert reversed_ids & set(paid) and set(paid) - reversed_ids
    entries = await fetch(
        url,
        "select setl_id, kind, count(*) as n from prepayment.journal_entries "
        "where setl_id = any($1) group by setl_id, kind",
        ids,
    )
    expected = {(s, "settlement"): 1 for s in paid} | {(s, "settlement-reversal"): 1 for s in paid if s in reversed_ids}
    assert {(r["setl_id"], r["kind"]): r["n"] for r in entries} == expected

    # the journal's lines add up, to the fen, to what settlement answered
    lines = await fetch(
        url,
        "select e.kind, l.account, sum(l.debit) as debit, sum(l.credit) as credit "
        "from prepayment.journal_lines l join prepayment.journal_entries e using (entry_id) "
        "where e.setl_id = any($1) group by e.kind, l.account",
        ids,
    )
    posted = {(r["kind"], r["account"]): (r["debit"], r["credit"]) for r in lines}

    def total(which, *fields: str) -> Decimal:
        return sum((Decimal(settlements[s][f]) for s in which for f in fields), ZERO)

    reversed_paid = [s for s in paid if s in reversed_ids]
    payable = f"institution:{CODE}:fund_payable"
    fund_parts = {"fund:hifp": ("hifp_pay",), "fund:hifmi": ("hifmi_pay",), "fund:maf": ("maf_pay", "tilt_aid_pay")}
    for kind, which, sign in (("settlement", paid, 1), ("settlement-reversal", reversed_paid, -1)):
        want = {payable: (ZERO, total(which, "fund_pay_sumamt"))}
        want |= {account: (total(which, *parts), ZERO) for account, parts in fund_parts.items() if total(which, *parts)}
        want = {a: (d, c) if sign > 0 else (c, d) for a, (d, c) in want.items()}
        got = {a: (d, c) for (k, a), (d, c) in posted.items() if k == kind}
        assert got == want, kind
    assert {k for k, _ in posted} == {"settlement", "settlement-reversal"}

    # what the institution is owed, and the trial balance
    live = [s for s in paid if s not in reversed_ids]
    owed = total(live, "fund_pay_sumamt")
    position = await prepayment.get(f"/v1/institutions/{CODE}/position", headers=ADMIN)
    assert position.status_code == 200, position.text
    assert Decimal(position.json()["fund_payable"]) == owed
    trial = await prepayment.get("/v1/ledger/trial-balance", headers=ADMIN)
    assert trial.status_code == 200, trial.text
    body = trial.json()
    assert Decimal(body["debits"]) == Decimal(body["credits"]) == owed
    balances = {a["account"]: Decimal(a["balance"]) for a in body["accounts"]}
    assert sum(balances.values()) == 0 and balances[payable] == -owed
