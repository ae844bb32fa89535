"""A pharmacy through the gateway: a dual-channel prescription (2101, 2102, 2103) and a retail purchase paid from
the personal account (2101, 2102), to the fen as the REST API."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from gateway_support import credit, pharmacy_key, twins
from gateway_support import his as his_of
from his_client import (
    Item,
    amount,
    cancel_settlement,
    check_identities,
    drugs,
    now,
    numbered,
    person_1101,
    reversal_2601,
)

from shared.testing import HIS_KEYS

MONEY = ("medfee_sumamt", "hifp_pay", "hifmi_pay", "maf_pay", "acct_pay", "psn_cash_pay", "inscp_scp_amt")


async def _prescription(settlement, psn_no: str) -> str:
    rx_no = f"RX{uuid.uuid4().hex[:12].upper()}"
    issued = await settlement.post(
        "/v1/prescriptions",
        headers={"X-Api-Key": HIS_KEYS["H1"]},
        json={
            "rx_no": rx_no,
            "psn_no": psn_no,
            "fixmedins_code": "H1",
            "issued_at": (now() - timedelta(hours=3)).isoformat(),
            "items": [
                {
                    "med_list_codg": "XGWA001",
                    "med_list_name": "阿莫西林",
                    "item_class": "A",
                    "cnt": "2",
                    "days_supply": 7,
                },
                {
                    "med_list_codg": "ZGWB002",
                    "med_list_name": "连花清瘟",
                    "item_class": "B",
                    "cnt": "1",
                    "days_supply": 5,
                },
            ],
        },
    )
    assert issued.status_code == 201, issued.text
    return rx_no


async def test_a_dual_channel_prescription_settles_as_the_rest_api_and_is_cancelled(gateway, settlement, eligibility):
    p, twin = await twins(eligibility, insutype="390")
    await credit(settlement, p.psn_no, "200.00")
    await credit(settlement, twin.psn_no, "200.00")
    pharmacy = his_of(gateway, "P1")
    items = numbered([Item("XGWA001", "18.00", "2"), Item("ZGWB002", "26.50", "1")])
    when = now()
    await pharmacy.call("1101", person_1101(p))
    rx_no = await _prescription(settlement, p.psn_no)
    pre = (await pharmacy.call("2101", drugs(p, items, when=when, rxno=rx_no))).output["setlinfo"]
    done = (await pharmacy.call("2102", drugs(p, items, when=when, rxno=rx_no))).output
    setl = done["setlinfo"]
    check_identities(setl)
    assert amount(pre["hifp_pay"]) == amount(setl["hifp_pay"]) > 0
    assert [r["chrgitm_lv"] for r in done["detlcutinfo"]] == ["01", "02"]
    twin_rx = await _prescription(settlement, twin.psn_no)
    rest = await settlement.post(
        "/v1/pharmacy/settlements",
        headers=pharmacy_key(),
        json={
            "rx_no": twin_rx,
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": twin.certno,
            "fixmedins_code": "P1",
            "acct_used_flag": True,
            "items": [
                {"feedetl_sn": f"T{i}", "med_list_codg": it.codg, "pric": it.pric, "cnt": it.cnt}
                for i, it in enumerate(items)
            ],
        },
    )
    assert rest.status_code == 201, rest.text
    for name in MONEY:
        assert amount(setl[name]) == Decimal(rest.json()[name]), name
    undone = (await pharmacy.call("2103", cancel_settlement(p, setl["mdtrt_id"], setl["setl_id"]))).output["setlinfo"]
    for name in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "psn_cash_pay"):
        assert amount(undone[name]) == -amount(setl[name]), name
    assert amount(undone["balc"]) == Decimal("200.00") > amount(setl["balc"])  # the account refunded


async def test_a_retail_purchase_is_paid_from_the_account_as_the_rest_api(gateway, settlement, eligibility):
    p, twin = await twins(eligibility, insutype="310", psn_type="retired")
    for person in (p, twin):
        await credit(settlement, person.psn_no, "50.00")
    pharmacy = his_of(gateway, "P1", scheme="tif")
    items = numbered([Item("XGWA001", "30.00", "1"), Item("XGWE001", "20.00", "2")])
    when = now()
    pre = (await pharmacy.call("2101", drugs(p, items, when=when))).output["setlinfo"]
    msgid = pharmacy.msgid()
    done = (await pharmacy.call("2102", drugs(p, items, when=when), msgid=msgid)).output
    setl = done["setlinfo"]
    check_identities(setl)
    assert amount(setl["fund_pay_sumamt"]) == 0 and amount(setl["acct_pay"]) == amount(pre["acct_pay"])
    rest = await settlement.post(
        "/v1/pharmacy/purchases",
        headers=pharmacy_key(),
        json={
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": twin.certno,
            "fixmedins_code": "P1",
            "items": [
                {"feedetl_sn": f"T{i}", "med_list_codg": it.codg, "pric": it.pric, "cnt": it.cnt}
                for i, it in enumerate(items)
            ],
        },
    )
    assert rest.status_code == 201, rest.text
    for name in MONEY:
        assert amount(setl[name]) == Decimal(rest.json()[name]), name
    assert amount(setl["acct_pay"]) == Decimal("30.00") and amount(setl["balc"]) == Decimal("20.00")
    # its answer "lost": 2601 reverses the purchase and the account is whole again
    await pharmacy.call("2601", reversal_2601(p, msgid, "2102"))
    balance = await settlement.get(f"/v1/accounts/{p.psn_no}", headers=pharmacy_key())
    assert balance.json()["balc"] == "50.00"
