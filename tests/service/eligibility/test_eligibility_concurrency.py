"""Concurrent writes for one person or one certno: the row lock and unique keys keep one winner."""

from __future__ import annotations

import asyncio

from eligibility_support import ADMIN, fresh_certno, fresh_code


async def test_concurrent_overlapping_identities_leave_one(eligibility, register, count_rows):
    person = await register(insutype="390")
    path = f"/v1/persons/{person['psn_no']}/aid-identities"
    bodies = [{"category": "dibian", "start_date": f"2024-0{month}-01"} for month in range(1, 7)]
    responses = await asyncio.gather(*(eligibility.post(path, json=body, headers=ADMIN) for body in bodies))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 422, 422, 422, 422, 422], [r.text for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 422} == {"OVERLAPPING_WINDOW"}
    assert await count_rows("aid_identities", "psn_no = :p", p=person["psn_no"]) == 1


async def test_concurrent_registrations_of_one_certno_leave_one(eligibility, count_rows):
    certno = fresh_certno()
    bodies = [
        {"certno": certno, "psn_name": "吴十", "insutype": "390", "insuplc_admdvs": "621000", "psn_no": fresh_code("P")}
        for _ in range(6)
    ]
    responses = await asyncio.gather(*(eligibility.post("/v1/persons", json=b, headers=ADMIN) for b in bodies))
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409, 409], [r.text for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"PERSON_EXISTS"}
    assert await count_rows("persons", "certno = :c", c=certno) == 1


async def test_concurrent_deferrals_of_one_employer_respect_the_six_month_run(eligibility, register):
    emp_no = fresh_code("E")
    await register(emp_no=emp_no)
    path = f"/v1/employers/{emp_no}/deferrals"
    bodies = [{"start_month": "2024-01", "months": 4}, {"start_month": "2024-05", "months": 4}]
    responses = await asyncio.gather(*(eligibility.post(path, json=b, headers=ADMIN) for b in bodies))
    assert sorted(r.status_code for r in responses) == [201, 422]
    assert len((await eligibility.get(f"/v1/employers/{emp_no}", headers=ADMIN)).json()["deferrals"]) == 1
