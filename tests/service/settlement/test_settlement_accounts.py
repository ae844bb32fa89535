"""Personal accounts: credits per period, payment of the personal share, family payer, refunds."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from settlement_support import ADMIN, his, item, open_visit, settle


async def _credit(api, psn_no: str, amount: str, period: str = "2024-01"):
    return await api.post(f"/v1/accounts/{psn_no}/credits", json={"amount": amount, "period": period}, headers=ADMIN)


async def _balance(api, psn_no: str) -> str:
    response = await api.get(f"/v1/accounts/{psn_no}", headers=ADMIN)
    assert response.status_code == 200
    return response.json()["balc"]


async def test_credits_are_idempotent_per_person_and_period(api, fake):
    person = fake.add()
    assert (await _credit(api, person.psn_no, "100.00")).status_code == 201
    again = await _credit(api, person.psn_no, "100.00")
    assert again.status_code == 200 and again.json()["balc"] == "100.00"
    other = await _credit(api, person.psn_no, "120.00")
    assert other.status_code == 409 and other.json()["code"] == "CREDIT_PERIOD_CONFLICT"
    assert (await _credit(api, person.psn_no, "60.00", "2024-02")).json()["balc"] == "160.00"
    assert (await _credit(api, person.psn_no, "-1.00", "2024-03")).status_code == 422
    assert (
        await api.post(f"/v1/accounts/{person.psn_no}/credits", json={"amount": "1.00", "period": "x"}, headers=his())
    ).status_code == 403
    assert await _balance(api, "NEVER-CREDITED") == "0.00"


async def test_account_pays_the_personal_share_and_reversal_refunds(api, fake):
    person = fake.add()
    await _credit(api, person.psn_no, "100.00")
    mdtrt_id = await open_visit(api, person, code="H3", day="2024-04-04", items=[item("TA21", "300.00")])
    done = (await settle(api, mdtrt_id, code="H3", body={"acct_used_flag": True})).json()
    assert (done["acct_pay"], done["psn_cash_pay"], done["balc"]) == ("100.00", "60.00", "0.00")
    assert await _balance(api, person.psn_no) == "0.00"
    await api.post(f"/v1/settlements/{done['setl_id']}/reverse", headers=his("H3"))
    assert await _balance(api, person.psn_no) == "100.00"


async def test_family_member_pays_and_a_stranger_may_not(api, fake, db):
    patient, spouse, stranger = fake.add(), fake.add(), fake.add()
    fake.relate(patient, spouse)
    await _credit(api, spouse.psn_no, "500.00")
    await _credit(api, stranger.psn_no, "500.00")
    mdtrt_id = await open_visit(api, patient, items=[item("TA1", "200.00")])
    refused = await settle(api, mdtrt_id, body={"acct_used_flag": True, "acct_payer_psn_no": stranger.psn_no})
    assert refused.status_code == 422 and refused.json()["code"] == "NOT_FAMILY"
    assert await db.written(patient.psn_no) == (0, 0, {}, 0)
    done = (await settle(api, mdtrt_id, body={"acct_used_flag": True, "acct_payer_psn_no": spouse.psn_no})).json()
    assert done["acct_pay"] == "200.00" and done["balc"] == "300.00" and done["acct_payer_psn_no"] == spouse.psn_no
    assert await _balance(api, spouse.psn_no) == "300.00"
    assert await _balance(api, stranger.psn_no) == "500.00"


async def test_concurrent_payments_never_overdraw(api, fake):
    person = fake.add()
    await _credit(api, person.psn_no, "150.00")
    visits = [
        await open_visit(api, person, code="H3", day="2024-05-02", items=[item("TA1", "50.00")]) for _ in range(8)
    ]
    answers = await asyncio.gather(*(settle(api, m, code="H3", body={"acct_used_flag": True}) for m in visits))
    assert {a.status_code for a in answers} == {201}
    assert sum(Decimal(a.json()["acct_pay"]) for a in answers) == Decimal("150.00")
    assert await _balance(api, person.psn_no) == "0.00"
