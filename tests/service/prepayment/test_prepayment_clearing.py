"""Positions, clearing (idempotent per period, carried balance) and global budgets against real PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from prepayment_http import ADMIN, OPS, refused
from prepayment_support import reversal_payload, settled_payload


async def _clear(books, code: str, start: str, end: str, headers: dict | None = None):
    return await books.client.post(
        "/v1/clearings",
        headers=headers or ADMIN,
        json={"period_start": start, "period_end": end, "fixmedins_code": code},
    )


async def _settle(books, code: str, *, hifp: str, day: str, covid_status: str | None = None, **amounts) -> dict:
    payload = settled_payload(
        f"S-{uuid.uuid4().hex}", code, hifp=hifp, setl_date=day, covid_status=covid_status, **amounts
    )
    await books.deliver("settled", payload)
    return payload


async def test_position_offsets_prepayments_against_what_the_funds_owe(books, hospital):
    await books.prepay(hospital, "1000000.00", kind="covid_special", on="2024-01-05")
    await books.prepay(hospital, "200000.00", kind="annual_turnover", on="2024-01-06")
    await _settle(books, hospital, hifp="250000.00", hifmi="30000.00", maf="15000.00", tilt="5000.00", day="2024-01-20")
    await books.deliver(
        "subsidy-due",
        {
            "setl_id": f"S-{uuid.uuid4().hex}",
            "fixmedins_code": hospital,
            "case_status": "confirmed",
            "amount": "100.00",
            "advance_payer": "city",
            "shares": [{"payer": "central", "amount": "60.00"}, {"payer": "provincial", "amount": "40.00"}],
            "psn_no": "P1",
            "setl_date": "2024-01-20",
            "reversal": False,
        },
    )
    assert await books.position(hospital) == {
        "fixmedins_code": hospital,
        "prepaid": "1200000.00",
        "fund_payable": "300000.00",
        "acct_payable": "0.00",
        "subsidy_receivable": "100.00",
        "net": "-899900.00",
    }


async def test_clearing_is_idempotent_per_period_and_carries_the_balance(books, hospital):
    await books.prepay(hospital, "1000000.00", kind="covid_special", on="2024-01-05")
    await _settle(books, hospital, hifp="300000.00", day="2024-01-20")
    await _settle(books, hospital, hifp="999.00", day="2024-02-03")  # next period: not in January's clearing

    january = await _clear(books, hospital, "2024-01-01", "2024-01-31")
    assert january.status_code == 201, january.text
    jan = january.json()["clearings"][0]
    assert {k: jan[k] for k in ("carried_in", "prepaid", "fund_payable", "net_due", "paid", "carried_out")} == {
        "carried_in": "0.00",
        "prepaid": "1000000.00",
        "fund_payable": "300000.00",
        "net_due": "-700000.00",
        "paid": "0.00",
        "carried_out": "-700000.00",
    }
    entries = await books.entries(hospital)
    balances = await books.trial(hospital)

    again = await _clear(books, hospital, "2024-01-01", "2024-01-31")
    assert again.status_code == 200 and again.json() == january.json()
    assert await books.entries(hospital) == entries and await books.trial(hospital) == balances
    assert await books.position(hospital) == {
        "fixmedins_code": hospital,
        "prepaid": "700000.00",
        "fund_payable": "999.00",
        "acct_payable": "0.00",
        "subsidy_receivable": "0.00",
        "net": "-699001.00",
    }
    refused(await _clear(books, hospital, "2024-01-15", "2024-02-15"), 409, "CLEARING_PERIOD_OVERLAP")

    # February: the funds owe more than the carried prepayment; the difference is paid
    await _settle(books, hospital, hifp="899001.00", day="2024-02-20")
    late = await _settle(books, hospital, hifp="1000.00", day="2024-01-25")  # a January settlement arriving late
    february = (await _clear(books, hospital, "2024-02-01", "2024-02-29")).json()["clearings"][0]
    assert {k: february[k] for k in ("carried_in", "prepaid", "fund_payable", "net_due", "paid", "carried_out")} == {
        "carried_in": "-700000.00",
        "prepaid": "0.00",
        "fund_payable": "901000.00",
        "net_due": "201000.00",
        "paid": "201000.00",
        "carried_out": "0.00",
    }
    assert await books.position(hospital) == {
        "fixmedins_code": hospital,
        "prepaid": "0.00",
        "fund_payable": "0.00",
        "acct_payable": "0.00",
        "subsidy_receivable": "0.00",
        "net": "0.00",
    }
    # March: the late settlement is reversed; the institution now owes it back, carried forward
    await books.deliver("settlement-reversed", reversal_payload(late, rev_date="2024-03-02"))
    march = (await _clear(books, hospital, "2024-03-01", "2024-03-31")).json()["clearings"][0]
    assert (march["carried_in"], march["fund_payable"], march["net_due"], march["paid"], march["carried_out"]) == (
        "0.00",
        "-1000.00",
        "-1000.00",
        "0.00",
        "-1000.00",
    )
    assert (await books.position(hospital))["net"] == "-1000.00"
    # funds spent 1,200,000 net; the fund's bank paid 1,000,000 ahead and 201,000 at clearing; the
    # institution owes 1,000 back; its prepayment is used up.
    assert await books.trial(hospital) == {
        "fund:hifp": 1200000,
        f"institution:{hospital}:fund_payable": 1000,
        "bank:fund": -1201000,
    }
    history = (await books.client.get("/v1/clearings", params={"fixmedins_code": hospital}, headers=OPS)).json()
    assert [c["period_end"] for c in history] == ["2024-01-31", "2024-02-29", "2024-03-31"]


async def test_clearing_with_an_idempotency_key_and_bad_requests(books, hospital):
    await books.prepay(hospital, "50.00", on="2024-05-02")
    key = {"Idempotency-Key": f"c-{uuid.uuid4()}"}
    first = await _clear(books, hospital, "2024-05-01", "2024-05-31", headers=ADMIN | key)
    assert first.status_code == 201
    assert (await _clear(books, hospital, "2024-05-01", "2024-05-31", headers=ADMIN | key)).json() == first.json()
    refused(
        await _clear(books, hospital, "2024-06-01", "2024-06-30", headers=ADMIN | key), 409, "IDEMPOTENCY_KEY_REUSED"
    )
    refused(await _clear(books, hospital, "2024-07-31", "2024-07-01"), 422, "VALIDATION_FAILED")
    refused(
        await _clear(books, "Tunknown" + uuid.uuid4().hex[:8], "2024-07-01", "2024-07-31"), 422, "UNKNOWN_INSTITUTION"
    )
    refused(await _clear(books, hospital, "2024-07-01", "2024-07-31", headers=OPS), 403, "FORBIDDEN")


async def test_clearing_every_institution(books, hospital):
    response = await books.client.post(
        "/v1/clearings", headers=ADMIN, json={"period_start": "2031-01-01", "period_end": "2031-01-31"}
    )
    assert response.status_code == 201, response.text
    codes = [c["fixmedins_code"] for c in response.json()["clearings"]]
    assert hospital in codes and codes == sorted(codes)
    again = await books.client.post(
        "/v1/clearings", headers=ADMIN, json={"period_start": "2031-01-01", "period_end": "2031-01-31"}
    )
    mine = [c for c in again.json()["clearings"] if c["fixmedins_code"] == hospital]
    assert mine == [c for c in response.json()["clearings"] if c["fixmedins_code"] == hospital]


async def _budget(books, code: str, year: int = 2024) -> dict:
    response = await books.client.get(f"/v1/budgets/{code}", params={"year": year}, headers=OPS)
    assert response.status_code == 200, response.text
    return response.json()


async def test_budget_warns_at_80_percent_is_exceeded_at_100_and_ignores_covid(books, hospital):
    put = await books.client.put(f"/v1/budgets/{hospital}", json={"year": 2024, "amount": "1000.00"}, headers=ADMIN)
    assert put.status_code == 200, put.text
    assert put.json() == {
        "fixmedins_code": hospital,
        "year": 2024,
        "budget": "1000.00",
        "used": "0.00",
        "covid_excluded": "0.00",
        "ratio": "0.0000",
        "status": "ok",
    }
    await _settle(books, hospital, hifp="700.00", hifmi="99.99", day="2024-04-01")
    assert ((b := await _budget(books, hospital))["used"], b["ratio"], b["status"]) == ("799.99", "0.8000", "ok")
    cent = await _settle(books, hospital, hifp="0.01", day="2024-04-02")
    assert ((b := await _budget(books, hospital))["used"], b["status"]) == ("800.00", "warning")
    await _settle(books, hospital, hifp="5000.00", day="2024-04-03", covid_status="confirmed")
    assert ((b := await _budget(books, hospital))["used"], b["covid_excluded"], b["status"]) == (
        "800.00",
        "5000.00",
        "warning",
    )
    await _settle(books, hospital, hifp="200.00", day="2024-04-04")
    assert ((b := await _budget(books, hospital))["used"], b["ratio"], b["status"]) == ("1000.00", "1.0000", "exceeded")
    await books.deliver("settlement-reversed", reversal_payload(cent))
    assert ((b := await _budget(books, hospital))["used"], b["status"]) == ("999.99", "warning")
    await _settle(books, hospital, hifp="300.00", day="2025-01-02")  # another year
    assert (await _budget(books, hospital))["used"] == "999.99"


async def test_budget_requests_that_are_refused(books, hospital):
    unknown = "Tunknown" + uuid.uuid4().hex[:8]
    refused(
        await books.client.put(f"/v1/budgets/{unknown}", json={"year": 2024, "amount": "1.00"}, headers=ADMIN),
        422,
        "UNKNOWN_INSTITUTION",
    )
    refused(
        await books.client.put(f"/v1/budgets/{hospital}", json={"year": 2024, "amount": "1.00"}, headers=OPS),
        403,
        "FORBIDDEN",
    )
    for body in (
        {"year": 1999, "amount": "1.00"},
        {"year": 2024, "amount": "0.00"},
        {"year": 2024},
        {"year": "x", "amount": "1.00"},
    ):
        refused(await books.client.put(f"/v1/budgets/{hospital}", json=body, headers=ADMIN), 422, "VALIDATION_FAILED")
    refused(
        await books.client.get(f"/v1/budgets/{hospital}", params={"year": 2024}, headers=OPS), 404, "BUDGET_NOT_FOUND"
    )
    refused(
        await books.client.get(f"/v1/budgets/{hospital}", params={"year": 3000}, headers=OPS), 422, "VALIDATION_FAILED"
    )


@pytest.mark.parametrize("year", [2024])
async def test_replacing_a_budget(books, hospital, year):
    for amount in ("100.00", "250.00"):
        await books.client.put(f"/v1/budgets/{hospital}", json={"year": year, "amount": amount}, headers=ADMIN)
    assert (await _budget(books, hospital, year))["budget"] == "250.00"
