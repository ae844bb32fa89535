"""The personal account's life (issue 13, DOMAIN §7) against the real eligibility service and real PostgreSQL: the
monthly credit run (once per month, retirement switching the amount from the next month), the statement (its running
balance ends at the balance) and closure (the balance paid out, later payments and credits refused).

Each test credits months of its own (2023-…): a run credits every employee eligibility knows, once per month.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest
from settlement_support import ADMIN, his, pharmacy

from services.eligibility.certno import make_certno
from shared.events.envelope import now
from shared.http import InternalClient

D = Decimal


@pytest.fixture
async def registry(api, eligibility, settlement_app):
    """The settlement service asks the real eligibility service (for the roster) during the test."""
    previous = settlement_app.state.eligibility
    settlement_app.state.eligibility = InternalClient(
        "http://eligibility.test", timeout=5.0, transport=httpx.ASGITransport(app=eligibility._transport.app)
    )
    try:
        yield eligibility
    finally:
        settlement_app.state.eligibility = previous


CERTNOS: dict[str, str] = {}


async def employee(eligibility, *, psn_type: str = "in_service", base: str | None = "5000.00") -> str:
    psn_no = "MA" + uuid.uuid4().hex[:12].upper()
    brdy = date(1960, 1, 1) + timedelta(days=random.randrange(12000))
    CERTNOS[psn_no] = make_certno(region="621002", brdy=brdy, serial=random.randrange(1000))
    body = {
        "psn_no": psn_no,
        "certno": CERTNOS[psn_no],
        "psn_name": "钱七",
        "insutype": "310",
        "psn_type": psn_type,
        "insuplc_admdvs": "621000",
    }
    if base is not None:
        body["contribution_base"] = base
    created = await eligibility.post("/v1/persons", headers=ADMIN, json=body)
    assert created.status_code == 201, created.text
    return psn_no


async def run(api, period: str, **headers: str) -> httpx.Response:
    return await api.post("/v1/accounts/credit-runs", json={"period": period}, headers=ADMIN | headers)


async def balance(api, psn_no: str) -> str:
    return (await api.get(f"/v1/accounts/{psn_no}", headers=ADMIN)).json()["balc"]


async def statement(api, psn_no: str, headers: dict | None = None) -> httpx.Response:
    return await api.get(f"/v1/accounts/{psn_no}/statement", params={"year": now().year}, headers=headers or ADMIN)


async def test_the_same_month_twice_credits_once(api, registry):
    working = await employee(registry, base="5000.00")
    retired = await employee(registry, psn_type="retired", base=None)
    no_base = await employee(registry, base=None)
    first = await run(api, "2023-03")
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["period"] == "2023-03" and body["persons"] >= 2 and D(body["total"]) >= D("160.00")
    assert body["skipped"]["no_contribution_base"] >= 1
    assert (await balance(api, working), await balance(api, retired), await balance(api, no_base)) == (
        "100.00",
        "60.00",
        "0.00",
    )
    again = await run(api, "2023-03")
    assert again.status_code == 200 and again.json() == body
    assert (await balance(api, working), await balance(api, retired)) == ("100.00", "60.00")
    # two runs of another month at once: one credits, the other answers the same
    both = await asyncio.gather(run(api, "2023-04"), run(api, "2023-04"))
    assert sorted(r.status_code for r in both) == [200, 201]
    assert both[0].json() == both[1].json()
    assert await balance(api, working) == "200.00"
    # a manual credit of a month the run credited is the same credit: refused as another amount
    clash = await api.post(
        f"/v1/accounts/{working}/credits", json={"amount": "1.00", "period": "2023-04"}, headers=ADMIN
    )
    assert clash.status_code == 409 and clash.json()["code"] == "CREDIT_PERIOD_CONFLICT"
    credits = [e for e in (await statement(api, working)).json()["entries"] if e["kind"] == "credit"]
    assert [(e["period"], e["amount"]) for e in credits] == [("2023-03", "100.00"), ("2023-04", "100.00")]


async def test_a_retirement_mid_year_switches_the_amount_from_the_next_month(api, registry):
    person = await employee(registry, base="4321.00")  # 2 % = 86.42
    retired = await registry.post(f"/v1/persons/{person}/retire", headers=ADMIN, json={"retired_on": "2023-06-15"})
    assert retired.status_code == 200 and retired.json()["effective_from"] == "2023-07-01", retired.text
    for month in ("2023-05", "2023-06", "2023-07", "2023-08"):
        done = await run(api, month)
        assert done.status_code == 201, done.text
    answer = (await statement(api, person)).json()
    assert [(e["kind"], e.get("period"), e["amount"], e["balc"]) for e in answer["entries"]] == [
        ("credit", "2023-05", "86.42", "86.42"),
        ("credit", "2023-06", "86.42", "172.84"),
        ("credit", "2023-07", "60.00", "232.84"),
        ("credit", "2023-08", "60.00", "292.84"),
    ]
    assert answer["opening_balc"] == "0.00"
    assert answer["closing_balc"] == await balance(api, person) == "292.84"


async def test_the_statements_running_balance_equals_the_account_balance(api, registry):
    person = await employee(registry, base="3000.00")
    assert (await run(api, "2023-09")).status_code == 201

    async def buy(cnt: str) -> dict:
        done = await api.post(
            "/v1/pharmacy/purchases",
            headers=pharmacy("P1"),
            json={
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": CERTNOS[person],
                "fixmedins_code": "P1",
                "items": [{"feedetl_sn": "1", "med_list_codg": "COVID-AGT", "pric": "7.50", "cnt": cnt}],
            },
        )
        assert done.status_code == 201, done.text
        return done.json()

    first = await buy("2")
    assert (await api.post(f"/v1/settlements/{first['setl_id']}/reverse", headers=pharmacy("P1"))).status_code == 200
    await buy("1")
    answer = (await statement(api, person)).json()
    assert [(e["kind"], e["amount"], e["balc"]) for e in answer["entries"]] == [
        ("credit", "60.00", "60.00"),
        ("payment", "-15.00", "45.00"),
        ("reversal", "15.00", "60.00"),
        ("payment", "-7.50", "52.50"),
    ]
    assert answer["closing_balc"] == await balance(api, person) == "52.50"
    running = D(answer["opening_balc"])
    for entry in answer["entries"]:
        running += D(entry["amount"])
        assert D(entry["balc"]) == running
    refused = await statement(api, person, his("H4"))
    assert refused.status_code == 403 and refused.json()["code"] == "PERSON_NOT_SEEN"
    seen = await statement(api, person, pharmacy("P1"))  # the pharmacy has seen the person (its purchases)
    assert seen.status_code == 200 and seen.json() == answer


async def test_closure_pays_out_and_refuses_later_credits_and_payments(api, registry):
    person = await employee(registry, base="2500.00")
    assert (await run(api, "2023-10")).status_code == 201
    assert await balance(api, person) == "50.00"
    today = now().date().isoformat()
    closed = await api.post(
        f"/v1/accounts/{person}/closure", json={"reason": "death", "closed_on": today}, headers=ADMIN
    )
    assert closed.status_code == 200, closed.text
    assert closed.json() == {
        "psn_no": person,
        "paid_out": "50.00",
        "closed_on": today,
        "reason": "death",
        "balc": "0.00",
    }
    same = await api.post(f"/v1/accounts/{person}/closure", json={"reason": "death", "closed_on": today}, headers=ADMIN)
    assert same.status_code == 200 and same.json() == closed.json()
    other = await api.post(
        f"/v1/accounts/{person}/closure", json={"reason": "transfer_out", "closed_on": today}, headers=ADMIN
    )
    assert other.status_code == 409 and other.json()["code"] == "ACCOUNT_CLOSED"
    later = await run(api, "2023-11")
    assert later.status_code == 201 and later.json()["skipped"]["account_closed"] >= 1
    assert await balance(api, person) == "0.00"
    credit = await api.post(
        f"/v1/accounts/{person}/credits", json={"amount": "5.00", "period": "2099-01"}, headers=ADMIN
    )
    assert credit.status_code == 422 and credit.json()["code"] == "ACCOUNT_CLOSED"
    answer = (await statement(api, person)).json()
    assert [(e["kind"], e["amount"]) for e in answer["entries"]] == [("credit", "50.00"), ("closure", "-50.00")]
    assert answer["closing_balc"] == "0.00"
    future = (now().date() + timedelta(days=1)).isoformat()
    refused = await api.post(
        f"/v1/accounts/{'MA' + uuid.uuid4().hex[:8]}/closure",
        json={"reason": "death", "closed_on": future},
        headers=ADMIN,
    )
    assert refused.status_code == 422 and refused.json()["code"] == "INVALID_CLOSED_ON"
    by_his = await api.post(
        f"/v1/accounts/{person}/closure", json={"reason": "death", "closed_on": today}, headers=his("H1")
    )
    assert by_his.status_code == 403


async def test_a_month_not_begun_and_eligibility_away(api, registry, settlement_app, fake):
    nxt = (now().date().replace(day=28) + timedelta(days=10)).strftime("%Y-%m")
    future = await run(api, nxt)
    assert future.status_code == 422 and future.json()["code"] == "INVALID_PERIOD"
    for bad in ("2023-13", "23-01", "2023-1", 202301):
        response = await api.post("/v1/accounts/credit-runs", json={"period": bad}, headers=ADMIN)
        assert response.status_code == 422, (bad, response.text)
    assert (
        await api.post("/v1/accounts/credit-runs", json={"period": "2023-12"}, headers=his("H1"))
    ).status_code == 403
    settlement_app.state.eligibility = fake.client()
    fake.down = True
    try:
        away = await run(api, "2023-12")
        assert away.status_code == 503 and away.json()["code"] == "ELIGIBILITY_UNAVAILABLE"
    finally:
        fake.down = False


async def test_a_closed_account_pays_no_hospital_settlement(api, registry, db):
    from types import SimpleNamespace

    from settlement_support import item, open_visit, settle

    person = await employee(registry, base="2500.00")
    assert (await run(api, "2023-12")).status_code == 201
    today = now().date().isoformat()
    closed = await api.post(
        f"/v1/accounts/{person}/closure", json={"reason": "death", "closed_on": today}, headers=ADMIN
    )
    assert closed.status_code == 200, closed.text
    visit = await open_visit(api, SimpleNamespace(psn_no=person, certno=CERTNOS[person]), items=[item("TA1", "80.00")])
    written = await db.written(person)
    refused = await settle(api, visit, body={"acct_used_flag": True})
    assert refused.status_code == 422 and refused.json()["code"] == "ACCOUNT_CLOSED", refused.text
    assert await db.written(person) == written  # nothing written
    without = await settle(api, visit)  # the visit settles, in cash, without the account
    assert without.status_code == 201 and without.json()["acct_pay"] == "0.00"
