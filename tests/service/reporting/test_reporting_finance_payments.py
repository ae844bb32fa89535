"""Finance's subsidy payments in reporting: `subsidy-paid` into `finance_payments` once per ref, the daily report's
`finance_payments` to the fen, their reconciliation with the prepayment service (the real one, its event through the
relay and the broker), and `yibao replay` rebuilding them from the topic."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta

import httpx
from reporting_support import ADMIN, OPS, envelope, fake_settlement, feed, finance_payment, fresh_day, uid

from services.reporting import replay
from shared.events.kafka import make_producer
from shared.events.topics import INSTITUTION_CHANGED, SUBSIDY_DUE, SUBSIDY_PAID
from shared.testing import HIS_KEYS, fetch, fetchval


def _payers(**paid: tuple[int, str]) -> list[dict]:
    """Every level, in order: (count, amount) of those named, nothing of the others."""
    return [
        {"payer": level, **dict(zip(("count", "amount"), paid.get(level, (0, "0.00")), strict=True))}
        for level in ("central", "provincial", "city", "county")
    ]


async def _paid(reporting, day: date, **params) -> dict:
    response = await reporting.get("/v1/reports/daily", params={"date": day.isoformat(), **params}, headers=OPS)
    assert response.status_code == 200, response.text
    return response.json()["finance_payments"]


async def _pay(reporting, payload: dict) -> None:
    await feed(reporting, SUBSIDY_PAID, payload, key=payload["ref"])


async def test_the_daily_report_shows_the_days_payments_per_payer_once(reporting):
    day = fresh_day(span=2)
    city = finance_payment(paid_on=day, amount="333.33")
    sent = [
        city,
        finance_payment(paid_on=day, amount="0.01", payer="county", to_fixmedins_code="H2", admdvs="621022"),
        finance_payment(paid_on=day, amount="600.00", payer="central", to_level="city"),
        finance_payment(paid_on=day, amount="400.66", payer="provincial", to_level="city"),
        finance_payment(paid_on=day + timedelta(days=1), amount="1.00"),
    ]
    for payload in sent:
        await _pay(reporting, payload)
    expected = {
        "count": 4,
        "amount": "1334.00",
        "payers": _payers(central=(1, "600.00"), provincial=(1, "400.66"), city=(1, "333.33"), county=(1, "0.01")),
    }
    assert await _paid(reporting, day) == expected
    report = (
        await reporting.get("/v1/reports/daily", params={"date": day.isoformat()}, headers=OPS)
    ).json()  # the form's fields stay as they were
    assert {"date", "unit", "rows", "total", "accounts", "finance_payments"} <= report.keys()

    # the same event again (the inbox), the same payment under a new event id (the ref): nothing changes
    consumer = reporting._transport.app.state.consumer
    event = envelope(SUBSIDY_PAID, city, key=city["ref"])
    assert await consumer.apply(SUBSIDY_PAID, event.to_json()) is True
    assert await consumer.apply(SUBSIDY_PAID, event.to_json()) is False
    await _pay(reporting, {**city, "amount": "999.99"})
    assert await _paid(reporting, day) == expected

    # cumulative: everything up to the day; an area: the payments to its hospitals (not those between levels)
    up_to = await _paid(reporting, day + timedelta(days=1), cumulative="true")
    before = await _paid(reporting, day - timedelta(days=1), cumulative="true")
    assert up_to["count"] - before["count"] == 5
    assert await _paid(reporting, day, admdvs="621022") == {
        "count": 1,
        "amount": "0.01",
        "payers": _payers(county=(1, "0.01")),
    }
    assert await _paid(reporting, day + timedelta(days=1)) == {
        "count": 1,
        "amount": "1.00",
        "payers": _payers(city=(1, "1.00")),
    }


async def test_a_payment_the_reports_cannot_use_is_dead_lettered(reporting):
    day = fresh_day()
    consumer = reporting._transport.app.state.consumer
    for bad in (
        finance_payment(paid_on=day, amount="5.00", payer="mars"),
        {**finance_payment(paid_on=day, amount="5.00"), "to_level": "city"},  # both receivers
        finance_payment(paid_on=day, amount="-5.00"),
        {**finance_payment(paid_on=day, amount="5.00"), "ref": "R" * 65},
    ):
        event = envelope(SUBSIDY_PAID, bad, key="k")
        await consumer.apply(SUBSIDY_PAID, event.to_json())
        dead = await fetchval(
            reporting._transport.app,
            "SELECT count(*) FROM dead_letter WHERE event_id = :id",
            id=uuid.UUID(event.event_id),
        )
        assert dead == 1, bad
    assert await _paid(reporting, day) == {"count": 0, "amount": "0.00", "payers": _payers()}


async def _business_day_for_prepayment() -> date:
    """A fresh day that the prepayment service takes as a payment day (2000 … 2099)."""
    while (day := fresh_day()).year < 2000:
        pass
    return day


async def _eventually(check, *, what: str, seconds: float = 30.0):
    for _ in range(int(seconds * 10)):
        if result := await check():
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_payments_through_prepayment_reach_the_report_and_reconcile(reporting, prepayment):
    """Through the real prepayment service: each payment booked is one `subsidy-paid` (a repeated ref none), relayed
    through the broker to reporting's live consumer; the reconciliation is clean, and names what reporting lacks."""
    day = await _business_day_for_prepayment()
    code = uid("TF")
    books = prepayment._transport.app.state.consumer
    institution = {
        "fixmedins_code": code,
        "fixmedins_name": "对账测试医院",
        "kind": "hospital",
        "level": 2,
        "affiliation": "city",
        "admdvs": "640000",
        "suspended": False,
        "version": 1,
    }
    due = {
        "setl_id": uid("S"),
        "fixmedins_code": code,
        "case_status": "confirmed",
        "amount": "500.00",
        "advance_payer": "city",
        "shares": [{"payer": "central", "amount": "300.00"}, {"payer": "provincial", "amount": "200.00"}],
        "psn_no": uid("P"),
        "setl_date": day.isoformat(),
        "reversal": False,
    }
    assert await books.apply(INSTITUTION_CHANGED, envelope(INSTITUTION_CHANGED, institution).to_json())
    assert await books.apply(SUBSIDY_DUE, envelope(SUBSIDY_DUE, due).to_json())
    refs = [uid("R-"), uid("R-")]
    for ref, amount in zip(refs, ("123.45", "0.55"), strict=True):
        body = {"payer": "city", "to_fixmedins_code": code, "amount": amount, "paid_on": day.isoformat(), "ref": ref}
        paid = await prepayment.post("/v1/subsidy-payments", json=body, headers=ADMIN)
        assert paid.status_code == 201, paid.text
        assert (await prepayment.post("/v1/subsidy-payments", json=body, headers=ADMIN)).status_code == 200
    announced = await fetch(
        prepayment._transport.app,
        "SELECT key FROM outbox WHERE topic = :topic AND key = ANY(CAST(:refs AS text[]))",
        topic=SUBSIDY_PAID,
        refs=refs,
    )
    assert sorted(row.key for row in announced) == sorted(refs)  # one each, none for the repeats

    expected = {"count": 2, "amount": "124.00", "payers": _payers(city=(2, "124.00"))}

    async def reported():
        return await _paid(reporting, day) == expected

    await _eventually(reported, what="reporting applying both payments")
    assert await _paid(reporting, day, admdvs="640000") == expected

    state = reporting._transport.app.state
    previous = state.prepayment
    state.prepayment = prepayment  # reporting's client of prepayment: the service in this process
    try:
        path, params = "/v1/reconciliation/finance-payments", {"date": day.isoformat()}
        response = await reporting.get(path, params=params, headers=OPS)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "date": day.isoformat(),
            "prepayment": expected,
            "reporting": expected,
            "differences": [],
        }
        # reporting lacks a payment (an event it never applied): the reconciliation names it
        await fetch(
            reporting._transport.app, "DELETE FROM finance_payments WHERE ref = :ref RETURNING ref", ref=refs[1]
        )
        differences = (await reporting.get(path, params=params, headers=OPS)).json()["differences"]
        assert differences == [
            {"field": "count", "prepayment": 2, "reporting": 1},
            {"field": "amount", "prepayment": "124.00", "reporting": "123.45"},
            {"field": "city.count", "prepayment": 2, "reporting": 1},
            {"field": "city.amount", "prepayment": "124.00", "reporting": "123.45"},
        ]
        his = await reporting.get(path, params=params, headers={"X-Api-Key": HIS_KEYS["H1"]})
        assert his.status_code == 403
        assert (await reporting.get(path, params={"date": "2024-13-01"}, headers=OPS)).status_code == 422
    finally:
        state.prepayment = previous


