"""The COVID-19 case registry: status changes, the published ledger, the event."""

from __future__ import annotations

import pytest
from eligibility_support import ADMIN

from shared.testing import OPS_KEY, fetch


@pytest.fixture
def case_body(register, hospital):
    async def _body(**overrides) -> dict:
        person = await register(insutype="390")
        return {
            "psn_no": person["psn_no"],
            "status": "suspected",
            "diagnosed_at": "2022-04-01T09:30:00+08:00",
            "fixmedins_code": await hospital(),
            "diagnosis": "U07.2 疑似新冠肺炎",
            "published": False,
            **overrides,
        }

    return _body


async def test_suspected_then_confirmed_then_never_excluded(eligibility, case_body, snap, refused, count_rows):
    body = await case_body()
    created = await eligibility.post("/v1/covid-cases", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    case = created.json()
    assert case["status"] == "suspected" and case["case_id"]
    confirmed = await eligibility.patch(
        f"/v1/covid-cases/{case['case_id']}", json={"status": "confirmed"}, headers=ADMIN
    )
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    await refused(
        "PATCH", f"/v1/covid-cases/{case['case_id']}", {"status": "excluded"}, status=409, code="CASE_ALREADY_CONFIRMED"
    )
    cases = (await snap(body["psn_no"], "2022-04-02"))["covid_cases"]
    assert [(c["case_id"], c["status"]) for c in cases] == [(case["case_id"], "confirmed")]
    assert cases[0]["diagnosed_at"].startswith("2022-04-01T09:30:00")
    events = await count_rows("outbox", "type = 'covid-case-registered' and key = :k", k=body["psn_no"])
    assert events == 2


async def test_suspected_may_be_excluded_and_then_stays_excluded(eligibility, case_body, refused):
    case = (await eligibility.post("/v1/covid-cases", json=await case_body(), headers=ADMIN)).json()
    path = f"/v1/covid-cases/{case['case_id']}"
    assert (await eligibility.patch(path, json={"status": "excluded"}, headers=ADMIN)).json()["status"] == "excluded"
    await refused("PATCH", path, {"status": "confirmed"}, status=409, code="CASE_ALREADY_EXCLUDED")


@pytest.mark.parametrize(
    "change, code",
    [
        ({"status": "cured"}, "UNKNOWN_CASE_STATUS"),
        ({"psn_no": "NOBODY"}, "UNKNOWN_PERSON"),
        ({"fixmedins_code": "NOSUCH"}, "UNKNOWN_INSTITUTION"),
        ({"diagnosed_at": "2199-01-01T00:00:00+08:00"}, "DIAGNOSED_IN_FUTURE"),
        ({"diagnosed_at": "yesterday"}, "VALIDATION_FAILED"),
        ({"published": "yes"}, "VALIDATION_FAILED"),
    ],
)
async def test_bad_cases_write_nothing(case_body, refused, change, code):
    await refused("POST", "/v1/covid-cases", await case_body(**change), code=code)


async def test_only_published_cases_until_a_day_are_listed(eligibility, case_body, refused):
    marker = "U07.1 ledger-test"
    made = []
    for when, published in (
        ("2022-03-30T23:59:00+08:00", True),
        ("2022-03-31T10:00:00+08:00", False),
        ("2022-04-01T00:00:00+08:00", True),
    ):
        body = await case_body(diagnosed_at=when, published=published, diagnosis=marker, status="confirmed")
        made.append((await eligibility.post("/v1/covid-cases", json=body, headers=ADMIN)).json())
    listed = await eligibility.get(
        "/v1/covid-cases", params={"published": "true", "until": "2022-03-31"}, headers=ADMIN
    )
    ours = [c["case_id"] for c in listed.json()["items"] if c["diagnosis"] == marker]
    assert ours == [made[0]["case_id"]]
    publish = await eligibility.patch(f"/v1/covid-cases/{made[1]['case_id']}", json={"published": True}, headers=ADMIN)
    assert publish.status_code == 200 and publish.json()["published"] is True
    listed = await eligibility.get(
        "/v1/covid-cases", params={"published": "true", "until": "2022-03-31"}, headers={"X-Api-Key": OPS_KEY}
    )
    items = [c for c in listed.json()["items"] if c["diagnosis"] == marker]
    assert [c["case_id"] for c in items] == [made[0]["case_id"], made[1]["case_id"]]
    assert all("*" in c["certno"] and "*" in c["psn_name"] for c in items)  # masked for ops
    await refused(
        "PATCH",
        f"/v1/covid-cases/{made[1]['case_id']}",
        {"published": False},
        status=409,
        code="CASE_ALREADY_PUBLISHED",
    )
    await refused("PATCH", "/v1/covid-cases/no-such-case", {"status": "confirmed"}, status=404, code="CASE_NOT_FOUND")
    await refused("PATCH", f"/v1/covid-cases/{made[1]['case_id']}", {}, code="VALIDATION_FAILED")


async def test_case_event_carries_the_ledger_fields(eligibility, case_body, eligibility_app):
    body = await case_body(published=True)
    case = (await eligibility.post("/v1/covid-cases", json=body, headers=ADMIN)).json()
    [(payload,)] = await fetch(
        eligibility_app,
        "select envelope->'payload' from outbox where type = "
        "'covid-case-registered' and envelope->'payload'->>'case_id' = :c",
        c=case["case_id"],
    )
    assert set(payload) >= {
        "case_id",
        "psn_no",
        "status",
        "diagnosed_at",
        "fixmedins_code",
        "diagnosis",
        "published",
        "psn_name",
        "gend",
        "brdy",
        "certno",
        "insutype",
        "insuplc_admdvs",
    }
    assert payload["published"] is True and len(payload["certno"]) == 18
