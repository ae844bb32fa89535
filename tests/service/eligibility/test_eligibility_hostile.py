"""Hostile input at the eligibility service (issue 17): months and dates out of range, text PostgreSQL cannot
store, money that is not a plain decimal string, digits that are not ASCII — a 4xx problem, never a 5xx, and
nothing written."""

from __future__ import annotations

import json

import pytest
from eligibility_support import ADMIN, fresh_certno, fresh_code

NUL = "\x00"
SURROGATE = "\ud800"


@pytest.fixture
def post_refused(eligibility, all_counts):
    """post_refused(path, body): 4xx problem+json (422 unless told), nothing written; the body is sent with \\u
    escapes so that lone surrogates reach the service."""

    async def _post(path: str, body, *, method: str = "POST", status: int = 422) -> dict:
        before = await all_counts()
        response = await eligibility.request(
            method,
            path,
            content=json.dumps(body, ensure_ascii=True).encode(),
            headers={**ADMIN, "Content-Type": "application/json"},
        )
        assert response.status_code == status, f"{path} {body!r}: {response.status_code} {response.text[:300]}"
        assert response.headers["content-type"] == "application/problem+json"
        assert await all_counts() == before, "a refused request wrote something"
        return response.json()

    return _post


@pytest.fixture
async def employer(register) -> str:
    emp_no = fresh_code("E")
    await register(emp_no=emp_no, contribution_base="5000.00")
    return emp_no


@pytest.mark.parametrize("month", ["0000-01", "0001-01", "1899-12", "2100-01", "9999-12", "２０２４-01", "٢٠٢٤-01"])
async def test_months_out_of_range_are_422_on_deferrals_and_arrears(post_refused, employer, month):
    await post_refused(f"/v1/employers/{employer}/deferrals", {"start_month": month, "months": 2})
    await post_refused(f"/v1/employers/{employer}/arrears", {"since_month": month})


async def test_months_in_range_are_taken(eligibility, employer):
    for path, body in (
        (f"/v1/employers/{employer}/deferrals", {"start_month": "2099-12", "months": 1}),
        (f"/v1/employers/{employer}/arrears", {"since_month": "1900-01"}),
    ):
        response = await eligibility.post(path, json=body, headers=ADMIN)
        assert response.status_code == 201, response.text


@pytest.mark.parametrize("bad", [NUL, SURROGATE])
async def test_text_postgresql_cannot_store_is_422_in_every_body(post_refused, register, employer, hospital, bad):
    person = (await register())["psn_no"]
    base = {"certno": fresh_certno(), "psn_name": "张三", "insutype": "310", "insuplc_admdvs": "621000"}
    for field in ("certno", "psn_name", "insutype", "insuplc_admdvs", "psn_type", "card_no", "emp_no", "psn_no"):
        await post_refused("/v1/persons", {**base, field: f"A{bad}"})
    await post_refused("/v1/persons", {**base, f"x{bad}": "1"})
    await post_refused(f"/v1/persons/{person}", {"card_no": f"C{bad}"}, method="PATCH")
    await post_refused(f"/v1/persons/{person}/aid-identities", {"category": f"dibao{bad}", "start_date": "2024-01-01"})
    await post_refused(
        f"/v1/persons/{person}/chronic-qualifications",
        {"disease": f"hypertension{bad}", "two_disease_class": 1, "start_date": "2024-01-01", "certified_by": "H1"},
    )
    await post_refused(
        f"/v1/persons/{person}/offsite-registrations", {"mdtrtarea_admdvs": f"11{bad}", "start_date": "2024-01-01"}
    )
    await post_refused(f"/v1/persons/{person}/family", {"relation": f"spouse{bad}", "member_psn_no": person})
    await post_refused("/v1/employers", {"emp_no": fresh_code("E"), "emp_name": f"厂{bad}"})
    await post_refused(
        "/v1/covid-cases",
        {
            "psn_no": person,
            "status": "suspected",
            "diagnosed_at": "2022-04-01T09:30:00+08:00",
            "fixmedins_code": await hospital(),
            "diagnosis": f"新冠{bad}",
            "published": False,
        },
    )
    await post_refused(
        "/v1/institutions",
        {
            "fixmedins_code": fresh_code("H"),
            "fixmedins_name": f"医院{bad}",
            "kind": "hospital",
            "level": 2,
            "affiliation": "city",
            "admdvs": "621000",
        },
    )


@pytest.mark.parametrize("bad", ["１２.００", "1_000.00", "+5.00", " 5.00", "5e2", "5.001", 5, 5.0, "NaN"])
async def test_money_is_only_a_plain_decimal_string(post_refused, register, bad):
    base = {"certno": fresh_certno(), "psn_name": "张三", "insutype": "310", "insuplc_admdvs": "621000"}
    await post_refused("/v1/persons", {**base, "contribution_base": bad})
    person = (await register(contribution_base="5000.00"))["psn_no"]
    await post_refused(f"/v1/persons/{person}", {"contribution_base": bad}, method="PATCH")


async def test_a_negative_contribution_base_keeps_its_domain_code(post_refused):
    base = {"certno": fresh_certno(), "psn_name": "张三", "insutype": "310", "insuplc_admdvs": "621000"}
    problem = await post_refused("/v1/persons", {**base, "contribution_base": "-1.00"})
    assert problem["code"] == "INVALID_CONTRIBUTION_BASE", problem


@pytest.mark.parametrize("admdvs", ["62١٠٠٠", "６２１０００", "62100０"])
async def test_admdvs_digits_are_ascii(post_refused, admdvs):
    await post_refused(
        "/v1/institutions",
        {
            "fixmedins_code": fresh_code("H"),
            "fixmedins_name": "医院",
            "kind": "hospital",
            "level": 2,
            "affiliation": "city",
            "admdvs": admdvs,
        },
    )
    base = {"certno": fresh_certno(), "psn_name": "张三", "insutype": "310"}
    await post_refused("/v1/persons", {**base, "insuplc_admdvs": admdvs})