async def test_the_finance_reconciliation_is_503_when_prepayment_is_down_or_unreadable(reporting):
    state = reporting._transport.app.state
    previous = state.prepayment
    path, params = "/v1/reconciliation/finance-payments", {"date": "2024-03-01"}
    try:
        state.prepayment = httpx.AsyncClient(base_url="http://127.0.0.1:9", timeout=1)
        down = await reporting.get(path, params=params, headers=OPS)
        assert down.status_code == 503 and down.headers["content-type"] == "application/problem+json"
        assert down.json()["code"] == "PREPAYMENT_UNAVAILABLE"
        for answer in ({"count": 1}, {"count": 0, "amount": "0.00", "payers": [{"payer": "city"}]}):
            state.prepayment = fake_settlement("/v1/subsidy-payments", answer)
            broken = await reporting.get(path, params=params, headers=OPS)
            assert broken.status_code == 503 and "unexpectedly" in broken.json()["detail"]
    finally:
        state.prepayment = previous


async def test_a_rebuild_from_the_topic_equals_the_live_payments(reporting, broker):
    """`yibao replay` covers finance's payments: rebuilt from offset 0 into a scratch schema, the rows equal the live
    ones (a repeated ref under a new event id, and a redelivery, change nothing there either)."""
    day = fresh_day()
    first = finance_payment(paid_on=day, amount="88.88")
    payloads = [
        first,
        finance_payment(paid_on=day, amount="11.12", payer="central", to_level="city"),
        {**first, "amount": "1.00"},  # the same ref under another event id
    ]
    events = [envelope(SUBSIDY_PAID, p, key=p["ref"]) for p in payloads]
    events.append(events[0])  # an exact redelivery
    producer = make_producer(broker.bootstrap)
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(SUBSIDY_PAID, event.to_json(), key=event.key.encode())
    finally:
        await producer.stop()
    refs = [first["ref"], payloads[1]["ref"]]
    query = "SELECT ref, payer, amount FROM finance_payments WHERE ref = ANY(CAST(:refs AS text[])) ORDER BY ref"

    async def applied():
        rows = await fetch(reporting._transport.app, query, refs=refs)
        return rows if len(rows) == 2 else None

    rows = await _eventually(applied, what="the live consumer applying the payments")
    assert sorted((r.ref, r.payer, f"{r.amount}") for r in rows) == sorted(
        [(first["ref"], "city", "88.88"), (payloads[1]["ref"], "central", "11.12")]
    )
    url = reporting._transport.app.state.settings.database_url
    scratch = f"reporting_replay_{uuid.uuid4().hex[:8]}"
    mine = {"where": "ref = ANY(CAST(:refs AS text[]))", "params": {"refs": refs}}
    try:
        rebuilt = await replay.rebuild(
            url, bootstrap=broker.bootstrap, topics=(SUBSIDY_PAID,), schema=scratch, timeout=60
        )
        assert rebuilt.read[SUBSIDY_PAID] >= len(events)
        copied = await fetch(
            reporting._transport.app,
            f'SELECT ref FROM "{scratch}".finance_payments WHERE ref = ANY(CAST(:refs AS text[]))',
            refs=refs,
        )
        assert sorted(r.ref for r in copied) == sorted(refs)
        assert await replay.compare(url, topics=(SUBSIDY_PAID,), schema=scratch, **mine) == []
        # a live row lost is what the comparison finds
        await fetch(
            reporting._transport.app, "DELETE FROM finance_payments WHERE ref = :ref RETURNING ref", ref=refs[1]
        )
        [drift] = await replay.compare(url, topics=(SUBSIDY_PAID,), schema=scratch, **mine)
        assert (drift.topic, drift.table, drift.only_live, drift.only_rebuilt) == (
            SUBSIDY_PAID,
            "finance_payments",
            0,
            1,
        )
    finally:
        await replay.drop_scratch(url, scratch)
