"""Concurrency against real PostgreSQL: caps, idempotency keys and settle/reverse races."""

from __future__ import annotations

import asyncio
import random
from collections import Counter as Tally
from decimal import Decimal

from settlement_support import his, item, open_visit, settle

from shared.db import Sql


async def test_32_simultaneous_settlements_of_one_person_never_exceed_the_cap(api, fake, db):
    person = fake.add(insutype="390", insuplc_admdvs="621000")  # outpatient: deductible 50, 50 %, cap 400
    visits = [
        await open_visit(api, person, code="H3", day=f"2024-03-{1 + n % 28:02d}", items=[item("TA1", "100.00")])
        for n in range(32)
    ]
    answers = await asyncio.gather(*(settle(api, mdtrt_id, code="H3") for mdtrt_id in visits))
    assert [a.status_code for a in answers] == [201] * 32, [a.text for a in answers if a.status_code != 201][:2]
    funds = sum(Decimal(a.json()["hifp_pay"]) for a in answers)
    assert funds == Decimal("400.00")
    assert sum(Decimal(a.json()["act_pay_dedc"]) for a in answers) == Decimal("50.00")
    assert (await db.accumulators(person.psn_no))["outpatient.fund_paid"] == "400.00"
    for a in answers:
        body = a.json()
        assert Decimal(body["medfee_sumamt"]) == Decimal(body["hifp_pay"]) + Decimal(body["psn_cash_pay"])


async def test_50_requests_with_one_idempotency_key_make_one_settlement(api, fake, db):
    person = fake.add()
    mdtrt_id = await open_visit(api, person, items=[item("TA1", "800.00")])
    key = "same-key-" + mdtrt_id
    answers = await asyncio.gather(*(settle(api, mdtrt_id, key=key) for _ in range(50)))
    assert {a.status_code for a in answers} == {201}, Tally(a.text[:80] for a in answers)
    assert len({a.content for a in answers}) == 1
    assert await db.settlements(person.psn_no) == 1
    assert (
        await db.scalar("SELECT count(*) FROM settlement.outbox WHERE key = :p AND topic = 'settled'", p=person.psn_no)
        == 1
    )


async def _live_deltas(db, psn_no: str) -> dict[str, Decimal]:
    total: dict[str, Decimal] = {}
    async with db.db.connect() as unit:
        rows = await unit.fetch(
            Sql("SELECT accumulator_delta FROM settlement.settlements WHERE psn_no = :p AND status = 'settled'"),
            p=psn_no,
        )
    for (delta,) in rows:
        for key, value in delta.items():
            total[key] = total.get(key, Decimal(0)) + Decimal(value)
    return {k: v for k, v in total.items() if v}


async def test_settle_reverse_races_keep_accumulators_equal_to_live_settlements(api, fake, db):
    person = fake.add(insutype="310", psn_type="retired")  # outpatient cap 2000
    visits = [
        await open_visit(
            api,
            person,
            code=random.choice(["H1", "H2", "H3"]),
            day=f"2024-07-{1 + n:02d}",
            items=[item("TA1", f"{random.randint(100, 900)}.00")],
        )
        for n in range(16)
    ]
    codes = {}
    for mdtrt_id in visits:
        codes[mdtrt_id] = (
            await api.get(f"/v1/visits/{mdtrt_id}", headers={"X-Api-Key": "test-admin-key-0000000000"})
        ).json()["fixmedins_code"]
    first = await asyncio.gather(*(settle(api, m, code=codes[m]) for m in visits))
    setl = {m: a.json()["setl_id"] for m, a in zip(visits, first)}

    async def reverse_then_settle(mdtrt_id: str):
        reversed_ = await api.post(f"/v1/settlements/{setl[mdtrt_id]}/reverse", headers=his(codes[mdtrt_id]))
        assert reversed_.status_code == 200, reversed_.text
        if random.random() < 0.6:
            assert (await settle(api, mdtrt_id, code=codes[mdtrt_id])).status_code == 201

    async def double_reverse(mdtrt_id: str):
        answers = await asyncio.gather(
            *(api.post(f"/v1/settlements/{setl[mdtrt_id]}/reverse", headers=his(codes[mdtrt_id])) for _ in range(3))
        )
        assert sorted(a.status_code for a in answers) == [200, 409, 409]

    await asyncio.gather(*(reverse_then_settle(m) for m in visits[:10]), *(double_reverse(m) for m in visits[10:13]))
    stored = {k: Decimal(v) for k, v in (await db.accumulators(person.psn_no)).items()}
    assert stored == await _live_deltas(db, person.psn_no)
    assert stored.get("outpatient.fund_paid", Decimal(0)) <= Decimal("2000.00")


