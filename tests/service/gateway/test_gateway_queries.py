"""Queries through the gateway: 5206 a person's accumulations (as settlement keeps them), 3201 an institution's
totals reconciled (平 / 不平 and what differs), 5203 a settlement (covered with each day)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from gateway_support import ADMIN, credit, twins
from gateway_support import his as his_of
from his_client import (
    Item,
    accumulations_5206,
    amount,
    fees_2204,
    now,
    numbered,
    person_1101,
    reconcile_3201,
    register_2201,
    settle_data,
    visit_2203,
)

from shared.testing import fetchval


async def _outpatient(his, p, items):
    when = now() - timedelta(minutes=20)
    await his.call("1101", person_1101(p))
    mdtrt_id = (await his.call("2201", register_2201(p, when=when, ipt_otp_no="Q1"))).output["data"]["mdtrt_id"]
    await his.call("2203", visit_2203(p, mdtrt_id, when=when))
    items = numbered(items)
    await his.call("2204", fees_2204(p, mdtrt_id, items, when=when, batch="B1"))
    medfee = sum((i.total for i in items), Decimal("0.00"))
    return (await his.call("2207", settle_data(p, mdtrt_id, medfee))).output["setlinfo"]


async def test_5206_answers_the_persons_accumulations_of_the_year(gateway, settlement, eligibility):
    p, _ = await twins(eligibility, insutype="390")
    his = his_of(gateway)
    setl = await _outpatient(his, p, [Item("XGWA001", "90.00", "2")])
    cum = (await his.call("5206", accumulations_5206(p))).output["cuminfo"]
    stored = await fetchval(
        settlement._transport.app, "SELECT amounts FROM settlement.accumulators WHERE psn_no = :p", p=p.psn_no
    )
    assert {row["cum_type_code"]: amount(row["cum"]) for row in cum} == {
        {"outpatient.deductible_paid": "C11D", "outpatient.fund_paid": "C11F"}[k]: Decimal(v) for k, v in stored.items()
    }
    paid = next(row for row in cum if row["cum_type_code"] == "C11F")
    assert amount(paid["cum"]) == amount(setl["hifp_pay"]) and paid["insutype"] == "390"
    assert paid["year"] == f"{now():%Y}" and paid["cum_ym"] == f"{now():%Y%m}"
    assert (await his.call("5206", accumulations_5206(p, cum_ym="200001"))).output["cuminfo"] == []
    assert "格式" in (await his.refused("5206", accumulations_5206(p, cum_ym="2024-1"))).err_msg
    stranger = his_of(gateway, "H2")  # H2 has never seen the person
    assert "就诊记录" in (await stranger.refused("5206", accumulations_5206(p))).err_msg


async def test_3201_reconciles_the_institutions_totals(gateway, settlement, eligibility):
    p, q = await twins(eligibility, insutype="310", psn_type="in_service")
    his = his_of(gateway, "H2")
    day = now()
    params = {
        "insutype": "310",
        "clr_type": "11",
        "setl_optins": "621000",
        "begndate": f"{day - timedelta(days=1):%Y-%m-%d}",
        "enddate": f"{day:%Y-%m-%d}",
    }
    before = await settlement.get("/v1/institutions/H2/settlement-totals", params=params, headers=ADMIN)
    assert before.status_code == 200, before.text
    mine = [
        await _outpatient(his, p, [Item("XGWA001", "400.00", "2")]),
        await _outpatient(his, q, [Item("XGWB001", "45.00", "1")]),
    ]
    b = before.json()
    medfee = Decimal(b["medfee_sumamt"]) + sum(amount(s["medfee_sumamt"]) for s in mine)
    fund = Decimal(b["fund_pay_sumamt"]) + sum(amount(s["fund_pay_sumamt"]) for s in mine)
    acct = Decimal(b["acct_pay"]) + sum(amount(s["acct_pay"]) for s in mine)
    count = b["count"] + 2
    totals = dict(insutype="310", clr_type="11", day=day, medfee=medfee, fund=fund, acct=acct)
    balanced = (await his.call("3201", reconcile_3201(**totals, count=count))).output["stmtinfo"]
    assert balanced["stmt_rslt"] == "0" and balanced["setl_optins"] == "621000"
    off = (await his.call("3201", reconcile_3201(**totals, count=count + 1))).output["stmtinfo"]
    assert off["stmt_rslt"] == "1" and "结算笔数" in off["stmt_rslt_dscr"] and len(off["stmt_rslt_dscr"]) <= 200
    residents = (await his.call("3201", reconcile_3201(**{**totals, "insutype": "390"}, count=count))).output
    assert residents["stmtinfo"]["stmt_rslt"] == "1"  # the residents' settlements are other ones


async def test_1101_answers_the_balance_and_the_aid_identities_in_force(gateway, settlement, eligibility):
    p, _ = await twins(eligibility, insutype="310", psn_type="retired")
    await credit(settlement, p.psn_no, "123.40")
    identity = await eligibility.post(
        f"/v1/persons/{p.psn_no}/aid-identities", headers=ADMIN, json={"category": "dibao", "start_date": "2023-01-01"}
    )
    assert identity.status_code == 201, identity.text
    his = his_of(gateway, "H2")  # an institution that has never seen the person: the credential opens it
    info = (await his.call("1101", person_1101(p))).output
    assert info["baseinfo"]["psn_name"] == p.psn_name and info["baseinfo"]["gend"] in ("1", "2")
    insured = info["insuinfo"][0]
    assert amount(insured["balc"]) == Decimal("123.40") and insured["insutype"] == "310"
    assert insured["psn_type"] == "12" and insured["insuplc_admdvs"] == "621000"
    assert info["idetinfo"] == [
        {
            "psn_idet_type": "2303",
            "psn_type_lv": None,
            "memo": "dibao",
            "begntime": "2023-01-01 00:00:00",
            "endtime": None,
        }
    ]
