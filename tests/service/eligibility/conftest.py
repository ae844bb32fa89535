"""Fixtures for the eligibility service tests: fresh persons, institutions, row counts per test."""

from __future__ import annotations

import pytest
from eligibility_support import ADMIN, fresh_certno, fresh_code

from shared.testing import fetch, fetchval


@pytest.fixture
def admin() -> dict[str, str]:
    return ADMIN


@pytest.fixture
def register(eligibility):
    """POST /v1/persons with sensible defaults; returns the 201 body."""

    async def _register(**overrides) -> dict:
        body = {
            "certno": fresh_certno(),
            "psn_name": "张三",
            "insutype": "310",
            "insuplc_admdvs": "621000",
            **overrides,
        }
        response = await eligibility.post("/v1/persons", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        return response.json()

    return _register


@pytest.fixture
def hospital(eligibility):
    """Register a hospital (or pharmacy) and return its code."""

    async def _hospital(*, kind: str = "hospital", admdvs: str = "621000") -> str:
        code = fresh_code("H")
        body = {
            "fixmedins_code": code,
            "fixmedins_name": "测试医院",
            "kind": kind,
            "level": 2 if kind == "hospital" else None,
            "affiliation": "city",
            "admdvs": admdvs,
        }
        response = await eligibility.post("/v1/institutions", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        return code

    return _hospital


@pytest.fixture
def eligibility_app(eligibility):
    """The in-process eligibility app, to read its tables behind the API's back."""
    return eligibility._transport.app


@pytest.fixture
def count_rows(eligibility_app):
    """count_rows(table, where, **params) → rows in eligibility.<table> matching."""

    async def _count(table: str, where: str = "true", **params) -> int:
        return await fetchval(eligibility_app, f"select count(*) from {table} where {where}", **params)

    return _count


TABLES = (
    "persons",
    "psn_types",
    "aid_identities",
    "chronic_qualifications",
    "offsite_registrations",
    "family",
    "employers",
    "deferrals",
    "arrears",
    "covid_cases",
    "institutions",
    "outbox",
)


@pytest.fixture
def all_counts(eligibility_app):
    """Row counts of every eligibility table: equal before and after a refused request = nothing written."""

    async def _counts() -> dict[str, int]:
        union = " union all ".join(f"select '{t}', count(*) from {t}" for t in TABLES)
        return {table: count for table, count in await fetch(eligibility_app, union)}

    return _counts


@pytest.fixture
def refused(eligibility, all_counts):
    """refused(method, path, body, status, code): the request fails with that code and writes nothing."""

    async def _refused(method: str, path: str, body=None, *, status: int = 422, code: str) -> dict:
        before = await all_counts()
        response = await eligibility.request(method, path, json=body, headers=ADMIN)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == code, problem
        assert await all_counts() == before, "a refused request wrote something"
        return problem

    return _refused


@pytest.fixture
def snap(eligibility):
    """GET the snapshot of a person on a date."""

    async def _snap(psn_no: str, on: str, **params) -> dict:
        response = await eligibility.get(f"/v1/persons/{psn_no}/snapshot", params={"on": on, **params}, headers=ADMIN)
        assert response.status_code == 200, response.text
        return response.json()

    return _snap
