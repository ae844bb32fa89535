"""Employers: deferrals keep benefits, arrears beyond three uncovered months suspend them."""

from __future__ import annotations

import pytest
from eligibility_support import ADMIN, fresh_code


async def _employee(register) -> tuple[str, dict]:
    emp_no = fresh_code("E")
    return emp_no, await register(emp_no=emp_no, contribution_base="5000.00")


async def test_arrears_beyond_three_months_suspend_until_settled(eligibility, register, snap):
    emp_no, person = await _employee(register)
    colleague = await register(emp_no=emp_no)
    resident = await register(insutype="390")
    response = await eligibility.post(f"/v1/employers/{emp_no}/arrears", json={"since_month": "2024-01"}, headers=ADMIN)
    assert response.status_code == 201, response.text
    arrears_id = response.json()["id"]
    before = await snap(person["psn_no"], "2023-12-31")
    assert (before["active"], before["arrears_months"]) == (True, 0)
    third = await snap(person["psn_no"], "2024-03-31")
    assert (third["active"], third["inactive_reason"], third["arrears_months"]) == (True, None, 3)
    fourth = await snap(person["psn_no"], "2024-04-01")
    assert (fourth["active"], fourth["inactive_reason"], fourth["arrears_months"]) == (False, "EMPLOYER_ARREARS", 4)
    assert (await snap(colleague["psn_no"], "2024-04-01"))["active"] is False
    assert (await snap(resident["psn_no"], "2024-04-01"))["active"] is True
    settled = await eligibility.post(
        f"/v1/employers/{emp_no}/arrears/{arrears_id}/settle", json={"settled_on": "2024-05-20"}, headers=ADMIN
    )
    assert settled.status_code == 200, settled.text
    assert (await snap(person["psn_no"], "2024-05-19"))["active"] is False  # history stays as it was
    assert (await snap(person["psn_no"], "2024-05-20"))["active"] is True


async def test_a_deferral_covers_arrears_months(eligibility, register, snap):
    emp_no, person = await _employee(register)
    deferral = await eligibility.post(
        f"/v1/employers/{emp_no}/deferrals", json={"start_month": "2024-01", "months": 6}, headers=ADMIN
    )
    assert deferral.status_code == 201 and deferral.json()["end_month"] == "2024-06"
    await eligibility.post(f"/v1/employers/{emp_no}/arrears", json={"since_month": "2024-01"}, headers=ADMIN)
    for on, active, months in (
        ("2024-06-30", True, 0),
        ("2024-07-01", True, 1),
        ("2024-09-30", True, 3),
        ("2024-10-01", False, 4),
    ):
        body = await snap(person["psn_no"], on)
        assert (body["active"], body["arrears_months"]) == (active, months), on


@pytest.mark.parametrize(
    "body, code",
    [
        ({"start_month": "2024-01", "months": 7}, "DEFERRAL_TOO_LONG"),
        ({"start_month": "2024-01", "months": 0}, "INVALID_DEFERRAL_MONTHS"),
        ({"start_month": "2024-13", "months": 3}, "VALIDATION_FAILED"),
        ({"start_month": "2024-01-01", "months": 3}, "VALIDATION_FAILED"),
        ({"start_month": "2024-01", "months": "3"}, "VALIDATION_FAILED"),
    ],
)
async def test_bad_deferrals_write_nothing(register, refused, eligibility, body, code):
    emp_no, _ = await _employee(register)
    await refused("POST", f"/v1/employers/{emp_no}/deferrals", body, code=code)
    assert (await eligibility.get(f"/v1/employers/{emp_no}", headers=ADMIN)).json()["deferrals"] == []


async def test_adjacent_deferrals_may_not_exceed_six_months(eligibility, register, refused):
    emp_no, _ = await _employee(register)
    path = f"/v1/employers/{emp_no}/deferrals"
    first = await eligibility.post(path, json={"start_month": "2024-03", "months": 4}, headers=ADMIN)
    assert first.status_code == 201
    await refused("POST", path, {"start_month": "2024-07", "months": 3}, code="DEFERRAL_TOO_LONG")
    await refused("POST", path, {"start_month": "2024-06", "months": 1}, code="OVERLAPPING_WINDOW")
    fits = await eligibility.post(path, json={"start_month": "2024-07", "months": 2}, headers=ADMIN)
    assert fits.status_code == 201


async def test_arrears_rules(eligibility, register, refused):
    emp_no, _ = await _employee(register)
    path = f"/v1/employers/{emp_no}/arrears"
    first = (await eligibility.post(path, json={"since_month": "2024-01"}, headers=ADMIN)).json()
    await refused("POST", path, {"since_month": "2024-06"}, status=409, code="ARREARS_OPEN")
    await refused("POST", f"{path}/{first['id']}/settle", {"settled_on": "2023-12-31"}, code="END_BEFORE_START")
    await refused(
        "POST", f"{path}/999999999/settle", {"settled_on": "2024-12-31"}, status=404, code="ARREARS_NOT_FOUND"
    )
    assert (
        await eligibility.post(f"{path}/{first['id']}/settle", json={"settled_on": "2024-03-10"}, headers=ADMIN)
    ).status_code == 200
    await refused(
        "POST", f"{path}/{first['id']}/settle", {"settled_on": "2024-04-10"}, status=409, code="ARREARS_SETTLED"
    )
    await refused("POST", path, {"since_month": "2024-02"}, code="OVERLAPPING_WINDOW")
    assert (await eligibility.post(path, json={"since_month": "2024-04"}, headers=ADMIN)).status_code == 201


async def test_employer_registration(eligibility, refused):
    emp_no = fresh_code("E")
    body = {"emp_no": emp_no, "emp_name": "甲公司", "admdvs": "621000"}
    assert (await eligibility.post("/v1/employers", json=body, headers=ADMIN)).status_code == 201
    assert (await eligibility.post("/v1/employers", json=body, headers=ADMIN)).status_code == 200
    await refused("POST", "/v1/employers", {**body, "emp_name": "乙公司"}, status=409, code="EMPLOYER_EXISTS")
    await refused("POST", "/v1/employers", {"emp_no": fresh_code("E"), "admdvs": "000000"}, code="INVALID_ADMDVS")
    missing = await eligibility.get("/v1/employers/NOSUCH", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["code"] == "EMPLOYER_NOT_FOUND"


async def test_employer_changes_announce_every_employee(eligibility, register, count_rows):
    emp_no, person = await _employee(register)
    colleague = await register(emp_no=emp_no)
    await eligibility.post(
        f"/v1/employers/{emp_no}/deferrals", json={"start_month": "2024-01", "months": 2}, headers=ADMIN
    )
    for psn_no in (person["psn_no"], colleague["psn_no"]):
        assert await count_rows("outbox", "key = :k and envelope->'payload'->>'change' = 'employer'", k=psn_no) == 1
