"""Hostile input at the prepayment service (issue 17): money only as a plain decimal string, months in ASCII
digits, no text PostgreSQL cannot store — a 4xx problem, never a 5xx, and nothing booked."""

from __future__ import annotations

import json

import pytest

from shared.testing import ADMIN_KEY

ADMIN = {"X-Api-Key": ADMIN_KEY}
BAD_MONEY = ["１２.００", "1_000.00", "+5.00", " 5.00", "5.00 ", "5e2", "5.001", "-5.00", "0.00", "٥", 5, 5.0, True]


async def _post(books, path: str, body) -> object:
    return await books.client.post(
        path,
        content=json.dumps(body, ensure_ascii=True).encode(),
        headers={**ADMIN, "Content-Type": "application/json"},
    )


def _refused(response, status: int = 422) -> dict:
    assert response.status_code == status, f"{response.status_code} {response.text[:300]}"
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


@pytest.mark.parametrize("bad", BAD_MONEY)
async def test_money_is_only_a_plain_decimal_string(books, hospital, bad):
    body = {"fixmedins_code": hospital, "kind": "top_up", "amount": bad, "disbursed_on": "2024-01-05"}
    _refused(await _post(books, "/v1/prepayments", body))
    plan = {"fixmedins_code": hospital, "amount": bad, "first_month": "2090-01", "months": 2}
    _refused(await _post(books, "/v1/prepayments/schedule", plan))
    _refused(await books.client.put(f"/v1/budgets/{hospital}", json={"year": 2024, "amount": bad}, headers=ADMIN))
    assert await books.entries(hospital) == []


async def test_plain_money_is_taken(books, hospital):
    response = await books.prepay(hospital, "12.5")
    assert response.status_code == 201 and response.json()["amount"] == "12.50", response.text


@pytest.mark.parametrize("month", ["20٢٤-01", "２０２４-01", "2024-1", "1999-12", "2100-01"])
async def test_plan_months_are_ascii_and_in_range(books, hospital, month):
    plan = {"fixmedins_code": hospital, "amount": "10.00", "first_month": month, "months": 2}
    _refused(await _post(books, "/v1/prepayments/schedule", plan))


@pytest.mark.parametrize("bad", ["\x00", "\ud800"])
async def test_text_postgresql_cannot_store_is_422(books, hospital, bad):
    for body in (
        {"fixmedins_code": f"{hospital}{bad}", "kind": "top_up", "amount": "1.00", "disbursed_on": "2024-01-05"},
        {"fixmedins_code": hospital, "kind": f"top_up{bad}", "amount": "1.00", "disbursed_on": "2024-01-05"},
        {"fixmedins_code": hospital, "kind": "top_up", "amount": "1.00", "disbursed_on": "2024-01-05", bad: 1},
    ):
        _refused(await _post(books, "/v1/prepayments", body))
    _refused(await _post(books, "/v1/clearings", {"period_start": f"2024-01-01{bad}", "period_end": "2024-01-31"}))
    assert await books.entries(hospital) == []


@pytest.mark.parametrize(
    "path",
    [
        "/v1/prepayments?limit=99999999999999999999",
        "/v1/subsidies?payer=city&limit=9223372036854775808",
        "/v1/budgets/T1?year=99999999999999999999",
        "/v1/ledger/entries?setl_id=%00",
        "/v1/prepayments?fixmedins_code=%00",
    ],
)
async def test_query_parameters_out_of_bounds_are_422(books, path):
    _refused(await books.client.get(path, headers=ADMIN))