async def test_fees_uploaded_while_a_settle_waits_make_it_409_visit_changed_and_nothing_written(api, fake, db):
    """The settle loaded the visit and waits on eligibility; a line arrives meanwhile. Its write finds the
    visit's lines changed: 409, nothing written; settling again takes both lines."""
    person = fake.add()
    mdtrt_id = await open_visit(api, person, items=[item("TA1", "100.00")])
    fake.gate, fake.waiting = asyncio.Event(), 0
    try:
        settling = asyncio.create_task(settle(api, mdtrt_id))
        for _ in range(200):
            if fake.waiting:
                break
            await asyncio.sleep(0.01)
        added = await api.post(f"/v1/visits/{mdtrt_id}/fees", json={"items": [item("TA1", "20.00")]}, headers=his())
        assert added.status_code == 201, added.text
        fake.gate.set()
        answer = await settling
    finally:
        fake.gate = None
    assert answer.status_code == 409 and answer.json()["code"] == "VISIT_CHANGED", answer.text
    assert await db.written(person.psn_no) == (0, 0, {}, 0)
    visit = (await api.get(f"/v1/visits/{mdtrt_id}", headers=his())).json()
    assert (visit["status"], visit["setl_id"], len(visit["items"])) == ("open", None, 2)
    again = await settle(api, mdtrt_id)
    assert again.status_code == 201 and again.json()["medfee_sumamt"] == "120.00", again.text


async def _upload(api, mdtrt_id: str, items: list[dict]):
    return await api.post(f"/v1/visits/{mdtrt_id}/fees", json={"items": items}, headers=his())


async def test_simultaneous_uploads_to_one_visit_keep_every_line_once(api, fake, db):
    person = fake.add()
    mdtrt_id = await open_visit(api, person)
    batches = [[item("TA1", "1.00") for _ in range(5)] for _ in range(12)]
    answers = await asyncio.gather(*(_upload(api, mdtrt_id, batch) for batch in batches))
    assert [a.status_code for a in answers] == [201] * 12, [a.text for a in answers if a.status_code != 201][:2]
    assert sorted(sn for a in answers for sn in a.json()["accepted"]) == sorted(
        line["feedetl_sn"] for batch in batches for line in batch
    )
    assert await db.scalar("SELECT count(*) FROM settlement.fee_lines WHERE mdtrt_id = :m", m=mdtrt_id) == 60
    again = await asyncio.gather(*(_upload(api, mdtrt_id, batch) for batch in batches[:4]))
    assert {a.status_code for a in again} == {200} and all(a.json()["line_count"] == 60 for a in again)


async def test_simultaneous_uploads_never_pass_the_line_limit(api, fake, db):
    """max_lines_per_claim is 1000 (deploy/policy): 990 stored, then four uploads of 5 lines at once."""
    person = fake.add()
    mdtrt_id = await open_visit(api, person)
    for _ in range(3):  # 990 lines
        assert (await _upload(api, mdtrt_id, [item("TA1", "1.00") for _ in range(330)])).status_code == 201
    answers = await asyncio.gather(*(_upload(api, mdtrt_id, [item("TA1", "1.00") for _ in range(5)]) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [201, 201, 422, 422], [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 422} == {"TOO_MANY_LINES"}
    assert await db.scalar("SELECT count(*) FROM settlement.fee_lines WHERE mdtrt_id = :m", m=mdtrt_id) == 1000
