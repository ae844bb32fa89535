"""Finance's payments reach the reports: a payment booked writes exactly one `subsidy-paid` into the outbox, in its
own transaction (a repeated ref, a refused payment: none), and `GET /v1/subsidy-payments?date=` lists a day's
payments with their totals per payer level (what reporting reconciles with)."""

from __future__ import annotations

import json
import random
import uuid
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from prepayment_http import ADMIN, OPS, refused
from prepayment_support import subsidy_payload

from shared.events.envelope import Envelope
from shared.events.topics import SUBSIDY_PAID
from shared.testing import HIS_KEYS, fetch, fetchval

_used: set[date] = set()


def _day() -> date:
    """A payment day no other test pays on (the day's list is then this test's alone)."""
    while True:
        day = date(2040, 1, 1) + timedelta(days=random.randrange(0, 20000))
        if day not in _used:
            _used.add(day)
            return day


def _ref() -> str:
    """A fresh payment ref ("R-…": conftest removes their unsent events afterwards)."""
    return f"R-{uuid.uuid4().hex}"


async def _announced(books, ref: str) -> list[dict]:
    """The `subsidy-paid` envelopes of a payment in the outbox (keyed by its ref)."""
    rows = await fetch(
        books.app,
        "SELECT key, type, envelope FROM outbox WHERE topic = :topic AND key = :ref ORDER BY id",
        topic=SUBSIDY_PAID,
        ref=ref,
    )
    assert all(row.key == ref and row.type == SUBSIDY_PAID for row in rows)
    return [row.envelope for row in rows]


async def _owed(books, hospital: str, amount: str) -> None:
    """A confirmed case's subsidy at `hospital`, advanced by the city (central 60 %, provincial 40 %)."""
    share = (Decimal(amount) * Decimal("0.6")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    await books.deliver(
        "subsidy-due",
        subsidy_payload(
            f"S-{uuid.uuid4().hex}",
            hospital,
            case_status="confirmed",
            amount=amount,
            advance_payer="city",
            shares={"central": f"{share}", "provincial": f"{Decimal(amount) - share}"},
        ),
    )


async def _pay(books, **body):
    return await books.client.post("/v1/subsidy-payments", headers=ADMIN, json=body)


async def test_a_payment_booked_announces_itself_once(books, hospital):
    await _owed(books, hospital, "500.00")
    day, ref = _day(), _ref()
    body = {"payer": "city", "to_fixmedins_code": hospital, "amount": "123.45", "paid_on": day.isoformat(), "ref": ref}
    paid = await _pay(books, **body)
    assert paid.status_code == 201, paid.text
    [event] = await _announced(books, ref)
    assert (event["type"], event["producer"], event["key"]) == (SUBSIDY_PAID, "prepayment", ref)
    assert event["payload"] == {
        "ref": ref,
        "payer": "city",
        "to_fixmedins_code": hospital,
        "to_level": None,
        "amount": "123.45",
        "paid_on": day.isoformat(),
        "admdvs": await fetchval(books.app, "SELECT admdvs FROM institutions WHERE fixmedins_code = :c", c=hospital),
    }
    assert event["payload"]["admdvs"] is not None
    Envelope.from_json(json.dumps(event).encode())  # a readable envelope of the contract

    # the same ref again answers the first payment and announces nothing; nor does a refused payment
    again = await _pay(books, **body)
    assert again.status_code == 200 and again.json() == paid.json()
    keyed = await books.client.post(
        "/v1/subsidy-payments", headers={**ADMIN, "Idempotency-Key": uuid.uuid4().hex}, json=body
    )
    assert keyed.status_code == 200
    refused(await _pay(books, **{**body, "amount": "1.00"}), 409, "PAYMENT_REF_REUSED")
    too_much = _ref()
    refused(await _pay(books, **{**body, "amount": "376.56", "ref": too_much}), 422, "PAYMENT_EXCEEDS_OUTSTANDING")
    assert len(await _announced(books, ref)) == 1
    assert await _announced(books, too_much) == []


async def test_a_payment_between_levels_has_no_pooling_area(books, hospital):
    await _owed(books, hospital, "100.00")  # central owes the city 60.00 of it (at least)
    day, ref = _day(), _ref()
    paid = await _pay(books, payer="central", to_level="city", amount="0.01", paid_on=day.isoformat(), ref=ref)
    assert paid.status_code == 201, paid.text
    [event] = await _announced(books, ref)
    assert event["payload"] == {
        "ref": ref,
        "payer": "central",
        "to_fixmedins_code": None,
        "to_level": "city",
        "amount": "0.01",
        "paid_on": day.isoformat(),
        "admdvs": None,
    }


async def test_the_payments_of_a_day_with_their_totals_per_payer(books, hospital):
    await _owed(books, hospital, "1000.00")
    day = _day()
    payments = [
        {"payer": "city", "to_fixmedins_code": hospital, "amount": "333.33"},
        {"payer": "city", "to_fixmedins_code": hospital, "amount": "0.67"},
        {"payer": "provincial", "to_level": "city", "amount": "400.00"},
    ]
    refs = []
    for body in payments:
        refs.append(_ref())
        assert (await _pay(books, paid_on=day.isoformat(), ref=refs[-1], **body)).status_code == 201
    other_day = await _pay(
        books,
        payer="city",
        to_fixmedins_code=hospital,
        amount="1.00",
        paid_on=(day + timedelta(days=1)).isoformat(),
        ref=_ref(),
    )
    assert other_day.status_code == 201
    response = await books.client.get("/v1/subsidy-payments", params={"date": day.isoformat()}, headers=OPS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {k: v for k, v in body.items() if k != "items"} == {
        "date": day.isoformat(),
        "count": 3,
        "amount": "734.00",
        "payers": [
            {"payer": "central", "count": 0, "amount": "0.00"},
            {"payer": "provincial", "count": 1, "amount": "400.00"},
            {"payer": "city", "count": 2, "amount": "334.00"},
            {"payer": "county", "count": 0, "amount": "0.00"},
        ],
        "truncated": False,
    }
    assert sorted(
        (i["ref"], i["payer"], i["to_fixmedins_code"], i["to_level"], i["amount"]) for i in body["items"]
    ) == (
        sorted(
            (ref, p["payer"], p.get("to_fixmedins_code"), p.get("to_level"), p["amount"])
            for ref, p in zip(refs, payments, strict=True)
        )
    )
    assert all(i["paid_on"] == day.isoformat() for i in body["items"])
    one = await books.client.get("/v1/subsidy-payments", params={"date": day.isoformat(), "limit": 1}, headers=OPS)
    assert one.json()["count"] == 3 and len(one.json()["items"]) == 1 and one.json()["truncated"] is True

    his = await books.client.get(
        "/v1/subsidy-payments", params={"date": day.isoformat()}, headers={"X-Api-Key": HIS_KEYS["H1"]}
    )
    assert his.status_code == 403
    for bad in ({"date": "2024-02-30"}, {"date": "20240301"}, {}, {"date": day.isoformat(), "limit": 0}):
        refused(await books.client.get("/v1/subsidy-payments", params=bad, headers=OPS), 422, "VALIDATION_FAILED")
