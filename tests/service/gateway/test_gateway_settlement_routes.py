"""The operations the gateway added to settlement and eligibility, over their own REST APIs (CONTRACT style):
cancelling a visit, a discharge and lines, a visit's information, a line replaced, the lines as classified, a
person's accumulators, an institution's totals, pharmacy presettles, the credential's holder."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from gateway_support import ADMIN, credit, new_patient, pharmacy_key
from his_client import now

from shared.testing import HIS_KEYS, fetch

H1 = {"X-Api-Key": HIS_KEYS["H1"]}
_STATUS = "SELECT status FROM settlement.visits WHERE mdtrt_id = :m"


def _line(sn: str, codg: str, pric: str, cnt: str) -> dict:
    return {"feedetl_sn": sn, "med_list_codg": codg, "pric": pric, "cnt": cnt}


async def _visit(settlement, p, *, med_type: str = "11") -> str:
    created = await settlement.post(
        "/v1/visits",
        headers=H1,
        json={
            "psn_no": p.psn_no,
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": p.certno,
            "fixmedins_code": "H1",
            "med_type": med_type,
            "begntime": (now() - timedelta(days=1)).isoformat(),
        },
    )
    assert created.status_code == 201, created.text
    return created.json()["mdtrt_id"]


async def test_a_visit_is_cancelled_once_and_takes_nothing_more(settlement, eligibility):
    p = await new_patient(eligibility, insutype="390")
    mdtrt_id = await _visit(settlement, p)
    first = await settlement.post(f"/v1/visits/{mdtrt_id}/cancel", headers=H1)
    again = await settlement.post(f"/v1/visits/{mdtrt_id}/cancel", headers=H1)
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert first.json()["status"] == "closed" and first.json()["setl_id"] is None
    fees = await settlement.post(
        f"/v1/visits/{mdtrt_id}/fees", headers=H1, json={"items": [_line("1", "XGWA001", "5.00", "1")]}
    )
    assert fees.status_code == 409 and fees.json()["code"] == "VISIT_CLOSED"
    info = await settlement.post(
        f"/v1/visits/{mdtrt_id}/information", headers=H1, json={"med_type": "14", "diagnoses": ["I10"]}
    )
    assert info.status_code == 409 and info.json()["code"] == "VISIT_CANCELLED"
    settled = await settlement.post(f"/v1/visits/{mdtrt_id}/settle", headers=H1, json={})
    assert settled.status_code == 409


async def test_an_admission_is_undischarged_then_cancelled_and_its_merged_visits_stand_alone(settlement, eligibility):
    p = await new_patient(eligibility, insutype="390")
    outpatient = await _visit(settlement, p)
    admission = await _visit(settlement, p, med_type="21")  # merges the visit of the day before
    rows = await fetch(
        settlement._transport.app, "SELECT status FROM settlement.visits WHERE mdtrt_id = :m", m=outpatient
    )
    assert rows[0]["status"] == "merged"
    not_out = await settlement.post(f"/v1/visits/{admission}/discharge/cancel", headers=H1)
    assert not_out.status_code == 409 and not_out.json()["code"] == "NOT_DISCHARGED"
    left = await settlement.post(f"/v1/visits/{admission}/discharge", headers=H1, json={"endtime": now().isoformat()})
    assert left.status_code == 200, left.text
    refused = await settlement.post(f"/v1/visits/{admission}/cancel", headers=H1)
    assert refused.status_code == 409 and refused.json()["code"] == "DISCHARGED"
    back = await settlement.post(f"/v1/visits/{admission}/discharge/cancel", headers=H1)
    assert back.status_code == 200 and back.json()["endtime"] is None
    assert (await settlement.post(f"/v1/visits/{admission}/cancel", headers=H1)).status_code == 200
    rows = await fetch(
        settlement._transport.app, "SELECT status FROM settlement.visits WHERE mdtrt_id = :m", m=outpatient
    )
    assert rows[0]["status"] == "open"
    wrong = await settlement.post(f"/v1/visits/{outpatient}/discharge/cancel", headers=H1)
    assert wrong.status_code == 422 and wrong.json()["code"] == "NOT_INPATIENT"


async def test_lines_are_cancelled_replaced_and_classified(settlement, eligibility):
    p = await new_patient(eligibility, insutype="390")
    mdtrt_id = await _visit(settlement, p)
    uploaded = await settlement.post(
        f"/v1/visits/{mdtrt_id}/fees/classified",
        headers=H1,
        json={"items": [_line("1", "XGWB001", "50.00", "2"), _line("2", "UNKNOWN1", "3.00", "1")]},
    )
    assert uploaded.status_code == 201, uploaded.text
    by_sn = {i["feedetl_sn"]: i for i in uploaded.json()["items"]}
    assert by_sn["1"]["item_class"] == "B" and by_sn["1"]["preselfpay_amt"] == "20.00"  # 100.00 × 0.20
    assert by_sn["1"]["inscp_scp_amt"] == "80.00" and by_sn["1"]["price_cap"] == "60.00"
    assert by_sn["2"]["item_class"] == "C" and not by_sn["2"]["in_catalogue"]
    put = await settlement.put(f"/v1/visits/{mdtrt_id}/fees/1", headers=H1, json=_line("1", "XGWB001", "50.00", "1"))
    assert put.status_code == 200 and put.json()["replaced"], put.text
    same = await settlement.put(f"/v1/visits/{mdtrt_id}/fees/1", headers=H1, json=_line("1", "XGWB001", "50.00", "1"))
    assert same.status_code == 200 and not same.json()["replaced"]
    new = await settlement.put(f"/v1/visits/{mdtrt_id}/fees/3", headers=H1, json=_line("3", "XGWA001", "9.00", "1"))
    assert new.status_code == 201 and new.json()["line_count"] == 3
    other = await settlement.put(f"/v1/visits/{mdtrt_id}/fees/4", headers=H1, json=_line("5", "XGWA001", "9.00", "1"))
    assert other.status_code == 422 and other.json()["code"] == "FEEDETL_SN_MISMATCH"
    capped = await settlement.put(f"/v1/visits/{mdtrt_id}/fees/1", headers=H1, json=_line("1", "XGWB001", "61.00", "1"))
    assert capped.status_code == 422 and capped.json()["code"] == "PRICE_ABOVE_CAP"
    cancelled = await settlement.post(f"/v1/visits/{mdtrt_id}/fees/cancel", headers=H1, json={"feedetl_sn": ["2", "9"]})
    assert cancelled.json() == {"mdtrt_id": mdtrt_id, "cancelled": ["2"], "line_count": 2}
    listed = await settlement.get(f"/v1/visits/{mdtrt_id}/fees", headers=H1)
    assert [(i["feedetl_sn"], i["cnt"], i["det_item_fee_sumamt"]) for i in listed.json()["items"]] == [
        ("1", "1", "50.00"),
        ("3", "1", "9.00"),
    ]
    for bad in ({}, {"all": True, "feedetl_sn": ["1"]}, {"feedetl_sn": ["a b"]}, {"all": "yes"}):
        refused = await settlement.post(f"/v1/visits/{mdtrt_id}/fees/cancel", headers=H1, json=bad)
        assert refused.status_code == 422, (bad, refused.text)
    everything = await settlement.post(f"/v1/visits/{mdtrt_id}/fees/cancel", headers=H1, json={"all": True})
    assert everything.json()["line_count"] == 0


async def test_accumulators_totals_and_the_credential_holder(settlement, eligibility):
    p = await new_patient(eligibility, insutype="390")
    mdtrt_id = await _visit(settlement, p)
    await settlement.post(
        f"/v1/visits/{mdtrt_id}/fees", headers=H1, json={"items": [_line("1", "XGWA001", "90.00", "2")]}
    )
    settled = await settlement.post(f"/v1/visits/{mdtrt_id}/settle", headers=H1, json={})
    assert settled.status_code == 201, settled.text
    year = settled.json()["setl_time"][:4]
    found = await settlement.get(f"/v1/persons/{p.psn_no}/accumulators", params={"year": year}, headers=H1)
    assert found.json()["insutype"] == "390"
    assert found.json()["amounts"]["outpatient.fund_paid"] == settled.json()["hifp_pay"]
    none = await settlement.get(f"/v1/persons/{p.psn_no}/accumulators", params={"year": "2001"}, headers=ADMIN)
    assert none.json()["amounts"] == {}
    day = settled.json()["setl_time"][:10]
    params = {"insutype": "390", "clr_type": "11", "setl_optins": "621000", "begndate": day, "enddate": day}
    totals = await settlement.get("/v1/institutions/H1/settlement-totals", params=params, headers=H1)
    assert totals.status_code == 200 and totals.json()["count"] >= 1
    backwards = await settlement.get(
        "/v1/institutions/H1/settlement-totals", params={**params, "begndate": "2099-01-01"}, headers=H1
    )
    assert backwards.status_code == 422 and backwards.json()["code"] == "INVALID_PERIOD"
    holder = await eligibility.get(
        "/v1/credential-holder", params={"mdtrt_cert_type": "02", "mdtrt_cert_no": p.certno}, headers=H1
    )
    assert holder.status_code == 200 and holder.json()["psn_no"] == p.psn_no and holder.json()["active"]
    nobody = await eligibility.get(
        "/v1/credential-holder", params={"mdtrt_cert_type": "02", "mdtrt_cert_no": "NOBODY"}, headers=H1
    )
    assert nobody.status_code == 404 and nobody.json()["code"] == "CREDENTIAL_NOT_FOUND"


async def test_pharmacy_presettles_answer_what_settling_answers_and_write_nothing(settlement, eligibility):
    p = await new_patient(eligibility, insutype="310", psn_type="retired")
    await credit(settlement, p.psn_no, "40.00")
    body = {
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": p.certno,
        "fixmedins_code": "P1",
        "items": [_line("1", "XGWA001", "30.00", "1"), _line("2", "XGWE001", "20.00", "1")],
    }
    pre = await settlement.post("/v1/pharmacy/purchases/presettle", headers=pharmacy_key(), json=body)
    assert pre.status_code == 200, pre.text
    assert pre.json()["setl_id"] is None and pre.json()["acct_pay"] == "30.00"
    rows = await fetch(
        settlement._transport.app, "SELECT setl_id FROM settlement.settlements WHERE psn_no = :p", p=p.psn_no
    )
    assert rows == []
    done = await settlement.post("/v1/pharmacy/purchases", headers=pharmacy_key(), json=body)
    for name in ("medfee_sumamt", "acct_pay", "psn_cash_pay", "fund_pay_sumamt"):
        assert done.json()[name] == pre.json()[name], name
    rx_no = f"RX{uuid.uuid4().hex[:12].upper()}"
    issued = await settlement.post(
        "/v1/prescriptions",
        headers=H1,
        json={
            "rx_no": rx_no,
            "psn_no": p.psn_no,
            "fixmedins_code": "H1",
            "issued_at": now().isoformat(),
            "items": [{"med_list_codg": "XGWA001", "item_class": "A", "cnt": "3", "days_supply": 7}],
        },
    )
    assert issued.status_code == 201, issued.text
    rx = {**body, "rx_no": rx_no, "items": [_line("1", "XGWA001", "30.00", "3")], "acct_used_flag": True}
    pre = await settlement.post("/v1/pharmacy/settlements/presettle", headers=pharmacy_key(), json=rx)
    assert pre.status_code == 200, pre.text
    done = await settlement.post("/v1/pharmacy/settlements", headers=pharmacy_key(), json=rx)
    assert done.status_code == 201, done.text
    for name in ("medfee_sumamt", "hifp_pay", "acct_pay", "psn_cash_pay"):
        assert Decimal(done.json()[name]) == Decimal(pre.json()[name]), name
    used = await settlement.post("/v1/pharmacy/settlements/presettle", headers=pharmacy_key(), json=rx)
    assert used.status_code == 409 and used.json()["code"] == "PRESCRIPTION_USED"
