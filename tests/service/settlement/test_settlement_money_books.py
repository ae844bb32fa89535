"""What institutions are owed for personal-account payments (issue 13), end to end through the broker: a hospital
settlement paid partly from the account raises the institution's position at the prepayment service by the fund
part plus the account part, the clearing pays both, the reversal takes both back, and the trial balance stays
balanced. Also: settlement's migration 0006 announces settlements paid from an account once more (the existing books
learn their account part), and a retail purchase is owed to the pharmacy the same way.
"""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from settlement_support import ADMIN, buy, credit, item, visit_body

from shared.db import Sql
from shared.events.envelope import now
from shared.testing import fetch

D = Decimal
MIGRATION = Path(__file__).resolve().parents[3] / "services/settlement/migrations/versions/0006_money.py"


def _migration():
    spec = importlib.util.spec_from_file_location("settlement_0006_money", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _eventually(read, wanted, *, what: str, tries: int = 400):
    got = None
    for _ in range(tries):
        got = await read()
        if got == wanted:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: {got} never became {wanted}")


@pytest.fixture
async def books(api, eligibility, prepayment, settlement_app):
    """A fresh city hospital known to eligibility, settlement and prepayment (its position is this test's alone)."""
    code = "HM" + uuid.uuid4().hex[:8].upper()
    created = await eligibility.post(
        "/v1/institutions",
        headers=ADMIN,
        json={
            "fixmedins_code": code,
            "fixmedins_name": "记账医院",
            "kind": "hospital",
            "level": 2,
            "affiliation": "city",
            "admdvs": "621000",
        },
    )
    assert created.status_code == 201, created.text

    async def known() -> bool:
        rows = await fetch(settlement_app, "SELECT 1 FROM settlement.institutions WHERE fixmedins_code = :c", c=code)
        position = await prepayment.get(f"/v1/institutions/{code}/position", headers=ADMIN)
        return bool(rows) and position.status_code == 200

    await _eventually(known, True, what=f"{code} known to settlement and prepayment")
    return code


async def _position(prepayment, code: str) -> dict:
    response = await prepayment.get(f"/v1/institutions/{code}/position", headers=ADMIN)
    assert response.status_code == 200, response.text
    return {k: response.json()[k] for k in ("prepaid", "fund_payable", "acct_payable", "subsidy_receivable", "net")}


async def _trial(prepayment, code: str | None = None) -> dict[str, D]:
    params = {"fixmedins_code": code} if code else {}
    body = (await prepayment.get("/v1/ledger/trial-balance", params=params, headers=ADMIN)).json()
    assert body["debits"] == body["credits"]
    return {a["account"]: D(a["balance"]) for a in body["accounts"] if D(a["balance"])}


async def test_account_payments_are_owed_cleared_and_reversed_to_the_fen(api, fake, prepayment, books):
    code = books
    person = fake.add(psn_type="retired")
    await credit(api, person.psn_no, "123.45")
    today = now().date().isoformat()
    visit = await api.post("/v1/visits", json=visit_body(person, code=code, day=today), headers=ADMIN)
    assert visit.status_code == 201, visit.text
    mdtrt_id = visit.json()["mdtrt_id"]
    lines = [item("TA-BOOK", "1234.56"), item("TB-BOOK", "100.00", item_class="B")]
    assert (await api.post(f"/v1/visits/{mdtrt_id}/fees", json={"items": lines}, headers=ADMIN)).status_code == 201
    settled = await api.post(f"/v1/visits/{mdtrt_id}/settle", json={"acct_used_flag": True}, headers=ADMIN)
    assert settled.status_code == 201, settled.text
    answer = settled.json()
    fund, acct = D(answer["fund_pay_sumamt"]), D(answer["acct_pay"])
    # in-scope 1234.56 + 90.00; retired level 2: 65 % of (1324.56 − 200.00) = 730.964 → 730.96
    assert (answer["hifp_pay"], answer["acct_pay"], answer["psn_cash_pay"]) == ("730.96", "123.45", "480.15")

    owed = {
        "prepaid": "0.00",
        "fund_payable": f"{fund:.2f}",
        "acct_payable": f"{acct:.2f}",
        "subsidy_receivable": "0.00",
        "net": f"{fund + acct:.2f}",
    }
    await _eventually(lambda: _position(prepayment, code), owed, what="position after the settlement")
    assert await _trial(prepayment, code) == {
        "fund:hifp": D("730.96"),
        "account_fund:payments": D("123.45"),
        f"institution:{code}:fund_payable": D("-730.96"),
        f"institution:{code}:acct_payable": D("-123.45"),
    }

    cleared = await prepayment.post(
        "/v1/clearings", headers=ADMIN, json={"period_start": today, "period_end": today, "fixmedins_code": code}
    )
    assert cleared.status_code == 201, cleared.text
    (clearing,) = cleared.json()["clearings"]
    assert (clearing["paid"], clearing["acct_paid"], clearing["total_paid"]) == ("730.96", "123.45", "854.41")
    assert (await _position(prepayment, code))["net"] == "0.00"

    reversed_ = await api.post(f"/v1/settlements/{answer['setl_id']}/reverse", headers=ADMIN)
    assert reversed_.status_code == 200, reversed_.text
    taken_back = {**owed, "fund_payable": "-730.96", "acct_payable": "-123.45", "net": "-854.41"}
    await _eventually(lambda: _position(prepayment, code), taken_back, what="position after the reversal")
    assert (await api.get(f"/v1/accounts/{person.psn_no}", headers=ADMIN)).json()["balc"] == "123.45"
    assert sum((await _trial(prepayment)).values()) == 0
    assert sum((await _trial(prepayment, code)).values()) == 0

    # settlement's migration 0006, for this person: announced once more; the books take nothing twice
    async with api._transport.app.state.db.begin() as unit:
        await unit.execute(Sql(_migration().reannouncement("settlement", f"psn_no = '{person.psn_no}'")))
    rows = await fetch(
        api._transport.app,
        "SELECT envelope -> 'payload' AS payload FROM settlement.outbox WHERE key = :p AND topic = 'settled' "
        "ORDER BY id",
        p=person.psn_no,
    )
    original, again = (r["payload"] for r in rows)
    assert again == {**original, "reannounced": True}
    await asyncio.sleep(1.0)
    assert await _position(prepayment, code) == taken_back


async def test_a_retail_purchase_is_owed_to_the_pharmacy(api, fake, prepayment):
    person = fake.add()
    await credit(api, person.psn_no, "30.00")
    before = await prepayment.get("/v1/institutions/P1/position", headers=ADMIN)
    acct_before = D(before.json()["acct_payable"]) if before.status_code == 200 else D("0.00")
    antigen = {"feedetl_sn": "1", "med_list_codg": "COVID-AGT", "med_list_name": "抗原", "pric": "7.50", "cnt": "2"}
    bought = await buy(api, person, [antigen])
    assert bought.status_code == 201, bought.text
    assert (bought.json()["acct_pay"], bought.json()["psn_cash_pay"]) == ("15.00", "0.00")

    async def acct_payable() -> D:
        return D((await prepayment.get("/v1/institutions/P1/position", headers=ADMIN)).json()["acct_payable"])

    await _eventually(acct_payable, acct_before + D("15.00"), what="the pharmacy's acct_payable")
    entries = (
        await prepayment.get("/v1/ledger/entries", params={"setl_id": bought.json()["setl_id"]}, headers=ADMIN)
    ).json()["entries"]
    assert [(e["kind"], e["lines"]) for e in entries] == [
        (
            "account-payment",
            [
                {"account": "account_fund:payments", "debit": "15.00", "credit": "0.00"},
                {"account": "institution:P1:acct_payable", "debit": "0.00", "credit": "15.00"},
            ],
        )
    ]


async def test_reporting_reconciles_the_days_account_payments_and_purchases_with_settlement(
    api, fake, reporting, settlement_app
):
    """The reconciliation of the account side against the real settlement service, once the events arrived."""
    person, spouse = fake.add(), fake.add()
    fake.relate(person, spouse)
    await credit(api, spouse.psn_no, "9.00")
    antigen = {"feedetl_sn": "1", "med_list_codg": "COVID-AGT", "pric": "6.00", "cnt": "2"}
    bought = await buy(api, person, [antigen], payer=spouse.psn_no)
    assert bought.status_code == 201, bought.text
    assert (bought.json()["acct_pay"], bought.json()["psn_cash_pay"]) == ("9.00", "3.00")
    day = bought.json()["setl_date"]
    totals = (await api.get("/v1/account-totals", params={"date": day}, headers=ADMIN)).json()
    assert totals["purchases"]["count"] >= 1 and D(totals["family_acct_pay"]) >= D("9.00")
    state = reporting._transport.app.state
    previous = state.settlement
    state.settlement = httpx.AsyncClient(transport=httpx.ASGITransport(app=settlement_app), base_url="http://s")
    try:

        async def differences() -> tuple[list, list]:
            sides = []
            for path in ("/v1/reconciliation", "/v1/reconciliation/accounts"):
                response = await reporting.get(path, params={"date": day}, headers=ADMIN)
                assert response.status_code == 200, response.text
                sides.append(response.json()["differences"])
            return sides[0], sides[1]

        await _eventually(differences, ([], []), what="reconciliation of the day")
    finally:
        await state.settlement.aclose()
        state.settlement = previous
