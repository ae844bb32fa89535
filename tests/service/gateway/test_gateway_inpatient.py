"""Inpatient days through the gateway: admission, lines with a refund, a line cancelled mid-stay, discharge,
presettle, settle; and the way back (2305, 2405, 2404) as real clients take it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from gateway_support import his as his_of
from gateway_support import rest_visit, twins
from his_client import (
    Item,
    admit_2401,
    amount,
    cancel_settlement,
    check_identities,
    discharge_2402,
    fees_2301,
    inpatient_settle,
    line_cancel_2302,
    now,
    numbered,
    person_1101,
    visit_data,
)

from shared.testing import fetch

MONEY = (
    "medfee_sumamt",
    "fulamt_ownpay_amt",
    "preselfpay_amt",
    "inscp_scp_amt",
    "act_pay_dedc",
    "hifp_pay",
    "hifmi_pay",
    "maf_pay",
    "acct_pay",
    "psn_cash_pay",
)


async def _stay(his, p, *, admitted, left):
    """An admission with three lines, a refund of part of the first and a fourth line cancelled mid-stay."""
    await his.call("1101", person_1101(p))
    mdtrt_id = (await his.call("2401", admit_2401(p, when=admitted, ipt_no="ZY001", diagnoses=["K35.800"]))).output[
        "result"
    ]["mdtrt_id"]
    charged = numbered([Item("XGWA001", "100.00", "10"), Item("XGWB001", "50.00", "2"), Item("XGWC001", "8.80", "5")])
    first = (await his.call("2301", fees_2301(p, mdtrt_id, charged, when=admitted + timedelta(hours=2)))).output
    assert [r["chrgitm_lv"] for r in first["result"]] == ["01", "02", "03"]
    refund = numbered([Item("XGWA001", "100.00", "-3", init=charged[0].sn)])
    refunded = (await his.call("2301", fees_2301(p, mdtrt_id, refund, when=admitted + timedelta(days=1)))).output
    row = refunded["result"][0]
    assert amount(row["det_item_fee_sumamt"]) == Decimal("-300.00") and amount(row["cnt"]) == -3
    assert amount(row["inscp_scp_amt"]) == Decimal("-300.00")  # class A: all of it in scope, negated
    mistaken = numbered([Item("XGWB001", "50.00", "4")])
    await his.call("2301", fees_2301(p, mdtrt_id, mistaken, when=admitted + timedelta(days=1)))
    await his.call("2302", line_cancel_2302(p, mdtrt_id, mistaken[0].sn))
    await his.call("2402", discharge_2402(p, mdtrt_id, when=left, diagnoses=["K35.800"]))
    medfee = Decimal("700.00") + Decimal("100.00") + Decimal("44.00")
    return mdtrt_id, medfee, [Item("XGWA001", "100.00", "7"), charged[1], charged[2]]


async def test_an_inpatient_stay_with_a_refund_and_a_cancelled_line_settles_as_the_rest_api(
    gateway, settlement, eligibility
):
    p, twin = await twins(eligibility, insutype="390")
    his = his_of(gateway)
    admitted, left = now() - timedelta(days=3), now() - timedelta(hours=1)
    mdtrt_id, medfee, net = await _stay(his, p, admitted=admitted, left=left)
    pre = (await his.call("2303", inpatient_settle(p, mdtrt_id, medfee, leaving=left))).output["setlinfo"]
    done = (await his.call("2304", inpatient_settle(p, mdtrt_id, medfee, leaving=left))).output
    setl = done["setlinfo"]
    check_identities(setl)
    assert amount(pre["hifp_pay"]) == amount(setl["hifp_pay"]) and amount(setl["medfee_sumamt"]) == medfee
    assert sum(amount(r["fund_payamt"]) for r in done["setldetail"]) == amount(setl["fund_pay_sumamt"]) + amount(
        setl["acct_pay"]
    )
    rest = await rest_visit(
        settlement,
        twin,
        net,
        med_type="21",
        begntime=admitted.isoformat(),
        endtime=left.isoformat(),
        diagnoses=["K35.800"],
    )
    for name in MONEY:
        assert amount(setl[name]) == Decimal(rest[name]), name


async def test_the_way_back_2305_2405_2404_leaves_nothing_standing(gateway, settlement, eligibility):
    p, _ = await twins(eligibility, insutype="310", psn_type="retired")
    his = his_of(gateway)
    admitted, left = now() - timedelta(days=2), now() - timedelta(hours=2)
    mdtrt_id, medfee, _ = await _stay(his, p, admitted=admitted, left=left)
    setl = (await his.call("2304", inpatient_settle(p, mdtrt_id, medfee, leaving=left))).output["setlinfo"]
    app = settlement._transport.app
    before = await fetch(app, "SELECT amounts FROM settlement.accumulators WHERE psn_no = :p", p=p.psn_no)
    assert before and before[0]["amounts"]
    # the admission cannot be cancelled while settled or discharged
    assert "结算" in (await his.refused("2404", visit_data(p, mdtrt_id))).err_msg
    undone = (await his.call("2305", cancel_settlement(p, mdtrt_id, setl["setl_id"]))).output["setlinfo"]
    for name in ("medfee_sumamt", "fund_pay_sumamt", "hifp_pay", "psn_cash_pay", "acct_pay"):
        assert amount(undone[name]) == -amount(setl[name]), name
    assert amount(undone["pool_prop_selfpay"]) == amount(setl["pool_prop_selfpay"])  # ratios are not negated
    assert "出院" in (await his.refused("2404", visit_data(p, mdtrt_id))).err_msg
    await his.call("2405", visit_data(p, mdtrt_id))
    await his.call("2404", visit_data(p, mdtrt_id))
    after = await fetch(app, "SELECT amounts FROM settlement.accumulators WHERE psn_no = :p", p=p.psn_no)
    assert all(Decimal(v) == 0 for v in after[0]["amounts"].values())
    visit = await fetch(app, "SELECT status, endtime, setl_id FROM settlement.visits WHERE mdtrt_id = :m", m=mdtrt_id)
    assert tuple(visit[0]) == ("closed", None, None)
    assert "已结算" not in (await his.refused("2305", cancel_settlement(p, mdtrt_id, setl["setl_id"]))).err_msg
