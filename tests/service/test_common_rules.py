"""Common rules of the contract, for every service: probes, auth, problem+json."""

from __future__ import annotations

import pytest

from shared.testing import ADMIN_KEY, HIS_KEYS, OPS_KEY

SERVICES = ["eligibility", "settlement", "prepayment", "reporting"]


@pytest.fixture
def client(request):
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize("client", SERVICES, indirect=True)
async def test_probes_answer(client):
    assert (await client.get("/healthz")).json()["status"] == "ok"
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "yibao_http_request_seconds" in metrics.text
    assert (await client.get("/docs")).status_code == 200


VALID_INSTITUTION = {
    "fixmedins_code": "AUTH1",
    "fixmedins_name": "测试医院",
    "kind": "hospital",
    "level": 2,
    "affiliation": "city",
    "admdvs": "621000",
}


async def test_no_key_is_401_problem(eligibility):
    response = await eligibility.post("/v1/institutions", json=VALID_INSTITUTION)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "UNAUTHENTICATED" and body["status"] == 401
    assert set(body) >= {"type", "title", "status", "detail", "code", "errors"}


async def test_unknown_key_is_401(eligibility):
    response = await eligibility.post(
        "/v1/institutions", json=VALID_INSTITUTION, headers={"X-Api-Key": "not-a-key-at-all-000000"}
    )
    assert response.status_code == 401 and response.json()["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("key", [OPS_KEY, HIS_KEYS["H1"]])
async def test_key_without_the_right_is_403(eligibility, key):
    response = await eligibility.post("/v1/institutions", json=VALID_INSTITUTION, headers={"X-Api-Key": key})
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "FORBIDDEN"


async def test_malformed_json_is_400(eligibility):
    response = await eligibility.post(
        "/v1/institutions",
        content=b'{"fixmedins_code": ',
        headers={"X-Api-Key": ADMIN_KEY, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "MALFORMED_JSON"


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        "x",
        1,
        None,
        {**VALID_INSTITUTION, "level": 7},
        {**VALID_INSTITUTION, "admdvs": "991000"},
        {**VALID_INSTITUTION, "kind": "pharmacy"},
        {**VALID_INSTITUTION, "extra": 1},
        {**VALID_INSTITUTION, "fixmedins_code": "a" * 40},
    ],
)
async def test_bad_bodies_are_422_and_write_nothing(eligibility, body):
    response = await eligibility.post("/v1/institutions", json=body, headers={"X-Api-Key": ADMIN_KEY})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "VALIDATION_FAILED"
    missing = await eligibility.get("/v1/institutions/AUTH1", headers={"X-Api-Key": ADMIN_KEY})
    assert missing.status_code == 404 and missing.json()["code"] == "INSTITUTION_NOT_FOUND"


async def test_unknown_route_is_404_problem(reporting):
    response = await reporting.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_oversized_body_is_413(eligibility):
    response = await eligibility.post(
        "/v1/institutions",
        content=b"x" * 3_000_000,
        headers={"X-Api-Key": ADMIN_KEY, "Content-Type": "application/json"},
    )
    assert response.status_code == 413 and response.json()["code"] == "BODY_TOO_LARGE"
