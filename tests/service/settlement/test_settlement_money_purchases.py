"""Retail purchases at a pharmacy 定点药店购药 (issue 13): the personal account only, up to its balance, the rest cash.

Every amount to the fen against real PostgreSQL: a balance too small, items the account may not pay, a family
payer, a stranger refused, a closed account refused, a reversal that restores the balance, 32 purchases at once
against one balance, and temporary catalogue entries.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from settlement_support import ADMIN, as_decided, buy, credit, his, item, open_visit, pharmacy, purchase_body, settle

from shared.events.envelope import now

D = Decimal
TAG = uuid.uuid4().hex[:6].upper()
OTC = f"OTC-{TAG}"  # an OTC drug: the account pays it
KIT = f"AGTKIT-{TAG}"  # an antigen kit, class A with a price cap
GYM = f"GYM-{TAG}"  # a fitness item: in the catalogue, never paid by the account
OLD = f"TEMP-{TAG}"  # a temporary entry that has ended


@pytest.fixture(scope="module")
async def catalogue(settlement_app, settlement):
    today = now().date()
    entries = {
        OTC: {"med_list_name": "布洛芬缓释胶囊", "item_class": "A"},
        KIT: {"med_list_name": "新冠抗原检测试剂盒", "item_class": "A", "price_cap": "8.00"},
        GYM: {"med_list_name": "健身卡", "item_class": "C", "account_excluded": True},
        OLD: {
            "med_list_name": "临时目录药品",
            "item_class": "A",
            "valid_from": (today - timedelta(days=60)).isoformat(),
            "valid_to": (today - timedelta(days=1)).isoformat(),
        },
    }
    for code, body in entries.items():
        put = await settlement.put(f"/v1/catalog/{code}", json=body, headers=ADMIN)
        assert put.status_code in (200, 201), put.text
    return entries


def line(code: str, pric: str, cnt: str = "1") -> dict:
    return {
        "feedetl_sn": f"F{uuid.uuid4().hex[:10]}",
        "med_list_codg": code,
        "med_list_name": code,
        "pric": pric,
        "cnt": cnt,
    }


async def balance(api, psn_no: str) -> str:
    return (await api.get(f"/v1/accounts/{psn_no}", headers=ADMIN)).json()["balc"]


def funds_are_zero(answer: dict) -> None:
    for name in (
        "hifp_pay",
        "hifmi_pay",
        "maf_pay",
        "tilt_aid_pay",
        "fin_subsidy_pay",
        "fund_pay_sumamt",
        "act_pay_dedc",
    ):
        assert answer[name] == "0.00", (name, answer[name])
    assert D(answer["acct_pay"]) + D(answer["psn_cash_pay"]) == D(answer["medfee_sumamt"])
    assert answer["psn_pay"] == answer["medfee_sumamt"]
    assert answer["med_type"] == "41" and answer["pool"] == "retail"


def step(answer: dict, name: str) -> dict:
    (found,) = [s for s in answer["trace"] if s["step"] == name]
    return found


async def test_a_balance_too_small_pays_what_it_holds_and_the_rest_is_cash(api, fake, db, catalogue):
    person = fake.add()
    await credit(api, person.psn_no, "30.00")
    before = await db.accumulators(person.psn_no, now().year)
    done = await buy(api, person, [line(OTC, "12.50", "4")])
    assert done.status_code == 201, done.text
    answer = done.json()
    funds_are_zero(answer)
    assert (answer["medfee_sumamt"], answer["acct_pay"], answer["psn_cash_pay"], answer["balc"]) == (
        "50.00",
        "30.00",
        "20.00",
        "0.00",
    )
    assert step(answer, "account.acct_pay")["amount"] == "30.00"
    assert step(answer, "account.acct_pay")["detail"]["balance_before"] == "30.00"
    assert step(answer, "cash.psn_cash_pay")["detail"]["beyond_balance"] == "20.00"
    assert await balance(api, person.psn_no) == "0.00"
    assert await db.accumulators(person.psn_no, now().year) == before  # no pool, no cap, no deductible touched
    stored = await api.get(f"/v1/settlements/{answer['setl_id']}", headers=pharmacy("P1"))
    assert stored.status_code == 200 and stored.json()["acct_pay"] == "30.00"


async def test_excluded_items_and_codes_outside_the_catalogue_are_cash(api, fake, catalogue):
    person = fake.add()
    await credit(api, person.psn_no, "100.00")
    done = await buy(
        api, person, [line(OTC, "20.00"), line(KIT, "7.50", "2"), line(GYM, "15.00"), line(f"UNKNOWN-{TAG}", "7.55")]
    )
    assert done.status_code == 201, done.text
    answer = done.json()
    funds_are_zero(answer)
    assert (answer["medfee_sumamt"], answer["acct_pay"], answer["psn_cash_pay"], answer["balc"]) == (
        "57.55",
        "35.00",
        "22.55",
        "65.00",
    )
    payable = step(answer, "purchase.account_payable")
    assert payable["amount"] == "35.00"
    assert (payable["detail"]["account_excluded"], payable["detail"]["not_in_catalogue"]) == ("15.00", "7.55")
    assert {w["code"] for w in answer["warnings"]} == {"ACCOUNT_EXCLUDED", "NOT_IN_CATALOGUE"}
    assert await balance(api, person.psn_no) == "65.00"


async def test_a_price_above_the_cap_is_refused_and_nothing_is_written(api, fake, db, catalogue):
    person = fake.add()
    await credit(api, person.psn_no, "100.00")
    before = await db.written(person.psn_no)
    refused = await buy(api, person, [line(KIT, "8.01")])
    assert refused.status_code == 422 and refused.json()["code"] == "PRICE_ABOVE_CAP", refused.text
    assert await db.written(person.psn_no) == before
    assert await balance(api, person.psn_no) == "100.00"


async def test_a_family_member_pays_and_a_stranger_may_not(api, fake, db, catalogue):
    buyer, parent, stranger = fake.add(insutype="390"), fake.add(psn_type="retired"), fake.add()
    fake.relate(buyer, parent, "parent")
    await credit(api, parent.psn_no, "80.00")
    await credit(api, stranger.psn_no, "80.00")
    before = await db.written(buyer.psn_no)
    refused = await buy(api, buyer, [line(OTC, "25.00")], payer=stranger.psn_no)
    assert refused.status_code == 422 and refused.json()["code"] == "NOT_FAMILY", refused.text
    assert await db.written(buyer.psn_no) == before
    assert await balance(api, stranger.psn_no) == "80.00"
    done = await buy(api, buyer, [line(OTC, "25.00")], payer=parent.psn_no)
    assert done.status_code == 201, done.text
    answer = done.json()
    funds_are_zero(answer)
    assert answer["psn_no"] == buyer.psn_no and answer["acct_payer_psn_no"] == parent.psn_no
    assert (answer["acct_pay"], answer["psn_cash_pay"], answer["balc"]) == ("25.00", "0.00", "55.00")
    assert step(answer, "account.acct_pay")["detail"]["family_payment"] == "true"
    assert await balance(api, parent.psn_no) == "55.00"
    assert await balance(api, buyer.psn_no) == "0.00"
    statement = (await api.get(f"/v1/accounts/{parent.psn_no}/statement", headers=ADMIN)).json()
    assert [(e["kind"], e["amount"]) for e in statement["entries"]][-1] == ("family_payment", "-25.00")
    assert statement["entries"][-1]["for_psn_no"] == buyer.psn_no and statement["closing_balc"] == "55.00"


async def test_a_closed_account_is_refused(api, fake, db, catalogue):
    person = fake.add()
    await credit(api, person.psn_no, "40.00")
    closed = await api.post(
        f"/v1/accounts/{person.psn_no}/closure",
        json={"reason": "transfer_out", "closed_on": now().date().isoformat()},
        headers=ADMIN,
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["paid_out"] == "40.00"
    before = await db.written(person.psn_no)
    refused = await buy(api, person, [line(OTC, "10.00")])
    assert refused.status_code == 422 and refused.json()["code"] == "ACCOUNT_CLOSED", refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert await db.written(person.psn_no) == before
    buyer = fake.add()
    fake.relate(buyer, person, "child")
    by_family = await buy(api, buyer, [line(OTC, "10.00")], payer=person.psn_no)
    assert by_family.status_code == 422 and by_family.json()["code"] == "ACCOUNT_CLOSED"


async def test_a_reversal_restores_the_balance(api, fake, db, catalogue):
    person = fake.add()
    await credit(api, person.psn_no, "60.00")
    done = (await buy(api, person, [line(OTC, "22.40"), line(GYM, "5.00")])).json()
    assert (done["acct_pay"], done["psn_cash_pay"], done["balc"]) == ("22.40", "5.00", "37.60")
    other = await api.post(f"/v1/settlements/{done['setl_id']}/reverse", headers=pharmacy("P2"))
    assert other.status_code == 403
    reversed_ = await api.post(f"/v1/settlements/{done['setl_id']}/reverse", headers=pharmacy("P1"))
    assert reversed_.status_code == 200, reversed_.text
    assert await balance(api, person.psn_no) == "60.00"
    stored = (await api.get(f"/v1/settlements/{done['setl_id']}", headers=ADMIN)).json()
    assert stored["status"] == "reversed"
    again = await buy(api, person, [line(OTC, "22.40"), line(GYM, "5.00")])
    assert again.json()["acct_pay"] == "22.40"  # settling again gives the same result
    statement = (await api.get(f"/v1/accounts/{person.psn_no}/statement", headers=ADMIN)).json()
    assert [e["kind"] for e in statement["entries"]] == ["credit", "payment", "reversal", "payment"]
    assert statement["closing_balc"] == await balance(api, person.psn_no) == "37.60"


async def test_32_purchases_at_once_never_overdraw_one_balance(api, fake, db, catalogue):
    person = fake.add()
    await credit(api, person.psn_no, "100.00")
    answers = await asyncio.gather(*(buy(api, person, [line(OTC, "5.00")]) for _ in range(32)))
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers if a.status_code != 201]
    paid = [D(a.json()["acct_pay"]) for a in answers]
    assert sum(paid) == D("100.00")
    assert sum(D(a.json()["psn_cash_pay"]) for a in answers) == D("60.00")
    assert sorted(D(a.json()["balc"]) for a in answers)[0] == D("0.00")
    assert await balance(api, person.psn_no) == "0.00"
    movements = await db.scalar(
        "SELECT coalesce(sum(amount), 0) FROM settlement.account_movements WHERE psn_no = :p", p=person.psn_no
    )
    assert movements == D("0.00")
    assert await db.settlements(person.psn_no) == 32


async def test_who_may_buy(api, fake, db, catalogue):
    person = fake.add()
    await credit(api, person.psn_no, "10.00")
    by_hospital = await api.post(
        "/v1/pharmacy/purchases", json=purchase_body(person, [line(OTC, "1.00")]), headers=his("H1")
    )
    assert by_hospital.status_code == 403
    other_pharmacy = await api.post(
        "/v1/pharmacy/purchases", json=purchase_body(person, [line(OTC, "1.00")]), headers=pharmacy("P2")
    )
    assert other_pharmacy.status_code == 403 and other_pharmacy.json()["code"] == "INSTITUTION_FORBIDDEN"
    at_hospital = await api.post(
        "/v1/pharmacy/purchases", json=purchase_body(person, [line(OTC, "1.00")], code="H1"), headers=ADMIN
    )
    assert at_hospital.status_code == 422 and at_hospital.json()["code"] == "INSTITUTION_NOT_DESIGNATED"
    nobody = dict(purchase_body(person, [line(OTC, "1.00")]), mdtrt_cert_no="C-NOBODY")
    unknown = await api.post("/v1/pharmacy/purchases", json=nobody, headers=pharmacy("P1"))
    assert unknown.status_code == 422 and unknown.json()["code"] == "CREDENTIAL_MISMATCH"
    assert await balance(api, person.psn_no) == "10.00"


async def test_a_temporary_catalogue_entry_outside_its_dates_is_outside_the_catalogue(api, fake, catalogue):
    listed = (await api.get("/v1/catalog", params={"q": OLD}, headers=pharmacy("P1"))).json()["items"]
    assert [(e["valid_from"], e["valid_to"]) for e in listed] == [
        (catalogue[OLD]["valid_from"], catalogue[OLD]["valid_to"])
    ]
    person = fake.add()
    await credit(api, person.psn_no, "50.00")
    bought = (await buy(api, person, [line(OLD, "9.00"), line(OTC, "1.00")])).json()
    assert (bought["acct_pay"], bought["psn_cash_pay"]) == ("1.00", "9.00")
    assert step(bought, "purchase.account_payable")["detail"]["catalogue_entry_not_in_force"] == "9.00"
    # at a hospital the same line, dated after the entry ended, is class C (self-paid)
    patient = fake.add()
    today = now().date()
    mdtrt_id = await open_visit(
        api,
        patient,
        code="H1",
        day=today.isoformat(),
        items=[item(OLD, "100.00", item_class=None, fee_ocur_time=now().isoformat())],
    )
    settled = (await settle(api, mdtrt_id)).json()
    assert (settled["fulamt_ownpay_amt"], settled["hifp_pay"]) == ("100.00", "0.00")
    assert "CATALOGUE_ENTRY_NOT_IN_FORCE" in {w["code"] for w in settled["warnings"]}
    two_days_ago = today - timedelta(days=2)
    inside = await open_visit(
        api,
        fake.add(),
        code="H1",
        day=two_days_ago.isoformat(),
        items=[item(OLD, "100.00", fee_ocur_time=f"{two_days_ago.isoformat()}T10:00:00+08:00")],
    )
    assert (await settle(api, inside)).json()["fulamt_ownpay_amt"] == "0.00"
    assert date.fromisoformat(catalogue[OLD]["valid_to"]) < today


async def test_a_hospital_line_is_judged_by_its_own_day_against_a_temporary_entry(api, fake):
    """An admission from 2024-03-05 to 03-15; the temporary entry ends on 03-10. A line of 03-08 is in the catalogue,
    a line of 03-12 is not (class C), whatever day the stay began (DOMAIN §6)."""
    code = "TEMP" + uuid.uuid4().hex[:6].upper()
    put = await api.put(
        f"/v1/catalog/{code}",
        headers=ADMIN,
        json={"med_list_name": "临时药", "item_class": "A", "valid_from": "2024-03-01", "valid_to": "2024-03-10"},
    )
    assert put.status_code in (200, 201), put.text
    person = fake.add(insutype="390")
    lines = [
        item(code, "100.00", item_class=None, fee_ocur_time="2024-03-08T10:00:00+08:00"),
        item(code, "100.00", item_class=None, fee_ocur_time="2024-03-12T10:00:00+08:00"),
    ]
    mdtrt_id = await open_visit(api, person, med_type="21", day="2024-03-05", items=lines)
    discharged = await api.post(
        f"/v1/visits/{mdtrt_id}/discharge", json={"endtime": "2024-03-15T10:00:00+08:00"}, headers=his()
    )
    assert discharged.status_code == 200, discharged.text
    done = await settle(api, mdtrt_id)
    assert done.status_code == 201, done.text
    body = done.json()
    assert (body["inscp_scp_amt"], body["fulamt_ownpay_amt"]) == ("100.00", "100.00")
    assert "CATALOGUE_ENTRY_NOT_IN_FORCE" in [w["code"] for w in body["warnings"]]


async def test_presettle_answers_what_the_purchase_then_makes_and_writes_nothing(api, fake, db, catalogue):
    person = fake.add()
    await credit(api, person.psn_no, "30.00")
    items = [line(OTC, "12.50", "4"), line(GYM, "15.00")]
    before = await db.written(person.psn_no)
    pre = await api.post("/v1/pharmacy/purchases/presettle", json=purchase_body(person, items), headers=pharmacy())
    assert pre.status_code == 200, pre.text
    assert (pre.json()["setl_id"], pre.json()["status"]) == (None, "presettled")
    assert await db.written(person.psn_no) == before
    done = await buy(api, person, items)
    assert done.status_code == 201, done.text
    assert as_decided(pre.json()) == as_decided(done.json())


@pytest.mark.parametrize("case", ["unknown_credential", "not_a_pharmacy", "stranger_pays", "closed_account"])
async def test_presettle_refuses_a_purchase_as_the_purchase_does(api, fake, db, catalogue, case):
    """The same status, code and errors from POST …/purchases/presettle as from POST …/purchases; nothing written."""
    person, stranger = fake.add(), fake.add()
    await credit(api, person.psn_no, "40.00")
    body, headers = purchase_body(person, [line(OTC, "10.00")]), pharmacy()
    if case == "unknown_credential":
        body["mdtrt_cert_no"] = "C-NOBODY"
    elif case == "not_a_pharmacy":
        body["fixmedins_code"], headers = "H1", ADMIN
    elif case == "stranger_pays":
        body["acct_payer_psn_no"] = stranger.psn_no
    else:
        closure = {"reason": "transfer_out", "closed_on": now().date().isoformat()}
        closed = await api.post(f"/v1/accounts/{person.psn_no}/closure", json=closure, headers=ADMIN)
        assert closed.status_code == 200, closed.text
    before = await db.written(person.psn_no)
    pre = await api.post("/v1/pharmacy/purchases/presettle", json=body, headers=headers)
    refused = await api.post("/v1/pharmacy/purchases", json=body, headers=headers)
    assert refused.status_code == 422, refused.text
    said = lambda r: (r.status_code, r.json()["code"], r.json()["errors"])  # noqa: E731
    assert said(pre) == said(refused)
    assert await db.written(person.psn_no) == before
