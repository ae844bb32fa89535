"""Dual channel: prescriptions issued by a hospital, settled once at a pharmacy as med_type 41."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from settlement_support import as_decided, his, item, open_visit, pharmacy, settle

SH = ZoneInfo("Asia/Shanghai")


def rx_body(person, *, code: str = "H1", days_ago: int = 0, items: list[dict] | None = None, **extra) -> dict:
    issued = datetime.now(SH) - timedelta(days=days_ago)
    return {
        "rx_no": "RX" + uuid.uuid4().hex[:12].upper(),
        "psn_no": person.psn_no,
        "fixmedins_code": code,
        "issued_at": issued.isoformat(),
        **extra,
        "items": items
        or [{"med_list_codg": "TA-DRUG", "med_list_name": "药", "item_class": "A", "cnt": "2", "days_supply": 14}],
    }


async def _issue(api, body: dict, code: str = "H1"):
    response = await api.post("/v1/prescriptions", json=body, headers=his(code))
    assert response.status_code == 201, response.text
    return response.json()


def pharmacy_body(person, rx_no: str, *, code: str = "P1", items: list[dict] | None = None, **extra) -> dict:
    return {
        "rx_no": rx_no,
        "mdtrt_cert_type": "02",
        "mdtrt_cert_no": person.certno,
        "fixmedins_code": code,
        "items": items or [item("TA-DRUG", "200.00", "2", None)],
        **extra,
    }


async def _dispense(api, body: dict, code: str = "P1"):
    return await api.post("/v1/pharmacy/settlements", json=body, headers=pharmacy(code))


async def test_prescription_issue_and_lookup(api, fake):
    person = fake.add()
    body = rx_body(person)
    issued = await _issue(api, body)
    assert issued["status"] == "valid" and issued["valid_days"] == 3
    assert (await api.post("/v1/prescriptions", json=body, headers=his())).status_code == 200
    other = await api.post("/v1/prescriptions", json={**body, "valid_days": 2}, headers=his())
    assert other.status_code == 409 and other.json()["code"] == "PRESCRIPTION_EXISTS"
    assert (await api.get(f"/v1/prescriptions/{body['rx_no']}", headers=pharmacy("P2"))).status_code == 200
    assert (await api.get(f"/v1/prescriptions/{body['rx_no']}", headers=his("H2"))).status_code == 403
    foreign = await api.post("/v1/prescriptions", json=rx_body(person, code="H2"), headers=his("H1"))
    assert foreign.status_code == 403
    by_pharmacy = await api.post("/v1/prescriptions", json=rx_body(person), headers=pharmacy())
    assert by_pharmacy.status_code == 403


async def test_long_prescriptions(api, fake):
    ordinary = fake.add()
    too_long = rx_body(ordinary, items=[{"med_list_codg": "TA-DRUG", "cnt": "1", "days_supply": 31}])
    refused = await api.post("/v1/prescriptions", json=too_long, headers=his())
    assert refused.status_code == 422 and refused.json()["code"] == "SUPPLY_DAYS_ABOVE_LIMIT"
    chronic = fake.add(insutype="390", chronic=[{"disease": "hypertension", "start_date": "2020-01-01"}])
    await _issue(api, rx_body(chronic, items=[{"med_list_codg": "TA-DRUG", "cnt": "1", "days_supply": 84}]))
    beyond = await api.post(
        "/v1/prescriptions",
        headers=his(),
        json=rx_body(chronic, items=[{"med_list_codg": "TA-DRUG", "cnt": "1", "days_supply": 85}]),
    )
    assert beyond.status_code == 422 and beyond.json()["code"] == "SUPPLY_DAYS_ABOVE_LIMIT"


async def test_pharmacy_settles_under_outpatient_rules_sharing_the_deductible(api, fake, db):
    person = fake.add(insutype="310", psn_type="in_service")  # H1 level 3: deductible 300, 50 %
    today = datetime.now(SH).date().isoformat()
    mdtrt_id = await open_visit(api, person, day=today, items=[item("TA1", "350.00")])
    assert (await settle(api, mdtrt_id)).json()["act_pay_dedc"] == "300.00"
    rx = await _issue(api, rx_body(person))
    done = await _dispense(api, pharmacy_body(person, rx["rx_no"]))
    assert done.status_code == 201, done.text
    body = done.json()
    assert body["med_type"] == "41" and body["medfee_sumamt"] == "400.00"
    assert body["act_pay_dedc"] == "0.00" and body["hifp_pay"] == "200.00" and body["pool_prop"] == "0.50"
    assert body["rx_no"] == rx["rx_no"] and body["fixmedins_code"] == "P1"
    used = await _dispense(api, pharmacy_body(person, rx["rx_no"]))
    assert used.status_code == 409 and used.json()["code"] == "PRESCRIPTION_USED"
    assert (await api.get(f"/v1/prescriptions/{rx['rx_no']}", headers=pharmacy())).json()["status"] == "used"
    reversed_ = await api.post(f"/v1/settlements/{body['setl_id']}/reverse", headers=pharmacy())
    assert reversed_.status_code == 200
    assert (await _dispense(api, pharmacy_body(person, rx["rx_no"]))).status_code == 201


async def test_chronic_prescription_uses_the_chronic_pool(api, fake):
    person = fake.add(insutype="390", chronic=[{"disease": "diabetes", "start_date": "2020-01-01"}])
    rx = await _issue(
        api,
        rx_body(
            person,
            code="H3",
            chronic_disease="diabetes",
            items=[{"med_list_codg": "TA-MET", "cnt": "1", "days_supply": 60}],
        ),
        code="H3",
    )
    done = (await _dispense(api, pharmacy_body(person, rx["rx_no"], items=[item("TA-MET", "100.00", "1", "A")]))).json()
    assert done["pool"] == "chronic" and done["act_pay_dedc"] == "0.00" and done["hifp_pay"] == "50.00"


REFUSALS = [
    ("other_person", 422, "PRESCRIPTION_OTHER_PERSON"),
    ("unknown_credential", 422, "CREDENTIAL_MISMATCH"),
    ("expired", 422, "PRESCRIPTION_EXPIRED"),
    ("not_prescribed", 422, "PRESCRIPTION_ITEM_NOT_PRESCRIBED"),
    ("too_much", 422, "PRESCRIPTION_QUANTITY_EXCEEDED"),
    ("too_long", 422, "SUPPLY_DAYS_ABOVE_LIMIT"),
    ("unknown_rx", 404, "PRESCRIPTION_NOT_FOUND"),
    ("hospital_as_pharmacy", 422, "INSTITUTION_NOT_DESIGNATED"),
]


async def _refused(api, fake, case: str) -> tuple:
    """(person, rx, body, headers) of a dispensing the settlement refuses for `case`."""
    person, other = fake.add(), fake.add()
    rx = await _issue(api, rx_body(person, days_ago=5 if case == "expired" else 0))
    body = pharmacy_body(person, rx["rx_no"])
    if case == "other_person":
        body["mdtrt_cert_no"] = other.certno
    elif case == "unknown_credential":
        body["mdtrt_cert_no"] = "C-NOBODY"
    elif case == "not_prescribed":
        body["items"] = [item("TA-OTHER", "10.00")]
    elif case == "too_much":
        body["items"] = [item("TA-DRUG", "200.00", "1", None), item("TA-DRUG", "200.00", "2", None)]
    elif case == "too_long":
        body["items"] = [item("TA-DRUG", "200.00", "1", None, days_supply=31)]
    elif case == "unknown_rx":
        body["rx_no"] = "RX-NONE"
    headers = pharmacy()
    if case == "hospital_as_pharmacy":
        body["fixmedins_code"] = "H1"
        headers = {"X-Api-Key": "test-admin-key-0000000000"}
    return person, rx, body, headers


@pytest.mark.parametrize("case, status, code", REFUSALS)
async def test_pharmacy_refusals_write_nothing(api, fake, db, case, status, code):
    person, rx, body, headers = await _refused(api, fake, case)
    response = await api.post("/v1/pharmacy/settlements", json=body, headers=headers)
    assert response.status_code == status and response.json()["code"] == code, response.text
    assert await db.written(person.psn_no) == (0, 0, {}, 0)
    assert (await api.get(f"/v1/prescriptions/{rx['rx_no']}", headers=pharmacy())).json()["used_setl_id"] is None


@pytest.mark.parametrize("case", [case for case, _, _ in REFUSALS if case != "too_long"])
async def test_presettle_refuses_as_the_settlement_does(api, fake, db, case):
    """The same status, code and errors from POST …/settlements/presettle as from POST …/settlements (a violation of
    smart monitoring such as too_long is a warning of the presettle, as POST /v1/visits/{mdtrt_id}/presettle says)."""
    person, _, body, headers = await _refused(api, fake, case)
    said = lambda r: (r.status_code, r.json()["code"], r.json()["errors"])  # noqa: E731
    pre = await api.post("/v1/pharmacy/settlements/presettle", json=body, headers=headers)
    assert said(pre) == said(await api.post("/v1/pharmacy/settlements", json=body, headers=headers))
    assert await db.written(person.psn_no) == (0, 0, {}, 0)


async def test_presettle_answers_what_the_settlement_then_makes_and_writes_nothing(api, fake, db):
    person = fake.add()
    rx = await _issue(api, rx_body(person))
    body = pharmacy_body(person, rx["rx_no"], acct_used_flag=True)
    pre = await api.post("/v1/pharmacy/settlements/presettle", json=body, headers=pharmacy())
    assert pre.status_code == 200, pre.text
    assert (pre.json()["setl_id"], pre.json()["status"], pre.json()["rx_no"]) == (None, "presettled", rx["rx_no"])
    assert await db.written(person.psn_no) == (0, 0, {}, 0)
    done = await _dispense(api, body)
    assert done.status_code == 201, done.text
    assert as_decided(pre.json()) == as_decided(done.json())


async def test_pharmacy_keys(api, fake):
    person = fake.add()
    rx = await _issue(api, rx_body(person))
    as_his = await api.post("/v1/pharmacy/settlements", json=pharmacy_body(person, rx["rx_no"]), headers=his())
    assert as_his.status_code == 403
    other_pharmacy = await api.post(
        "/v1/pharmacy/settlements", json=pharmacy_body(person, rx["rx_no"], code="P2"), headers=pharmacy("P1")
    )
    assert other_pharmacy.status_code == 403
