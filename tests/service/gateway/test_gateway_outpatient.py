"""Outpatient days through the gateway, played by an HIS written from the spec (his_client.py)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from gateway_support import ADMIN, rest_visit, twins
from gateway_support import his as his_of
from his_client import (
    Item,
    amount,
    batch_cancel_2205,
    cancel_2202,
    cancel_settlement,
    check_identities,
    fees_2204,
    now,
    numbered,
    person_1101,
    register_2201,
    settle_data,
    settlement_5203,
    sign_in,
    visit_2203,
)

from shared.testing import fetch

MONEY = (
    "medfee_sumamt",
    "fulamt_ownpay_amt",
    "preselfpay_amt",
    "inscp_scp_amt",
    "hifp_pay",
    "hifmi_pay",
    "maf_pay",
    "acct_pay",
    "psn_cash_pay",
)


async def test_the_outpatient_day_settles_to_the_fen_as_the_rest_api(gateway, settlement, eligibility):
    p, twin = await twins(eligibility, insutype="310", psn_type="in_service")
    his = his_of(gateway)
    when = now() - timedelta(minutes=5)
    await his.call("9001", sign_in())
    info = (await his.call("1101", person_1101(p))).output
    assert info["baseinfo"]["psn_no"] == p.psn_no and info["baseinfo"]["certno"] == p.certno
    registered = (await his.call("2201", register_2201(p, when=when, ipt_otp_no="MZ0001"))).output["data"]
    mdtrt_id = registered["mdtrt_id"]
    await his.call("2203", visit_2203(p, mdtrt_id, when=when))
    items = numbered([Item("XGWA001", "25.00", "2"), Item("XGWB001", "48.50", "1"), Item("XGWC001", "12.30", "3")])
    lines = (await his.call("2204", fees_2204(p, mdtrt_id, items, when=when, batch="B1"))).output["result"]
    assert [r["chrgitm_lv"] for r in lines] == ["01", "02", "03"]
    medfee = sum((i.total for i in items), Decimal("0.00"))
    pre = (await his.call("2206", settle_data(p, mdtrt_id, medfee))).output["setlinfo"]
    done = (await his.call("2207", settle_data(p, mdtrt_id, medfee))).output
    setl = done["setlinfo"]
    check_identities(setl)
    assert amount(pre["medfee_sumamt"]) == amount(setl["medfee_sumamt"]) == medfee
    rest = await rest_visit(settlement, twin, items, begntime=when.isoformat(), diagnoses=["J06.900"])
    for name in MONEY:
        assert amount(setl[name]) == Decimal(rest[name]), name
    found = (await his.call("5203", settlement_5203(p, mdtrt_id, setl["setl_id"]))).output["setlinfo"]
    assert found["setl_id"] == setl["setl_id"] and found["medins_setl_id"] == setl["medins_setl_id"]
    undone = (await his.call("2208", cancel_settlement(p, mdtrt_id, setl["setl_id"]))).output["setlinfo"]
    check_identities(undone)
    for name in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "hifp_pay"):
        assert amount(undone[name]) == -amount(setl[name]), name


async def test_the_outpatient_cancel_path_takes_everything_back(gateway, settlement, eligibility):
    """Settle, cancel the settlement (2208), a charge batch (2205), every line ("0000"), the registration (2202)."""
    p, _ = await twins(eligibility, insutype="390")
    his = his_of(gateway)
    when = now() - timedelta(minutes=30)
    await his.call("1101", person_1101(p))
    mdtrt_id = (await his.call("2201", register_2201(p, when=when, ipt_otp_no="MZ2"))).output["data"]["mdtrt_id"]
    await his.call("2203", visit_2203(p, mdtrt_id, when=when))
    first = numbered([Item("XGWA001", "60.00", "1"), Item("XGWB001", "40.00", "1")])
    second = numbered([Item("XGWC001", "15.00", "2")])
    await his.call("2204", fees_2204(p, mdtrt_id, first, when=when, batch="B1"))
    await his.call("2204", fees_2204(p, mdtrt_id, second, when=when, batch="B2"))
    await his.call("2205", batch_cancel_2205(p, mdtrt_id, "B2"))
    assert "B2" in (await his.refused("2205", batch_cancel_2205(p, mdtrt_id, "B2"))).err_msg
    medfee = Decimal("100.00")
    setl = (await his.call("2207", settle_data(p, mdtrt_id, medfee))).output["setlinfo"]
    assert "结算" in (await his.refused("2202", cancel_2202(p, mdtrt_id, "MZ2"))).err_msg
    assert "结算" in (await his.refused("2205", batch_cancel_2205(p, mdtrt_id, "0000"))).err_msg
    await his.call("2208", cancel_settlement(p, mdtrt_id, setl["setl_id"]))
    assert (await his.refused("2208", cancel_settlement(p, mdtrt_id, setl["setl_id"]))).err_msg == "该结算已撤销"
    await his.call("2205", batch_cancel_2205(p, mdtrt_id, "0000"))
    await his.call("2202", cancel_2202(p, mdtrt_id, "MZ2"))
    app = settlement._transport.app
    visit = await fetch(app, "SELECT status, setl_id FROM settlement.visits WHERE mdtrt_id = :m", m=mdtrt_id)
    assert tuple(visit[0]) == ("closed", None)
    assert await fetch(app, "SELECT feedetl_sn FROM settlement.fee_lines WHERE mdtrt_id = :m", m=mdtrt_id) == []
    assert "撤销" in (await his.refused("2204", fees_2204(p, mdtrt_id, first, when=when, batch="B3"))).err_msg
    other, _ = await twins(eligibility, insutype="390")
    assert "不符" in (await his.refused("2202", cancel_2202(other, mdtrt_id, "MZ2"))).err_msg


async def test_a_chronic_visit_is_decided_at_2203_and_settles_as_the_rest_api(gateway, settlement, eligibility):
    """2201 knows no med_type; 2203 makes the visit 门诊慢特病 (14) with the disease's national code."""
    p, twin = await twins(eligibility, insutype="390")
    for person in (p, twin):
        qualified = await eligibility.post(
            f"/v1/persons/{person.psn_no}/chronic-qualifications",
            headers=ADMIN,
            json={"disease": "hypertension", "two_disease_class": 1, "start_date": "2022-01-01", "certified_by": "H1"},
        )
        assert qualified.status_code == 201, qualified.text
    his = his_of(gateway)
    when = now() - timedelta(minutes=15)
    mdtrt_id = (await his.call("2201", register_2201(p, when=when, ipt_otp_no="MZ3"))).output["data"]["mdtrt_id"]
    await his.call("2203", visit_2203(p, mdtrt_id, when=when, med_type="14", dise_codg="M03900"))
    items = numbered([Item("XGWA001", "35.00", "4")])
    await his.call("2204", fees_2204(p, mdtrt_id, items, when=when, batch="B1"))
    setl = (await his.call("2207", settle_data(p, mdtrt_id, Decimal("140.00")))).output["setlinfo"]
    assert setl["med_type"] == "14" and amount(setl["hifp_pay"]) > 0
    rest = await rest_visit(
        settlement, twin, items, med_type="14", begntime=when.isoformat(), diagnoses=["J06.900"], chronic="hypertension"
    )
    for name in MONEY:
        assert amount(setl[name]) == Decimal(rest[name]), name
