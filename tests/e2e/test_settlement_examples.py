"""Every worked example of tests/fixtures/settlements.json over HTTP against the launched stack, to the fen.

Persons are registered with valid resident IDs through eligibility's API (aid identities, chronic
qualifications), accounts credited through settlement's, then visit → fee lines → (discharge) →
settle; every expected field is compared, and the stored settlement reads back the same.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.testing import ADMIN_KEY, HIS_KEYS

EXAMPLES_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "settlements.json"
DATA = json.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))
CASES = DATA["cases"]
ADMIN = {"X-Api-Key": ADMIN_KEY}
FEE_FIELDS = ("med_list_codg", "med_list_name", "item_class", "pric", "cnt")


@pytest.fixture(scope="module")
async def ready_stack(stack):
    await stack.register_institutions(DATA["institutions"])
    return stack


async def _register(stack, eligibility, settlement, person: dict) -> tuple[str, str]:
    certno = stack.make_certno(region=person["insuplc_admdvs"])
    body = {
        "certno": certno,
        "psn_name": "测试",
        "insutype": person["insutype"],
        "insuplc_admdvs": person["insuplc_admdvs"],
    }
    if person.get("psn_type"):
        body["psn_type"] = person["psn_type"]
    created = await eligibility.post("/v1/persons", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    psn_no = created.json()["psn_no"]
    for aid in person.get("aid", []):
        response = await eligibility.post(f"/v1/persons/{psn_no}/aid-identities", json=aid, headers=ADMIN)
        assert response.status_code == 201, response.text
    for chronic in person.get("chronic", []):
        response = await eligibility.post(
            f"/v1/persons/{psn_no}/chronic-qualifications", json={"certified_by": "H3", **chronic}, headers=ADMIN
        )
        assert response.status_code == 201, response.text
    if person.get("account_balance"):
        response = await settlement.post(
            f"/v1/accounts/{psn_no}/credits",
            headers=ADMIN,
            json={"amount": person["account_balance"], "period": "2024-01"},
        )
        assert response.status_code == 201, response.text
    return psn_no, certno


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
async def test_example_over_http(ready_stack, case):
    async with ready_stack.client("eligibility") as eligibility, ready_stack.client("settlement") as settlement:
        psn_no, certno = await _register(ready_stack, eligibility, settlement, case["person"])
        for number, step in enumerate(case["settlements"]):
            visit, expected = step["visit"], step["expected"]
            code = visit["fixmedins_code"]
            his = {"X-Api-Key": HIS_KEYS[code]}
            body = {
                "psn_no": psn_no,
                "mdtrt_cert_type": "02",
                "mdtrt_cert_no": certno,
                "fixmedins_code": code,
                "med_type": visit["med_type"],
                "begntime": f"{visit['begn_date']}T09:30:00+08:00",
                "diagnoses": visit.get("diagnoses", []),
            }
            for optional in ("chronic_disease", "referral_compliant"):
                if optional in visit:
                    body[optional] = visit[optional]
            created = await settlement.post("/v1/visits", json=body, headers=his)
            assert created.status_code == 201, created.text
            mdtrt_id = created.json()["mdtrt_id"]
            items = [
                {
                    "feedetl_sn": f"{number}-{index}",
                    "fee_ocur_time": f"{visit['begn_date']}T10:00:00+08:00",
                    **{k: item.get(k, item["med_list_codg"]) for k in FEE_FIELDS},
                }
                for index, item in enumerate(visit["items"], start=1)
            ]
            uploaded = await settlement.post(f"/v1/visits/{mdtrt_id}/fees", json={"items": items}, headers=his)
            assert uploaded.status_code == 201, uploaded.text
            if visit.get("end_date"):
                discharged = await settlement.post(
                    f"/v1/visits/{mdtrt_id}/discharge",
                    headers=his,
                    json={"endtime": f"{visit['end_date']}T10:00:00+08:00"},
                )
                assert discharged.status_code == 200, discharged.text
            options = {"acct_used_flag": visit.get("acct_used_flag", False)}
            settled = await settlement.post(f"/v1/visits/{mdtrt_id}/settle", json=options, headers=his)
            assert settled.status_code == 201, settled.text
            answer = settled.json()
            for field, value in expected.items():
                if field == "warnings":
                    assert [w["code"] for w in answer["warnings"]] == value, (field, answer["warnings"])
                else:
                    assert answer[field] == value, (case["name"], number, field, answer[field], value)
            assert answer["psn_no"] == psn_no and answer["mdtrt_id"] == mdtrt_id and answer["setl_id"]
            stored = await settlement.get(f"/v1/settlements/{answer['setl_id']}", headers=his)
            assert stored.status_code == 200, stored.text
            assert {k: stored.json()[k] for k in expected if k != "warnings"} == {
                k: answer[k] for k in expected if k != "warnings"
            }
