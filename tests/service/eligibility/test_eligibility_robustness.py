"""No body makes eligibility answer 500 or write anything it refused."""

from __future__ import annotations

import pytest
from eligibility_support import ADMIN, fresh_certno
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

GARBAGE = [
    {},
    [],
    "x",
    1,
    None,
    True,
    {"a": "\u0000"},
    {"certno": None},
    {"category": ["dibao"]},
    {"start_date": "0000-00-00"},
    {"lost_on": 10**30},
    {"months": 10**30, "start_month": "2024-01"},
    {"status": {"$ne": 1}},
    {"relation": "spouse", "member_psn_no": "x" * 500},
]

WRITES = [
    "/v1/persons",
    "/v1/persons/{p}/retire",
    "/v1/persons/{p}/aid-identities",
    "/v1/persons/{p}/family",
    "/v1/persons/{p}/chronic-qualifications",
    "/v1/persons/{p}/offsite-registrations",
    "/v1/employers",
    "/v1/employers/E{p}/deferrals",
    "/v1/employers/E{p}/arrears",
    "/v1/covid-cases",
]
PATCHES = [
    "/v1/persons/{p}",
    "/v1/persons/{p}/aid-identities/1",
    "/v1/persons/{p}/chronic-qualifications/1",
    "/v1/persons/{p}/offsite-registrations/1",
    "/v1/covid-cases/x",
]


@pytest.fixture
async def someone(register):
    return (await register())["psn_no"]


@pytest.mark.parametrize("path", WRITES + PATCHES)
async def test_garbage_bodies_are_4xx_and_write_nothing(eligibility, all_counts, someone, path):
    method = "PATCH" if path in PATCHES else "POST"
    before = await all_counts()
    for body in GARBAGE:
        response = await eligibility.request(method, path.format(p=someone), json=body, headers=ADMIN)
        assert 400 <= response.status_code < 500, (path, body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert await all_counts() == before


JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=2),
    st.sampled_from(["310", "390", "621000", "2024-01-31", "in_service", "X" * 40, "\u0000"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "certno",
                "psn_name",
                "insutype",
                "psn_type",
                "insuplc_admdvs",
                "emp_no",
                "contribution_base",
                "card_no",
                "psn_no",
            ]
        ),
        JSON_VALUES,
        max_size=9,
    )
)
async def test_random_registrations_never_fail_with_500(eligibility, fields):
    body = {"certno": fresh_certno(), "psn_name": "周九", "insutype": "390", "insuplc_admdvs": "621000", **fields}
    response = await eligibility.post("/v1/persons", json=body, headers=ADMIN)
    assert response.status_code in (201, 409, 422), response.text


@pytest.mark.parametrize(
    "params",
    [
        {"on": "2024-01-01", "mdtrt_cert_type": "02", "mdtrt_cert_no": "\u0000"},
        {"on": "2024-01-01", "mdtrt_cert_type": "0" * 5, "mdtrt_cert_no": "1"},
        {"on": "2024-01-01", "mdtrt_cert_no": "1" * 500, "mdtrt_cert_type": "02"},
        {"on": "-1"},
    ],
)
async def test_bad_snapshot_queries_are_422(eligibility, someone, params):
    response = await eligibility.get(f"/v1/persons/{someone}/snapshot", params=params, headers=ADMIN)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("cert_no", ["abc+/=", "不是证件", "x" * 128])
async def test_odd_credentials_are_no_match_rather_than_errors(eligibility, someone, cert_no):
    response = await eligibility.get(
        f"/v1/persons/{someone}/snapshot",
        headers=ADMIN,
        params={"on": "2024-01-01", "mdtrt_cert_type": "01", "mdtrt_cert_no": cert_no},
    )
    assert response.status_code == 200 and response.json()["credential_matches"] is False
    verify = await eligibility.get(
        "/v1/verify", headers=ADMIN, params={"mdtrt_cert_type": "03", "mdtrt_cert_no": cert_no}
    )
    assert verify.status_code == 404 and verify.json()["code"] == "CREDENTIAL_NOT_FOUND"
